"""The fleet test: three ``tessera serve`` instances under load through the failures SPEC
section 6 names (Redis restarted, PostgreSQL restarted, one instance stopped with SIGTERM and
one killed with SIGKILL) while keys and OAuth grants are revoked and the token signing key is
rotated. Bounded to about a minute of load.

It counts, prints and asserts: accepts of a revoked key, or of the access token of a revoked
grant, sent after its revocation returned (0), 5xx other than 503 problem+json (0), usage lost
after SIGTERM (0) and after SIGKILL (at most what was buffered since the last flush), fleet-wide
accepts beyond a rate limit with Redis up (0) and down (at most requests + N - 1), and tokens
signed by a new signing key refused by any instance (0).
"""

from __future__ import annotations

import base64
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.oauth.clients import ClientSpec
from tessera.principal import ClientInfo
from tessera.storage.db import engine_url
from tessera.storage.models import ApiKeyUsage
from tests.fleet import Fleet, fleet
from tests.oauth_flow import REDIRECT_URI, Pkce, code_for, exchange, sign_in
from tests.provisioning import PASSWORD, new_key, new_owner, new_service_token

pytestmark = pytest.mark.fleet

LIMIT = 30  # per hour: refills one per two minutes, negligible during a burst
REVOCABLE = 80
GRANTS = 16  # OAuth apps the owner authorizes, one grant each, revoked one by one
OAUTH_SCOPE = "openid workspaces:read"
OWNER = "ops@example.com"
JWKS_MAX_AGE = 2  # a new signing key signs this long after the rotation
SETTINGS = (
    "cache_lease_ms = 500\n[rate_limit]\nrequests = 100000\nper_seconds = 60\n"
    f"[tokens]\njwks_max_age_seconds = {JWKS_MAX_AGE}\n"
)


@dataclass(frozen=True)
class Sent:
    instance: int
    key: str
    sent: float
    done: float
    status: int  # 0: no answer (the connection failed)
    valid: bool
    problem: bool  # the body was application/problem+json
    # With no answer, how the connection failed: "ConnectError" when the instance was not
    # listening (the request never reached it), else the error after the request was written.
    failure: str = ""


@dataclass
class Keys:
    service_token: str
    admin: str
    usage: list[list[tuple[str, str]]]  # per instance: (raw, id)
    revocable: list[tuple[str, str]]
    rate_up: str
    rate_down: str
    doomed_token: tuple[str, str]  # a service token revoked with the CLI: (raw, id)
    oauth_clients: list[str]  # public OAuth clients (ids) the owner authorizes over HTTP


@dataclass
class Grants:
    person: str  # the owner's own access token, which revokes grants
    tokens: list[tuple[str, str]]  # (OAuth access token, its grant id), in revocation order


@dataclass
class Rotation:
    kid: str = ""
    asked_at: float = 0.0  # when ``tessera keys rotate-signing`` was run
    rotated_at: float = 0.0  # when it returned (the new key was made in between)
    first_signed_s: float | None = None  # from the run to the first token the new key signed
    new_key_checks: int = 0  # requests made with tokens the new key signed
    new_key_refused: int = 0  # of those, answered other than 200 by a live instance
    errors: list[str] = field(default_factory=list)  # sign-ins answered 5xx (not 503)


def _provision(running: Fleet) -> Keys:
    config = load_config(running.config, environ={})
    tessera = Tessera(config)
    try:
        owner = new_owner(tessera)
        admin, _ = new_key(tessera, owner, KeySpec(name="admin", scopes=["api_keys:write"]))

        doomed = new_service_token(tessera, "doomed")

        def key(name: str, **more: Any) -> tuple[str, str]:
            return new_key(tessera, owner, KeySpec(name=name, scopes=["workspaces:read"], **more))

        def app(number: int) -> str:
            spec = ClientSpec(f"App {number}", [REDIRECT_URI], OAUTH_SCOPE.split(), "public")
            return tessera.oauth_clients.create(owner, spec, ClientInfo()).client.id

        return Keys(
            service_token=new_service_token(tessera, "load"),
            admin=admin,
            usage=[[key(f"u{i}-{n}") for n in range(3)] for i in range(len(running.instances))],
            revocable=[key(f"r{n}") for n in range(REVOCABLE)],
            rate_up=key("rate-up", rate_limit=(LIMIT, 3600))[0],
            rate_down=key("rate-down", rate_limit=(LIMIT, 3600))[0],
            doomed_token=(
                doomed,
                next(t.id for t in tessera.service_tokens.list() if t.name == "doomed"),
            ),
            oauth_clients=[app(n) for n in range(GRANTS)],
        )
    finally:
        tessera.close()


