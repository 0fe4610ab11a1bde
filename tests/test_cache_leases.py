"""Cache leases and acknowledged revocation (SPEC section 6, "Revocation across instances")."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from starlette.testclient import TestClient

from tessera.authz import Refused
from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.errors import NotFound, ServiceUnavailable, WouldBlock
from tessera.keys.cache import CHANNEL, INSTANCES, SEQUENCE, Fleet, TtlCache, local_subscribe
from tessera.keys.rules import KeySpec
from tessera.oauth.clients import ClientSpec
from tessera.oauth.issuer import Subject
from tessera.oauth.records import OAuthClient
from tessera.principal import ClientInfo, Principal
from tessera.ratelimit.gcra import Quota
from tessera.ratelimit.limiter import MemoryRateLimiter
from tessera.ratelimit.redis import RedisRateLimiter
from tessera.ratelimit.resilient import ResilientRateLimiter
from tessera.storage.models import OAuthGrant as OAuthGrantRow
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.fleet import PrivateRedis
from tests.provisioning import new_key, new_owner, new_service_token
from tests.servers import free_port
from tests.services import require_redis

LEASE_MS = 300


def _wait_for_lease(*deployments: Tessera) -> None:
    deadline = time.monotonic() + 10
    for deployment in deployments:
        assert deployment.fleet is not None
        while not deployment.fleet.lease.held():
            assert time.monotonic() < deadline, "no cache lease was granted"
            time.sleep(0.01)


@pytest.fixture
def fleet_of_two(database_url: str, clock: ManualClock) -> Iterator[tuple[Tessera, Tessera]]:
    config = make_config(database_url, redis_url=require_redis(), cache_lease_ms=LEASE_MS)
    first, second = Tessera(config, clock=clock), Tessera(config, clock=clock)
    first.start(migrate=False)
    _wait_for_lease(first, second)
    yield first, second
    first.close()
    second.close()


@pytest.mark.postgres
def test_a_revocation_returns_only_once_every_instance_refuses_the_key(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """No polling: the moment ``revoke`` returns, the other instance's cache no longer has it."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    for number in range(5):
        raw, key_id = new_key(first, owner, KeySpec(name=f"k{number}", scopes=["workspaces:read"]))
        verdict = second.key_verifier.identify(raw, client_ip=None, allow_database=True)
        assert verdict.code == "valid"
        cached = second.key_verifier.identify(raw, client_ip=None, allow_database=False)
        assert cached.code == "valid"  # served from the cache
        first.api_keys.revoke(owner, key_id, ClientInfo())
        with pytest.raises(WouldBlock):  # nothing cached any more: only the database answers
            second.key_verifier.identify(raw, client_ip=None, allow_database=False)
        verdict = second.key_verifier.identify(raw, client_ip=None, allow_database=True)
        assert verdict.code == "revoked"


