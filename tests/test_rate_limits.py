"""Rate limits (SPEC section 5), one contract run on the in-memory and on the Redis store."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.ratelimit import MemoryRateLimiter, Quota, RateLimiter, decide
from tessera.ratelimit.gcra import decision_from
from tessera.ratelimit.headers import rate_limit_headers, raw_rate_limit_headers
from tessera.ratelimit.redis import RedisRateLimiter
from tessera.ratelimit.resilient import ResilientRateLimiter
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.helpers import assert_problem, create_key, sign_up
from tests.provisioning import new_key, new_owner, new_service_token
from tests.services import require_redis

LIMITED = {"rate_limit": {"requests": 5, "per_seconds": 60}}


def _limiter(kind: str, clock: ManualClock, prefix: str) -> RateLimiter:
    if kind == "memory":
        return MemoryRateLimiter(clock)
    client = redis.Redis.from_url(require_redis())
    shared = RedisRateLimiter(client, clock, prefix=prefix)
    return ResilientRateLimiter(shared, MemoryRateLimiter(clock), "refuse")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    return f"tessera-test:{secrets.token_hex(6)}:"


@pytest.fixture
def limited(database_url: str, clock: ManualClock, store: str, prefix: str) -> Iterator[TestClient]:
    """A deployment allowing 5 requests a minute per credential, on the store under test."""
    tessera = Tessera(
        make_config(database_url, **LIMITED), clock=clock, limiter=_limiter(store, clock, prefix)
    )
    tessera.start(migrate=False)
    with TestClient(create_app(tessera), base_url="http://127.0.0.1:8000") as client:
        yield client
    tessera.close()


def test_every_authenticated_response_carries_the_headers(limited: TestClient) -> None:
    """X-RateLimit-* and the IETF fields count down with each request."""
    account = sign_up(limited)
    first = limited.get("/v1/me", headers=account.headers)
    second = limited.get("/v1/workspaces", headers=account.headers)
    assert first.headers["X-RateLimit-Limit"] == "5"
    assert first.headers["X-RateLimit-Remaining"] == "4"
    assert second.headers["X-RateLimit-Remaining"] == "3"
    assert second.headers["X-RateLimit-Reset"] == "24"
    assert second.headers["RateLimit-Policy"] == '"default";q=5;w=60'
    assert second.headers["RateLimit"] == '"default";r=3;t=24'
    assert "X-RateLimit-Limit" not in limited.get("/healthz").headers


def test_429_after_the_limit_with_retry_after_then_recovery(
    limited: TestClient, clock: ManualClock
) -> None:
    """The sixth request in a minute is refused with Retry-After; after it, one more passes."""
    account = sign_up(limited)
    for _ in range(5):
        assert limited.get("/v1/me", headers=account.headers).status_code == 200
    refused = limited.get("/v1/me", headers=account.headers)
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "12"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    clock.advance(11)
    assert limited.get("/v1/me", headers=account.headers).status_code == 429
    clock.advance(1)
    assert limited.get("/v1/me", headers=account.headers).status_code == 200


def test_refused_requests_do_not_count_again(limited: TestClient, clock: ManualClock) -> None:
    """Hammering while refused does not push recovery further away."""
    account = sign_up(limited)
    for _ in range(5):
        limited.get("/v1/me", headers=account.headers)
    for _ in range(20):
        limited.get("/v1/me", headers=account.headers)
    clock.advance(12)
    assert limited.get("/v1/me", headers=account.headers).status_code == 200


def test_a_keys_own_limit_overrides_the_default(limited: TestClient) -> None:
    """A key with rate_limit 2/minute is refused on its third request."""
    account = sign_up(limited)
    key = create_key(
        limited, account, scopes=["workspaces:read"], rate_limit={"requests": 2, "per_seconds": 60}
    )
    headers = {"X-API-Key": key["key"]}
    statuses = [limited.get("/v1/workspaces", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_failed_authentications_are_limited_per_address(limited: TestClient) -> None:
    """Bad keys from one address are throttled after failures_per_ip (30)."""
    bad = {"X-API-Key": "tsr_live_" + "A" * 36}
    statuses = [limited.get("/v1/workspaces", headers=bad).status_code for _ in range(31)]
    assert statuses[:30] == [401] * 30 and statuses[30] == 429


def test_two_instances_sharing_redis_share_one_limit(
    database_url: str, clock: ManualClock, prefix: str
) -> None:
    """Two deployments on one Redis allow N requests in total, not 2N."""
    tesseras = [
        Tessera(
            make_config(database_url, **LIMITED),
            clock=clock,
            limiter=_limiter("redis", clock, prefix),
        )
        for _ in range(2)
    ]
    for tessera in tesseras:
        tessera.start(migrate=False)
    clients = [TestClient(create_app(t), base_url="http://127.0.0.1:8000") for t in tesseras]
    account = sign_up(clients[0])
    statuses = [
        clients[i % 2].get("/v1/me", headers=account.headers).status_code for i in range(10)
    ]
    assert statuses.count(200) == 5 and statuses.count(429) == 5
    for tessera in tesseras:
        tessera.close()


@pytest.mark.parametrize(("on_error", "status"), [("refuse", 503), ("local", 200)])
def test_unreachable_redis_refuses_or_falls_back_never_500(
    database_url: str,
    clock: ManualClock,
    on_error: str,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis down: 503 or the local limiter, as configured, and a warning in the log."""
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = ResilientRateLimiter(
        RedisRateLimiter(dead, clock), MemoryRateLimiter(clock), on_error
    )
    tessera = Tessera(make_config(database_url), clock=clock, limiter=limiter)
    tessera.start(migrate=False)
    caplog.set_level(logging.WARNING, logger="tessera.ratelimit")
    with TestClient(create_app(tessera), base_url="http://127.0.0.1:8000") as client:
        created = client.post(
            "/v1/auth/signup",
            json={
                "email": "ada@example.com",
                "password": "correct horse battery",
                "organization_name": "A",
            },
        )
        assert created.status_code == 201
        user_id = created.json()["user"]["id"]
        token = tessera.tokens._pair(*_family(tessera, user_id)).access_token
        response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    tessera.close()
    assert response.status_code == status
    if status == 503:
        assert_problem(response, 503, "unavailable")
    assert "Redis is unreachable" in caplog.text