def _authorize(running: Fleet, client_ids: list[str]) -> Grants:
    """Each app authorized by the owner over HTTP on the first instance, as a browser would:
    sign in, the consent page, then the code exchanged with its PKCE verifier."""
    with httpx.Client(base_url=running.instances[0].url, timeout=30) as browser:
        sign_in(browser, OWNER)
        tokens: dict[str, str] = {}
        for client_id in client_ids:
            pkce = Pkce.new()
            code = code_for(browser, client_id, pkce, scope=OAUTH_SCOPE)
            registered = {"client_id": client_id}
            answer = exchange(browser, registered, code, pkce.verifier, client_id=client_id)
            assert answer.status_code == 200, answer.text
            tokens[client_id] = answer.json()["access_token"]
        signed_in = browser.post("/v1/auth/token", json={"email": OWNER, "password": PASSWORD})
        person = signed_in.json()["access_token"]
        listed = browser.get("/v1/me/grants", headers={"Authorization": f"Bearer {person}"})
    grant_of = {grant["client"]["id"]: grant["id"] for grant in listed.json()["data"]}
    return Grants(person, [(tokens[c], grant_of[c]) for c in client_ids])


def _kid(token: str) -> str:
    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


class Load:
    """Worker threads verifying keys and OAuth access tokens on the live instances, every
    answer recorded; one thread revoking keys, one revoking grants."""

    def __init__(self, running: Fleet, keys: Keys, grants: Grants) -> None:
        self.running = running
        self.keys = keys
        self.grants = grants
        self.records: list[Sent] = []
        self.revoked_at: dict[str, float] = {}  # raw key or token -> when its DELETE returned
        self.asked_at: dict[str, float] = {}  # raw key or token -> when its DELETE was first sent
        self.revocation_ms: list[float] = []  # how long each successful DELETE of a key took
        self.grant_revocation_ms: list[float] = []  # and of a grant
        self.revocation_errors: list[str] = []  # answers other than 200 and 503 problem+json
        self.next_revocation = 0
        self.next_grant = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def verify(self, client: httpx.Client, index: int, raw: str, token: str | None = None) -> Sent:
        headers = {"Authorization": f"Bearer {token or self.keys.service_token}"}
        return self._send(client, index, raw, "POST", "/v1/keys/verify", headers, {"key": raw})

    def me(self, client: httpx.Client, index: int, token: str) -> Sent:
        """``GET /v1/me`` with an access token: accepted when answered 200."""
        headers = {"Authorization": f"Bearer {token}"}
        return self._send(client, index, token, "GET", "/v1/me", headers, None)

    def _send(
        self,
        client: httpx.Client,
        index: int,
        raw: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, str] | None,
    ) -> Sent:
        instance = self.running.instances[index]
        sent = time.monotonic()
        try:
            response = client.request(
                method, instance.url + path, json=body, headers=headers, timeout=30
            )
        except httpx.TransportError as error:
            failure = type(error).__name__
            record = Sent(index, raw, sent, time.monotonic(), 0, False, False, failure)
        else:
            answer = response.json() if response.content else {}
            accepted = response.status_code == 200 and (body is None or answer.get("valid") is True)
            record = Sent(
                index,
                raw,
                sent,
                time.monotonic(),
                response.status_code,
                accepted,
                response.headers.get("content-type") == "application/problem+json",
            )
        self.records.append(record)
        return record

    def _alive(self) -> list[int]:
        return [i for i, instance in enumerate(self.running.instances) if instance.alive]

    def _worker(self, seed: int) -> None:
        chance = random.Random(seed)
        with httpx.Client() as client:
            while not self.stop.is_set():
                alive = self._alive()
                if not alive:
                    time.sleep(0.05)
                    continue
                index = chance.choice(alive)
                roll = chance.random()
                if roll < 0.35:
                    raw = chance.choice(self.keys.usage[index])[0]
                elif roll < 0.75:  # the keys about to be revoked and those just revoked: cached
                    low = max(0, self.next_revocation - 4)
                    high = min(len(self.keys.revocable), self.next_revocation + 4)
                    raw = self.keys.revocable[chance.randrange(low, high)][0]
                else:  # the same for OAuth grants: their tokens' grants are cached
                    low = max(0, self.next_grant - 2)
                    high = min(len(self.grants.tokens), self.next_grant + 3)
                    self.me(client, index, self.grants.tokens[chance.randrange(low, high)][0])
                    continue
                self.verify(client, index, raw)

    def _revoker(self) -> None:
        with httpx.Client() as client:
            while not self.stop.wait(0.5) and self.next_revocation < len(self.keys.revocable):
                raw, key_id = self.keys.revocable[self.next_revocation]
                headers = {"X-API-Key": self.keys.admin}
                self._revoke(client, raw, f"/v1/api-keys/{key_id}", headers, self.revocation_ms)
                self.next_revocation += 1

    def _grant_revoker(self) -> None:
        with httpx.Client() as client:
            while not self.stop.wait(2.0) and self.next_grant < len(self.grants.tokens):
                token, grant_id = self.grants.tokens[self.next_grant]
                headers = {"Authorization": f"Bearer {self.grants.person}"}
                path = f"/v1/me/grants/{grant_id}"
                self._revoke(client, token, path, headers, self.grant_revocation_ms)
                self.next_grant += 1

    def _revoke(
        self,
        client: httpx.Client,
        raw: str,
        path: str,
        headers: dict[str, str],
        timings: list[float],
    ) -> None:
        """``DELETE path`` on a live instance until it answers 200 (a 503 is repeated)."""
        while not self.stop.is_set():
            alive = self._alive()
            if not alive:
                time.sleep(0.05)
                continue
            instance = self.running.instances[random.choice(alive)]
            asked = time.monotonic()
            self.asked_at.setdefault(raw, asked)
            try:
                response = client.delete(instance.url + path, headers=headers, timeout=30)
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                self.revoked_at[raw] = time.monotonic()
                timings.append((self.revoked_at[raw] - asked) * 1000)
                return
            problem = response.headers.get("content-type") == "application/problem+json"
            if response.status_code != 503 or not problem:
                self.revocation_errors.append(f"{response.status_code} {response.text}")
            time.sleep(0.05)

    def start(self, workers: int) -> None:
        self.threads = [threading.Thread(target=self._worker, args=(n,)) for n in range(workers)]
        self.threads.append(threading.Thread(target=self._revoker))
        self.threads.append(threading.Thread(target=self._grant_revoker))
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _burst(load: Load, raw: str, count: int) -> int:
    """``count`` verifications of ``raw`` spread over the live instances; how many passed."""
    accepted = 0
    with httpx.Client() as client:
        for number in range(count):
            alive = [i for i, each in enumerate(load.running.instances) if each.alive]
            accepted += load.verify(client, alive[number % len(alive)], raw).valid
    return accepted