def test_a_service_token_revocation_is_acknowledged_the_same_way(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    first, second = fleet_of_two
    raw = new_service_token(first)
    assert second.service_tokens.authenticate(raw).kind == "service"
    token = next(t for t in first.service_tokens.list() if t.revoked_at is None)
    first.service_tokens.revoke(token.id)
    with pytest.raises(Exception, match="not valid"):
        second.service_tokens.authenticate(raw)


def test_an_instance_that_does_not_acknowledge_is_waited_for_until_its_lease_ends(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """A live instance that never answers (partitioned, stalled) holds the revocation for one
    lease, by when it has stopped trusting its cache; the others answer at once."""
    first, _second = fleet_of_two
    assert first.fleet is not None
    started = time.monotonic()
    first.fleet.publish("api_key", "nothing-cached")
    acknowledged = time.monotonic() - started
    client = redis.Redis.from_url(require_redis())
    client.zadd(INSTANCES, {"partitioned-instance": int(client.time()[0]) * 1000 + 10_000})
    try:
        started = time.monotonic()
        first.fleet.publish("api_key", "nothing-cached")
        waited = time.monotonic() - started
    finally:
        client.zrem(INSTANCES, "partitioned-instance")
        client.close()
    assert acknowledged < LEASE_MS / 1000
    assert LEASE_MS / 1000 <= waited < LEASE_MS / 1000 + 0.5


def test_a_lost_eviction_empties_the_caches_within_one_lease(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """The revocation sequence rose without the eviction arriving: nothing cached is kept."""
    first, _ = fleet_of_two
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=60, max_entries=10)
    assert first.fleet is not None
    first.fleet.subscribe("test-topic", cache)
    cache.put("digest", "record")
    assert cache.get("digest") == "record"
    client = redis.Redis.from_url(require_redis())
    client.incr(SEQUENCE)  # as if an eviction had been published and lost
    client.close()
    deadline = time.monotonic() + LEASE_MS / 1000
    while len(cache):
        assert time.monotonic() < deadline, "the cache outlived a lost eviction"
        time.sleep(0.01)


def _unreachable_fleet(*, refuse: bool = False) -> Fleet:
    return Fleet(f"redis://127.0.0.1:{free_port()}/0", lease_ms=LEASE_MS, refuse=refuse)


def test_without_redis_no_lease_is_held_and_nothing_cached_is_served() -> None:
    fleet = _unreachable_fleet()
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=60, max_entries=10)
    fleet.subscribe("api_key", cache)
    try:
        cache.put("digest", "record")
        time.sleep(0.2)
        assert not fleet.lease.held()
        assert cache.get("digest") is None
    finally:
        fleet.close()


def test_without_a_lease_refuse_answers_503_instead_of_reading_the_database() -> None:
    fleet = _unreachable_fleet(refuse=True)
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=60, max_entries=10)
    fleet.subscribe("api_key", cache)
    try:
        with pytest.raises(ServiceUnavailable):
            cache.lease.check_fallback()
    finally:
        fleet.close()
    _unreachable_fleet(refuse=False).lease.check_fallback()  # "database": reads go on


def test_several_workers_without_redis_never_serve_from_their_caches() -> None:
    clock = ManualClock(datetime.now(UTC))
    for workers, served in ((1, "record"), (2, None)):
        cache: TtlCache[str] = TtlCache(clock, ttl=60, max_entries=10)
        local_subscribe(workers=workers)("api_key", cache)
        cache.put("digest", "record")
        assert cache.get("digest") == served


def test_with_redis_down_each_instance_takes_its_share_of_a_quota() -> None:
    """Three live instances and a quota of 10: each accepts ceil(10 / 3) = 4 on its own."""
    clock = ManualClock(datetime.now(UTC))
    dead = RedisRateLimiter.from_url(f"redis://127.0.0.1:{free_port()}/0", clock)
    limiter = ResilientRateLimiter(dead, MemoryRateLimiter(clock), "local", instances=lambda: 3)
    accepted = sum(limiter.hit("key:k", Quota(10, 60)).allowed for _ in range(10))
    assert accepted == 4

    async def on_the_loop() -> int:  # the form the verification path uses
        answers = [await limiter.hit_async("key:a", Quota(10, 60)) for _ in range(10)]
        return sum(answer.allowed for answer in answers)

    started = time.monotonic()
    assert asyncio.run(on_the_loop()) == 4
    # Availability, not speed: the fallback answers without waiting out retries and backoff
    # (the asyncio client's defaults held each decision for seconds).
    assert time.monotonic() - started < 5


def test_a_message_that_is_not_an_eviction_leaves_the_lease_alone(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """Another program (or an older release) speaking on the channel breaks nothing."""
    first, _ = fleet_of_two
    assert first.fleet is not None
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=60, max_entries=10)
    first.fleet.subscribe("api_key", cache)
    cache.put("digest", "record")
    client = redis.Redis.from_url(require_redis())
    client.publish(CHANNEL, "api_key some-digest")
    client.close()
    time.sleep(2 * LEASE_MS / 1000)
    assert first.fleet.lease.held()
    assert cache.get("digest") == "record"


