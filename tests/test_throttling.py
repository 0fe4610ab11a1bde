"""Throttling that cannot lock anyone out, client addresses, and the bounded hashing pool.

SPEC section 3 (failed logins, ``trusted_proxies``, the hashing pool) and section 5 (forward
auth names the client). Failures are counted per (email, address), per email and per address;
a verified credential is never refused for them.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.accounts.hashing_pool import HashingPool
from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.errors import RateLimited
from tessera.keys import format as key_format
from tessera.web.app import create_app
from tests.helpers import PASSWORD, assert_problem, create_key, service_token, sign_up

ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"
ORIGIN = "http://127.0.0.1:8000"
BAD_SERVICE_TOKEN = "svc_" + "x" * 43
ROUTES = {"route": [{"methods": ["GET"], "path": "/v1/contacts*", "scopes": ["contacts:read"]}]}


def _from(tessera: Tessera, address: str) -> TestClient:
    """A client of the same deployment whose connections come from ``address``."""
    return TestClient(create_app(tessera), base_url=ORIGIN, client=(address, 50000))


def _login(client: TestClient, email: str, password: str, **headers: str) -> Any:
    return client.post(
        "/v1/auth/token", json={"email": email, "password": password}, headers=headers
    )


def _fail(client: TestClient, email: str, times: int, **headers: str) -> list[int]:
    return [_login(client, email, "wrong password", **headers).status_code for _ in range(times)]


def _forward(client: TestClient, token: str, **headers: str) -> Any:
    proxy = {
        "X-Tessera-Service-Token": token,
        "X-Original-Method": "GET",
        "X-Original-URI": "/v1/contacts",
    }
    return client.get("/v1/forward-auth", headers={**proxy, **headers})


def test_failures_from_another_address_do_not_refuse_the_right_password(
    client: TestClient, tessera: Tessera
) -> None:
    """Ten wrong passwords for an email from one address leave its owner free elsewhere."""
    sign_up(client)
    attacker = _from(tessera, ATTACKER)
    assert _fail(attacker, "ada@example.com", 10) == [401] * 10
    assert_problem(_login(attacker, "ada@example.com", PASSWORD), 429, "rate_limited")
    assert _login(_from(tessera, VICTIM), "ada@example.com", PASSWORD).status_code == 200


def test_an_address_failing_for_many_emails_still_accepts_a_correct_password(
    client: TestClient, tessera: Tessera
) -> None:
    """Thirty failures over thirty emails from an office do not refuse a colleague's login."""
    sign_up(client)
    office = _from(tessera, ATTACKER)
    for index in range(30):
        assert _fail(office, f"u{index}@example.com", 1) == [401]
    assert _login(office, "ada@example.com", PASSWORD).status_code == 200