def _revoke_service_token(load: Load) -> tuple[int, int]:
    """The doomed token, cached on every instance, revoked with ``tessera service-token revoke``;
    then tried on each: (tries after the command returned, how many were accepted)."""
    raw, token_id = load.keys.doomed_token
    alive = [i for i, each in enumerate(load.running.instances) if each.alive]
    with httpx.Client() as client:
        for index in alive:
            load.verify(client, index, load.keys.usage[index][0][0], token=raw)
        tessera = Path(sys.executable).parent / "tessera"
        command = [str(tessera), "service-token", "revoke", token_id]
        subprocess.run([*command, "--config", str(load.running.config)], check=True)
        tries = [
            load.verify(client, alive[n % len(alive)], load.keys.rate_up, token=raw)
            for n in range(60)
        ]
    return len(tries), sum(t.status == 200 for t in tries)


def _rotate_signing_key(load: Load, rotation: Rotation) -> None:
    """``tessera keys rotate-signing`` during the load; then, for a few seconds, sign in on a
    live instance and use each token the new key signed on every live instance."""
    tessera = Path(sys.executable).parent / "tessera"
    command = [str(tessera), "keys", "rotate-signing", "--config", str(load.running.config)]
    rotation.asked_at = time.monotonic()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    found = re.search(r"new signing key (\S+) ", done.stdout)
    assert found, done.stdout
    rotation.kid, rotation.rotated_at = found.group(1), time.monotonic()
    deadline = rotation.rotated_at + JWKS_MAX_AGE + 6
    credentials = {"email": OWNER, "password": PASSWORD}
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline and not load.stop.is_set():
            alive = [i for i, each in enumerate(load.running.instances) if each.alive]
            issuer = load.running.instances[random.choice(alive)]
            try:
                answer = client.post(issuer.url + "/v1/auth/token", json=credentials)
            except httpx.TransportError:
                continue
            if answer.status_code != 200:
                problem = answer.headers.get("content-type") == "application/problem+json"
                if answer.status_code >= 500 and not (answer.status_code == 503 and problem):
                    rotation.errors.append(f"{answer.status_code} {answer.text}")
                continue
            token = answer.json()["access_token"]
            if _kid(token) != rotation.kid:
                time.sleep(0.1)  # the previous key signs until the new one is JWKS_MAX_AGE old
                continue
            if rotation.first_signed_s is None:
                rotation.first_signed_s = time.monotonic() - rotation.asked_at
            for index in alive:
                record = load.me(client, index, token)
                if record.status == 0:
                    continue  # an instance killed meanwhile: no answer, no verdict
                rotation.new_key_checks += 1
                rotation.new_key_refused += record.status != 200