def _family(tessera: Tessera, user_id: str) -> tuple[Any, str]:
    from tessera.tokens import refresh

    with tessera.token_store.transaction() as tx:
        return refresh.start_family(
            tx,
            user_id=user_id,
            organization_id=None,
            client_id="tessera",
            scope="",
            now=tessera.clock.now(),
            ttl_days=1,
        )


BURSTS = [(1, 86400), (3, 7), (7, 3600), (60, 60), (100, 1), (999, 1), (1000, 60), (1000, 86400)]


@pytest.mark.parametrize("now", [0.0, 1000.123, 1_800_000_000.0, 1_800_000_000.123456])
def test_gcra_allows_exactly_the_quota_in_a_burst(now: float) -> None:
    """A fresh credential may spend its whole quota at once and no more, at any time: at
    epoch times a float's step is 2.4e-7 s, which once let 7 an hour allow 6 and 999 a second
    allow 998."""
    for requests, per_seconds in BURSTS:
        quota, tat, allowed = Quota(requests, per_seconds), None, 0
        for _ in range(requests + 5):
            decision, tat = decide(quota, tat, now)
            allowed += decision.allowed
        assert allowed == requests, (requests, per_seconds)


def test_each_store_allows_exactly_the_quota_in_a_burst(store: str, prefix: str) -> None:
    """The same at today's time through each store: Redis once kept a TAT to 14 digits (a
    tenth of a millisecond), so that 60 a minute allowed 59."""
    clock = ManualClock(datetime(2026, 11, 24, 13, 5, 7, 123456, tzinfo=UTC))
    limiter = _limiter(store, clock, prefix)
    for requests, per_seconds in BURSTS:
        quota, key = Quota(requests, per_seconds), f"burst:{requests}:{per_seconds}"
        allowed = sum(limiter.hit(key, quota).allowed for _ in range(requests + 3))
        assert allowed == requests, (requests, per_seconds)
        assert limiter.peek(key, quota).remaining == 0