@pytest.mark.postgres
def test_a_revocation_during_a_redis_restart_returns_once_redis_is_back_and_evicted(
    database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """The reconnect gap: the revocation waits for Redis, and by the time it returns the other
    instance, resubscribed or not, serves nothing it cached before."""
    server = PrivateRedis(tmp_path)
    server.start()
    config = make_config(database_url, redis_url=server.url, cache_lease_ms=LEASE_MS)
    first, second = Tessera(config, clock=clock), Tessera(config, clock=clock)
    try:
        _wait_for_lease(first, second)
        owner = new_owner(first, "ada@example.com")
        raw, key_id = new_key(first, owner, KeySpec(name="k", scopes=["workspaces:read"]))
        verdict = second.key_verifier.identify(raw, client_ip=None, allow_database=True)
        assert verdict.code == "valid"
        server.stop()
        revoking = threading.Thread(
            target=first.api_keys.revoke, args=(owner, key_id, ClientInfo())
        )
        revoking.start()
        time.sleep(1.0)
        assert revoking.is_alive(), "the revocation returned while no instance could be told"
        server.start()
        revoking.join(timeout=10)
        assert not revoking.is_alive()
        with pytest.raises(WouldBlock):
            second.key_verifier.identify(raw, client_ip=None, allow_database=False)
        _wait_for_lease(second)
        verdict = second.key_verifier.identify(raw, client_ip=None, allow_database=True)
        assert verdict.code == "revoked"
    finally:
        first.close()
        second.close()
        server.stop()


def test_a_lease_lapses_while_redis_is_stalled_and_returns_after(tmp_path: Path) -> None:
    """Redis frozen (SIGSTOP): no answer, so no lease after ``cache_lease_ms``; thawed, the
    lease comes back without restarting anything."""
    server = PrivateRedis(tmp_path)
    server.start()
    fleet = Fleet(server.url, lease_ms=LEASE_MS)
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=60, max_entries=10)
    fleet.subscribe("api_key", cache)
    assert server.process is not None
    try:
        _wait_until(fleet.lease.held)
        server.process.send_signal(signal.SIGSTOP)
        stalled = time.monotonic()
        _wait_until(lambda: not fleet.lease.held())
        assert time.monotonic() - stalled <= LEASE_MS / 1000 + 0.05
        cache.put("digest", "record")
        assert cache.get("digest") is None
        server.process.send_signal(signal.SIGCONT)
        _wait_until(fleet.lease.held)
    finally:
        server.process.send_signal(signal.SIGCONT)
        fleet.close()
        server.stop()


def _wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def _grant(deployment: Tessera, owner: Principal, client: OAuthClient) -> tuple[str, str]:
    """A person's grant to ``client`` and an access token issued under it."""
    assert owner.organization_id is not None
    scopes = frozenset({"workspaces:read"})
    grant = deployment.oauth_grants.consent(
        client, owner.id, owner.organization_id, scopes, ClientInfo()
    )
    subject = Subject(owner.organization_id, owner.id, grant.id, "workspaces:read")
    token = deployment.oauth_issuer.token(client, subject, "workspaces:read")["access_token"]
    return grant.id, token


def _oauth_client(deployment: Tessera, owner: Principal) -> OAuthClient:
    spec = ClientSpec("App", ["https://app.example/cb"], ["workspaces:read"])
    return deployment.oauth_clients.create(owner, spec, ClientInfo()).client