def _usage(url: str) -> Counter[str]:
    engine = create_engine(engine_url(url))
    query = select(ApiKeyUsage.key_id, func.sum(ApiKeyUsage.requests + ApiKeyUsage.rejected))
    with engine.connect() as connection:
        rows = connection.execute(query.group_by(ApiKeyUsage.key_id)).all()
    engine.dispose()
    return Counter({key_id: int(total) for key_id, total in rows})


def _answered(records: list[Sent], keys: list[tuple[str, str]]) -> dict[str, int]:
    """Answers (200) per key id: each is one use the instance counted."""
    ids = dict(keys)
    counts: Counter[str] = Counter(ids[r.key] for r in records if r.key in ids and r.status == 200)
    return {key_id: counts[key_id] for key_id in ids.values()}


def test_a_fleet_never_accepts_a_revoked_key_through_redis_postgres_and_instance_failures() -> None:
    with fleet(3, SETTINGS) as running:
        keys = _provision(running)
        load = Load(running, keys, _authorize(running, keys.oauth_clients))
        rotation = Rotation()
        rotating = threading.Thread(target=_rotate_signing_key, args=(load, rotation))
        first, killed, stopped = running.instances
        started = time.monotonic()

        def at(second: float) -> None:
            time.sleep(max(0.0, started + second - time.monotonic()))

        load.start(workers=6)
        at(3)
        accepted_up = _burst(load, keys.rate_up, 3 * LIMIT)
        at(6)
        running.redis.stop()
        at(7.5)
        accepted_down = _burst(load, keys.rate_down, 3 * LIMIT)
        at(10)
        running.redis.start()  # and at once, in the gap before the instances resubscribe:
        token_tries, token_accepted = _revoke_service_token(load)
        at(13)
        first.link.cut = True  # one instance partitioned from Redis: the others revoke
        at(16)
        first.link.heal()
        at(18)
        running.postgres.stop()
        at(19)  # stopped while the database is down: its usage is written once it is back
        sigterm_at = time.monotonic()
        running.signal(stopped, signal.SIGTERM)
        at(23)
        running.postgres.start()
        assert running.wait(stopped) in (0, -signal.SIGTERM)  # uvicorn re-raises it
        at(25)
        rotating.start()  # the signing key rotated on one instance's database, under load
        at(29)
        sigkill_at = time.monotonic()
        running.signal(killed, signal.SIGKILL)
        running.wait(killed)
        at(36)
        rotating.join(timeout=60)
        load.join()
        running.signal(first, signal.SIGTERM)
        assert running.wait(first) in (0, -signal.SIGTERM)
        usage = _usage(running.postgres.url)

    records = load.records
    stale = [
        r
        for r in records
        if r.valid and r.key in load.revoked_at and r.sent > load.revoked_at[r.key]
    ]
    errors = [r for r in records if r.status >= 500 and not (r.status == 503 and r.problem)]
    unavailable = sum(r.status == 503 for r in records)
    # Sent before the SIGTERM and cut off. A refused connection does not count: the instance
    # had stopped listening, so the request reached it after the signal, whatever the client's
    # clock read when it began (a load thread may wait for the interpreter a while).
    resets = [
        r
        for r in records
        if r.status == 0 and r.failure != "ConnectError" and r.instance == 2 and r.sent < sigterm_at
    ]
    lost: dict[str, int] = {}
    counted: dict[str, int] = {}
    for index, name in ((0, "first"), (1, "killed"), (2, "stopped")):
        answered = _answered(records, keys.usage[index])
        counted[name] = sum(answered.values())
        lost[name] = sum(answered[k] - usage[k] for k in answered)
    killed_answers = [r for r in records if r.instance == 1 and r.status == 200]
    oauth_tokens = {token for token, _ in load.grants.tokens}
    oauth_records = [r for r in records if r.key in oauth_tokens]
    stale_grants = [r for r in stale if r.key in oauth_tokens]
    # A token refused before its grant's revocation was even asked for: a false refusal.
    refused_live = [
        r
        for r in oauth_records
        if r.status == 401 and (r.key not in load.asked_at or r.done < load.asked_at[r.key])
    ]
    after_rotation = [r for r in oauth_records if r.sent > rotation.rotated_at]
    figures = {
        "requests": len(records),
        "revocations": len(load.revocation_ms),
        "revocation_ms_median": round(statistics.median(load.revocation_ms), 1),
        "revocation_ms_max": round(max(load.revocation_ms), 1),
        "requests_with_revoked_keys_after_revocation": sum(
            r.key in load.revoked_at and r.sent > load.revoked_at[r.key]
            for r in records
            if r.key not in oauth_tokens
        ),
        "accepted_revoked_after_revocation": len(stale),
        "5xx_other_than_503": len(errors) + len(load.revocation_errors),
        "503_problem_json": unavailable,
        "connection_failures": sum(r.status == 0 for r in records),
        "in_flight_reset_by_sigterm": len(resets),
        "usage_counted_sigterm_instances": counted["first"] + counted["stopped"],
        "usage_lost_after_sigterm": lost["first"] + lost["stopped"],
        "usage_counted_sigkill_instance": counted["killed"],
        "usage_lost_after_sigkill": lost["killed"],
        "rate_limit": LIMIT,
        "accepted_rate_limit_redis_up": accepted_up,
        "accepted_rate_limit_redis_down": accepted_down,
        "revoked_service_token_tries": token_tries,
        "revoked_service_token_accepted": token_accepted,
        "oauth_grants_revoked": len(load.grant_revocation_ms),
        "grant_revocation_ms_median": round(statistics.median(load.grant_revocation_ms), 1),
        "grant_revocation_ms_max": round(max(load.grant_revocation_ms), 1),
        "oauth_requests": len(oauth_records),
        "oauth_requests_with_revoked_grants_after_revocation": sum(
            r.key in load.revoked_at and r.sent > load.revoked_at[r.key] for r in oauth_records
        ),
        "oauth_accepted_revoked_grant_after_revocation": len(stale_grants),
        "oauth_refused_while_grant_live": len(refused_live),
        "signing_key_rotated_at_s": round(rotation.asked_at - started, 1),
        "signing_key_cli_s": round(rotation.rotated_at - rotation.asked_at, 2),
        "signing_key_first_signed_after_s": (
            round(rotation.first_signed_s, 2) if rotation.first_signed_s is not None else None
        ),
        "new_key_token_checks": rotation.new_key_checks,
        "new_key_token_refused": rotation.new_key_refused,
        "old_key_oauth_accepted_after_rotation": sum(r.valid for r in after_rotation),
        "killed_at_s": round(sigkill_at - started, 1),
        "503_by_second": dict(Counter(int(r.sent - started) for r in records if r.status == 503)),
    }
    print("\nfleet figures:", figures)
    assert len(load.revocation_ms) >= 20  # revocations wait through the outages
    assert len(load.grant_revocation_ms) >= 8
    assert token_accepted == 0
    assert stale == []
    assert errors == []
    assert load.revocation_errors == []
    assert resets == []
    assert lost["first"] == 0 and lost["stopped"] == 0
    # A SIGKILL loses at most what was buffered since the last flush (60 s): here, at most
    # what the killed instance answered, and never a negative amount (nothing counted twice).
    assert 0 <= lost["killed"] <= len(killed_answers)
    assert accepted_up == LIMIT
    assert accepted_down <= LIMIT + 3 - 1
    assert stale_grants == []
    assert refused_live == []
    # A new signing key signs once it is JWKS_MAX_AGE old, and every instance accepts its
    # tokens from the first (an unknown kid makes an instance read the keys again).
    assert rotation.errors == []
    assert rotation.first_signed_s is not None
    took = rotation.rotated_at - rotation.asked_at
    assert JWKS_MAX_AGE <= rotation.first_signed_s <= took + JWKS_MAX_AGE + 1
    assert rotation.new_key_checks >= 10
    assert rotation.new_key_refused == 0
    assert sum(r.valid for r in after_rotation) > 0