@pytest.mark.parametrize("now", [1000.0, 1_800_000_000.0, 1_800_000_000.123456])
def test_remaining_counts_every_use_at_epoch_times(now: float) -> None:
    """At today's epoch times a float's step is about 2.4e-7 s, which once made 3 uses of a
    1000-a-minute quota report 996 left instead of 997."""
    quota = Quota(1000, 60)
    decision, _ = decide(quota, None, now, 3)
    assert (decision.remaining, decision.reset_seconds) == (997, 1)
    tat = None
    for left in (999, 998, 997):
        decision, tat = decide(quota, tat, now)
        assert decision.remaining == left
    slow = Quota(2, 60)  # one request each 30 s: the third waits exactly 30 s
    _, tat = decide(slow, None, now, 2)
    refused, _ = decide(slow, tat, now)
    assert (refused.allowed, refused.retry_after, refused.reset_seconds) == (False, 30, 60)


@pytest.mark.parametrize("now", [1000.0, 1_800_000_000.0, 1_800_000_000.123456])
def test_an_allowed_decision_has_the_figures_every_store_computes(now: float) -> None:
    """An allowed request's figures are those ``decision_from`` gives the Redis store from
    the TAT ``decide`` returns to be stored."""
    for requests, per_seconds in BURSTS:
        quota, tat = Quota(requests, per_seconds), None
        for cost in (1, 2, 1, 3):
            decision, new_tat = decide(quota, tat, now, cost)
            if decision.allowed:
                assert decision == decision_from(quota, True, new_tat, now), (requests, cost)
            tat = new_tat


def test_the_raw_headers_are_the_named_fields_in_bytes() -> None:
    """What the hot paths send (``raw_rate_limit_headers``, which keeps each quota's fixed
    fields) is what SPEC section 5 names, also for two quotas of one limit and two windows."""
    decisions = [
        decide(Quota(100, 60), None, 1000.0)[0],
        decide(Quota(100, 3600), None, 1000.0, 7)[0],
        decide(Quota(100, 60), 1000.0 + 60, 1000.0)[0],  # refused: with Retry-After
        decide(Quota(5, 1), None, 1000.0)[0],
    ]
    assert not decisions[2].allowed
    for decision in decisions:
        named = [(n.lower().encode(), v.encode()) for n, v in rate_limit_headers(decision)]
        assert raw_rate_limit_headers(decision) == named


def test_hot_paths_count_exactly_on_the_event_loop(
    database_url: str, clock: ManualClock, store: str, prefix: str
) -> None:
    """Twelve verifications at once on a quota of 5: exactly 5 valid, on either store, and with
    Redis the quota is charged on the event loop (the blocking client is never used)."""
    limiter = _limiter(store, clock, prefix)
    tessera = Tessera(make_config(database_url, **LIMITED), clock=clock, limiter=limiter)
    tessera.start(migrate=False)
    owner = new_owner(tessera)
    key, _ = new_key(tessera, owner, KeySpec(name="k", scopes=["workspaces:read"]))
    token = new_service_token(tessera)
    app = create_app(tessera)
    headers = {"Authorization": f"Bearer {token}"}

    async def burst() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"key": key}
            warm = await client.post("/v1/keys/verify", json={**body, "uses": 1}, headers=headers)
            assert warm.json()["code"] == "valid"  # the caches are warm: 4 uses are left
            if isinstance(limiter, ResilientRateLimiter):

                def blocking(*_: Any) -> None:
                    raise AssertionError("the blocking Redis client was used")

                limiter.shared.hit = blocking  # type: ignore[method-assign]
            answers = await asyncio.gather(
                *(client.post("/v1/keys/verify", json=body, headers=headers) for _ in range(12))
            )
        return [answer.json()["code"] for answer in answers]

    codes = asyncio.run(burst())
    tessera.close()
    assert codes.count("valid") == 4 and codes.count("rate_limited") == 8