@pytest.mark.postgres
def test_a_grant_revocation_returns_only_once_every_instance_has_forgotten_the_grant(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """The other instance had the grant cached; the moment ``revoke`` returns, it no longer
    serves it (no polling), and the grant's token is refused there."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    client = _oauth_client(first, owner)
    grant_id, token = _grant(first, owner, client)
    for _ in range(2):  # the second look-up is served from the cache
        principal = second.credentials.token_principal(token, None)
        assert not isinstance(principal, Refused) and principal.id == owner.id
    first.oauth_grants.revoke(owner.id, grant_id, ClientInfo())
    assert second.oauth_grants.grant_scopes(grant_id) is None
    assert isinstance(second.credentials.token_principal(token, None), Refused)


@pytest.mark.postgres
def test_deleting_a_client_waits_one_lease_for_a_silent_instance_however_many_grants_end(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """A client's deletion evicts the client and each of its grants: all of them are announced
    at once and acknowledged together, so an instance that never answers holds the deletion
    for one lease, not one lease per grant."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    client = _oauth_client(first, owner)
    tokens = []
    for number in range(3):
        person = new_owner(first, f"user{number}@example.com", f"Org {number}")
        grant_id, token = _grant(first, person, client)
        assert second.oauth_grants.is_live(grant_id)
        tokens.append(token)
    client_redis = redis.Redis.from_url(require_redis())
    now_ms = int(client_redis.time()[0]) * 1000
    client_redis.zadd(INSTANCES, {"partitioned-instance": now_ms + 10_000})
    try:
        started = time.monotonic()
        first.oauth_clients.delete(owner, client.id, ClientInfo())
        waited = time.monotonic() - started
    finally:
        client_redis.zrem(INSTANCES, "partitioned-instance")
        client_redis.close()
    assert LEASE_MS / 1000 <= waited < 2 * LEASE_MS / 1000
    for token in tokens:
        assert isinstance(second.credentials.token_principal(token, None), Refused)


def test_without_a_lease_refuse_answers_503_for_an_oauth_grant(
    database_url: str, clock: ManualClock
) -> None:
    """Redis unreachable and ``revocation_fallback = "refuse"``: a grant's verdict is neither
    served from the cache nor read from the database."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    config = make_config(database_url)
    deployment = Tessera(config, clock=clock)
    deployment.start(migrate=False)
    owner = new_owner(deployment, "ada@example.com")
    client = _oauth_client(deployment, owner)
    grant_id, _ = _grant(deployment, owner, client)
    deployment.close()
    refusing = make_config(
        database_url, redis_url=unreachable, cache_lease_ms=LEASE_MS, revocation_fallback="refuse"
    )
    isolated = Tessera(refusing, clock=clock)
    try:
        with pytest.raises(ServiceUnavailable):
            isolated.oauth_grants.is_live(grant_id)
        with pytest.raises(ServiceUnavailable):
            isolated.oauth_grants.client_lives(client.id)
    finally:
        isolated.close()
    reading = make_config(database_url, redis_url=unreachable, cache_lease_ms=LEASE_MS)
    fallback = Tessera(reading, clock=clock)
    try:  # "database": read each time, never from the cache
        assert fallback.fleet is not None and not fallback.fleet.lease.held()
        assert fallback.oauth_grants.is_live(grant_id)
    finally:
        fallback.close()


@pytest.mark.postgres
def test_repeating_a_grant_revocation_tells_every_instance_again(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """A revocation answered 503 (saved, not acknowledged) is confirmed by repeating it: the
    repeat answers the grant again and announces its eviction again, rather than 404."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    grant_id, _ = _grant(first, owner, _oauth_client(first, owner))
    first.oauth_grants.revoke(owner.id, grant_id, ClientInfo())
    client = redis.Redis.from_url(require_redis())
    try:
        before = int(client.get(SEQUENCE) or 0)
        repeated = second.oauth_grants.revoke(owner.id, grant_id, ClientInfo())
        assert int(client.get(SEQUENCE) or 0) > before
    finally:
        client.close()
    assert repeated.id == grant_id and repeated.revoked_at is not None
    stranger = new_owner(first, "eve@example.com", "Other")
    with pytest.raises(NotFound):
        second.oauth_grants.revoke(stranger.id, grant_id, ClientInfo())


def test_without_a_lease_refuse_answers_503_problem_json_to_an_oauth_token_over_http(
    database_url: str, clock: ManualClock
) -> None:
    """The resource API, userinfo and introspection alike: the token's grant cannot be checked
    without a lease, so each answers 503 (never 500, never a verdict)."""
    setup = Tessera(make_config(database_url), clock=clock)
    setup.start(migrate=False)
    owner = new_owner(setup, "ada@example.com")
    spec = ClientSpec("App", ["https://app.example/cb"], ["openid", "workspaces:read"])
    created = setup.oauth_clients.create(owner, spec, ClientInfo())
    _, token = _grant(setup, owner, created.client)
    setup.close()
    assert created.secret is not None
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    config = make_config(
        database_url, redis_url=unreachable, cache_lease_ms=LEASE_MS, revocation_fallback="refuse"
    )
    isolated = Tessera(config, clock=clock)
    try:
        with TestClient(create_app(isolated), base_url="http://127.0.0.1:8000") as web:
            bearer = {"Authorization": f"Bearer {token}"}
            answers = [
                web.get("/v1/me", headers=bearer),
                web.get("/oauth2/userinfo", headers=bearer),
                web.post(
                    "/oauth2/introspect",
                    data={"token": token},
                    auth=(created.client.id, created.secret),
                ),
            ]
    finally:
        isolated.close()
    assert [answer.status_code for answer in answers] == [503, 503, 503], [
        answer.text for answer in answers
    ]
    assert answers[0].headers["content-type"] == "application/problem+json"


@pytest.mark.postgres
def test_repeating_a_client_deletion_tells_every_instance_again(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """The same for a client: the repeat answers the deleted client and announces it again."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    client = _oauth_client(first, owner)
    first.oauth_clients.delete(owner, client.id, ClientInfo())
    channel = redis.Redis.from_url(require_redis())
    try:
        before = int(channel.get(SEQUENCE) or 0)
        repeated = second.oauth_clients.delete(owner, client.id, ClientInfo())
        assert int(channel.get(SEQUENCE) or 0) > before
    finally:
        channel.close()
    assert repeated.id == client.id and repeated.deleted_at is not None
    assert not second.oauth_grants.client_lives(client.id)
    stranger = new_owner(first, "eve@example.com", "Other")
    with pytest.raises(NotFound):
        second.oauth_clients.delete(stranger, client.id, ClientInfo())


@pytest.mark.postgres
def test_a_grant_whose_eviction_was_lost_is_refused_within_one_lease(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """The grant is ended in the database and the revocation sequence rises, but no eviction
    arrives (as if lost between Redis and the instance): the instance that cached the grant
    empties its cache within one lease instead of serving the grant for its 30 s."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    grant_id, _ = _grant(first, owner, _oauth_client(first, owner))
    assert second.oauth_grants.is_live(grant_id)
    with first.db.session() as session:
        session.execute(
            update(OAuthGrantRow)
            .where(OAuthGrantRow.id == grant_id)
            .values(revoked_at=datetime.now(UTC))
        )
    assert second.oauth_grants.is_live(grant_id)  # still cached: nobody told it
    client = redis.Redis.from_url(require_redis())
    client.incr(SEQUENCE)
    client.close()
    deadline = time.monotonic() + LEASE_MS / 1000 + 0.05
    while second.oauth_grants.is_live(grant_id):
        assert time.monotonic() < deadline, "a grant outlived its lost eviction"
        time.sleep(0.01)


@pytest.mark.postgres
def test_a_new_grant_is_not_announced_and_a_widened_one_is(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """No instance can have cached a grant that did not exist, so consenting to a new one
    waits for nobody (not even a silent instance); widening one evicts it everywhere, since
    what is cached of it is too narrow."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    assert owner.organization_id is not None
    spec = ClientSpec("App", ["https://app.example/cb"], ["openid", "workspaces:read"])
    client = first.oauth_clients.create(owner, spec, ClientInfo()).client
    channel = redis.Redis.from_url(require_redis())
    now_ms = int(channel.time()[0]) * 1000
    channel.zadd(INSTANCES, {"partitioned-instance": now_ms + 10_000})
    try:
        started = time.monotonic()
        grant = first.oauth_grants.consent(
            client, owner.id, owner.organization_id, frozenset({"openid"}), ClientInfo()
        )
        assert time.monotonic() - started < LEASE_MS / 1000
    finally:
        channel.zrem(INSTANCES, "partitioned-instance")
    assert second.oauth_grants.grant_scopes(grant.id) == frozenset({"openid"})  # cached
    before = int(channel.get(SEQUENCE) or 0)
    first.oauth_grants.consent(
        client, owner.id, owner.organization_id, frozenset({"workspaces:read"}), ClientInfo()
    )
    assert int(channel.get(SEQUENCE) or 0) > before
    channel.close()
    assert second.oauth_grants.grant_scopes(grant.id) == frozenset({"openid", "workspaces:read"})