def test_valid_keys_and_tokens_are_served_from_an_address_past_its_failure_limit(
    client: TestClient, tessera: Tessera
) -> None:
    """Bad keys are 429 past 30 failures; a valid key and token from that address are not."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["workspaces:read"])
    office = _from(tessera, ATTACKER)
    bad = {"X-API-Key": key_format.generate("tsr", "live")}
    statuses = [office.get("/v1/workspaces", headers=bad).status_code for _ in range(31)]
    assert statuses == [401] * 30 + [429]
    assert office.get("/v1/workspaces", headers={"X-API-Key": key["key"]}).status_code == 200
    assert office.get("/v1/me", headers=account.headers).status_code == 200


def test_an_address_past_its_limit_gets_one_try_at_a_time_per_email(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """Once an address has failed 30 times, an email it failed for waits until that ages out."""
    sign_up(client)
    office = _from(tessera, ATTACKER)
    for index in range(30):
        _fail(office, f"u{index}@example.com", 1)
    refused = _login(office, "u29@example.com", "another guess")
    assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    clock.advance(30)
    assert _fail(office, "u29@example.com", 1) == [401]


def test_an_email_failing_from_many_addresses_gives_each_one_try_at_a_time(
    client: TestClient, tessera: Tessera
) -> None:
    """Ten failures for an email from ten addresses: each may not guess again at once; an
    address that has not failed still signs in."""
    sign_up(client)
    addresses = [f"203.0.113.{n}" for n in range(10)]
    for address in addresses:
        assert _fail(_from(tessera, address), "ada@example.com", 1) == [401]
    again = _login(_from(tessera, addresses[0]), "ada@example.com", PASSWORD)
    assert_problem(again, 429, "rate_limited")
    assert _login(_from(tessera, VICTIM), "ada@example.com", PASSWORD).status_code == 200


def test_failures_count_per_ipv6_64(client: TestClient, tessera: Tessera) -> None:
    """Addresses of one IPv6 /64 share their failure count: rotating them does not help."""
    bad = {"X-API-Key": key_format.generate("tsr", "live")}
    statuses = [
        _from(tessera, f"2001:db8:0:1::{n:x}").get("/v1/workspaces", headers=bad).status_code
        for n in range(1, 32)
    ]
    assert statuses == [401] * 30 + [429]


def test_forwarded_for_from_loopback_is_not_believed_by_default(
    client: TestClient, tessera: Tessera
) -> None:
    """Rotating X-Forwarded-For from 127.0.0.1 does not escape the per-address throttle."""
    local = _from(tessera, "127.0.0.1")
    bad = key_format.generate("tsr", "live")
    statuses = [
        local.get(
            "/v1/workspaces", headers={"X-API-Key": bad, "X-Forwarded-For": f"192.0.2.{n}"}
        ).status_code
        for n in range(40)
    ]
    assert statuses == [401] * 30 + [429] * 10


@pytest.mark.parametrize("config_overrides", [{"trusted_proxies": ["127.0.0.1/32"]}])
def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    client: TestClient, tessera: Tessera
) -> None:
    """Behind a proxy listed in trusted_proxies, each client is throttled on its own."""
    sign_up(client)
    proxy = _from(tessera, "127.0.0.1")
    assert _fail(proxy, "ada@example.com", 10, **{"X-Forwarded-For": ATTACKER}) == [401] * 10
    refused = _login(proxy, "ada@example.com", PASSWORD, **{"X-Forwarded-For": ATTACKER})
    assert_problem(refused, 429, "rate_limited")
    assert _login(proxy, "ada@example.com", PASSWORD, **{"X-Forwarded-For": VICTIM}).is_success


def test_bad_service_tokens_on_verify_are_throttled_per_address(
    client: TestClient, tessera: Tessera
) -> None:
    """Past 30 wrong service tokens the verification API answers 429; a right one still works."""
    caller = _from(tessera, ATTACKER)
    bad = {"Authorization": f"Bearer {BAD_SERVICE_TOKEN}"}
    statuses = [
        caller.post("/v1/keys/verify", json={"key": "x"}, headers=bad).status_code
        for _ in range(31)
    ]
    assert statuses == [401] * 30 + [429]
    good = {"Authorization": f"Bearer {service_token(tessera)}"}
    assert caller.post("/v1/keys/verify", json={"key": "x"}, headers=good).status_code == 200


@pytest.mark.parametrize("config_overrides", [ROUTES])
def test_bad_service_tokens_on_forward_auth_are_throttled_whatever_they_forward(
    client: TestClient, tessera: Tessera
) -> None:
    """A wrong service token's X-Forwarded-For is not believed: rotating it still ends in 429."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"])
    caller = _from(tessera, ATTACKER)
    statuses = [
        _forward(caller, BAD_SERVICE_TOKEN, **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code
        for n in range(31)
    ]
    assert statuses == [401] * 30 + [429]
    served = _forward(caller, service_token(tessera), **{"X-API-Key": key["key"]})
    assert served.status_code == 200


@pytest.mark.parametrize("config_overrides", [ROUTES])
def test_forward_auth_checks_allowed_ips_against_the_client_its_proxy_names(
    client: TestClient, tessera: Tessera
) -> None:
    """The last X-Forwarded-For hop, named by the authenticated proxy, is the client."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"], allowed_ips=["203.0.113.0/24"])
    proxy, token = _from(tessera, "10.0.0.5"), service_token(tessera)
    inside = {"X-API-Key": key["key"], "X-Forwarded-For": f"{VICTIM}, 203.0.113.7"}
    outside = {"X-API-Key": key["key"], "X-Forwarded-For": f"203.0.113.7, {VICTIM}"}
    assert _forward(proxy, token, **inside).status_code == 200
    assert_problem(_forward(proxy, token, **outside), 403, "forbidden")


@pytest.mark.parametrize("config_overrides", [ROUTES])
def test_bad_keys_behind_forward_auth_count_against_the_client_not_the_proxy(
    client: TestClient, tessera: Tessera
) -> None:
    """One client's bad keys throttle that client; other clients of the proxy are untouched."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"])
    proxy, token = _from(tessera, "10.0.0.5"), service_token(tessera)
    bad = key_format.generate("tsr", "live")
    statuses = [
        _forward(proxy, token, **{"X-API-Key": bad, "X-Forwarded-For": ATTACKER}).status_code
        for _ in range(31)
    ]
    assert statuses == [401] * 30 + [429]
    other = _forward(proxy, token, **{"X-API-Key": bad, "X-Forwarded-For": VICTIM})
    assert_problem(other, 401, "unauthorized")
    valid = _forward(proxy, token, **{"X-API-Key": key["key"], "X-Forwarded-For": ATTACKER})
    assert valid.status_code == 200


def test_dashboard_login_is_not_refused_by_another_addresss_failures(
    client: TestClient, tessera: Tessera
) -> None:
    """POST /login follows the same rules: failures elsewhere do not refuse the owner."""
    sign_up(client)
    _fail(_from(tessera, ATTACKER), "ada@example.com", 10)
    response = _from(tessera, VICTIM).post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


FULL_POOL = {"password_hashing_workers": 1, "password_hashing_queue": 0}


@pytest.mark.parametrize("config_overrides", [FULL_POOL])
def test_login_answers_429_while_the_hashing_pool_is_full(
    client: TestClient, tessera: Tessera
) -> None:
    """With the only hashing slot busy, login is 429 with Retry-After, not a wait; then 200."""
    sign_up(client)
    with tessera.passwords.pool.slot():
        busy = _login(client, "ada@example.com", PASSWORD)
    assert_problem(busy, 429, "rate_limited")
    assert busy.headers["Retry-After"] == "1"
    assert _login(client, "ada@example.com", PASSWORD).status_code == 200


@pytest.mark.parametrize("config_overrides", [FULL_POOL])
def test_dashboard_sign_in_and_sign_up_answer_429_while_the_pool_is_full(
    client: TestClient, tessera: Tessera
) -> None:
    """The dashboard's forms share the pool: a page with status 429 while it is full."""
    sign_up(client)
    form = {"email": "ada@example.com", "password": PASSWORD}
    new = {**form, "email": "bob@example.com", "organization_name": "Bob"}
    with tessera.passwords.pool.slot():
        sign_in = client.post("/login", data=form, headers={"Origin": ORIGIN})
        signing_up = client.post("/signup", data=new, headers={"Origin": ORIGIN})
    assert sign_in.status_code == 429 and signing_up.status_code == 429


def test_the_pool_runs_its_workers_and_refuses_beyond_them() -> None:
    """Two workers and no queue: a third hash is refused until one of the two ends."""
    pool = HashingPool(workers=2, queue=0)
    with pool.slot(), pool.slot(), pytest.raises(RateLimited), pool.slot():
        pass
    with pool.slot():
        pass


def test_a_queued_hash_waits_for_a_worker_instead_of_being_refused() -> None:
    """One worker and a queue of one: a second hash waits, and runs once the first ends."""
    pool = HashingPool(workers=1, queue=1)
    done = threading.Event()

    def second() -> None:
        with pool.slot():
            done.set()

    with pool.slot():
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not done.wait(0.05)
    waiter.join(timeout=5)
    assert done.is_set()
