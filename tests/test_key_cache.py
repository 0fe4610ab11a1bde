"""The verification cache: bounded, short-lived, and emptied of a revoked key on every instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tessera.authz import Allowed, Refused, RequestFacts
from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys.cache import CHANNEL, TtlCache
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo
from tests.fixtures import make_config
from tests.provisioning import new_key, new_owner
from tests.services import require_redis


def test_cache_holds_at_most_its_bound_dropping_the_least_recently_used() -> None:
    """Past ``max_entries`` the least recently stored entry goes first."""
    cache: TtlCache[int] = TtlCache(ManualClock(datetime.now(UTC)), ttl=5, max_entries=3)
    for number in range(5):
        cache.put(f"k{number}", number)
    assert len(cache) == 3
    assert cache.get("k0") is None and cache.get("k1") is None
    assert cache.get("k4") == 4


def test_cache_entries_end_with_their_lifetime() -> None:
    """An entry is served until its lifetime ends and never after."""
    clock = ManualClock(datetime.now(UTC))
    cache: TtlCache[str] = TtlCache(clock, ttl=5, max_entries=10)
    cache.put("digest", "record")
    clock.advance(4.9)
    assert cache.get("digest") == "record"
    clock.advance(0.1)
    assert cache.get("digest") is None


def test_a_held_entry_stands_until_evicted_replaced_expired_or_unleased() -> None:
    """``still_holds`` answers for exactly the entry ``entry`` returned: an eviction (a
    revocation), a newer value, the end of its lifetime and a lost lease each end it."""
    clock = ManualClock(datetime.now(UTC))
    cache: TtlCache[str] = TtlCache(clock, ttl=5, max_entries=10)
    cache.put("digest", "record")
    held = cache.entry("digest")
    assert held is not None and cache.still_holds("digest", held)
    cache.evict("digest")
    assert not cache.still_holds("digest", held)

    cache.put("digest", "record")
    held = cache.entry("digest")
    assert held is not None
    cache.put("digest", "record, read again")
    assert not cache.still_holds("digest", held)

    held = cache.entry("digest")
    assert held is not None
    clock.advance(5)
    assert not cache.still_holds("digest", held) and cache.entry("digest") is None

    cache.put("digest", "record")
    held = cache.entry("digest")
    assert held is not None
    cache.lease.until = 0.0
    assert not cache.still_holds("digest", held) and cache.entry("digest") is None


@pytest.fixture
def two_instances(database_url: str, clock: ManualClock) -> Iterator[tuple[Tessera, Tessera]]:
    """Two deployments on the same database and Redis, as two servers would be."""
    config = make_config(database_url, redis_url=require_redis())
    first, second = Tessera(config, clock=clock), Tessera(config, clock=clock)
    first.start(migrate=False)
    _wait_for_subscribers(config.redis_url, 2)
    yield first, second
    first.close()
    second.close()


def _wait_for_subscribers(url: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) < count:
        assert time.monotonic() < deadline, "the eviction listeners did not subscribe"
        time.sleep(0.02)
    client.close()


@pytest.mark.postgres
def test_revocation_reaches_another_instance_through_redis(
    two_instances: tuple[Tessera, Tessera],
) -> None:
    """A key cached by one instance is refused there as soon as another instance revokes it,
    although the injected clock never lets the cache entry expire."""
    first, second = two_instances
    owner = new_owner(first, "ada@example.com")
    raw, key_id = new_key(first, owner, KeySpec(name="k", scopes=["workspaces:read"]))
    assert second.key_verifier.identify(raw, client_ip=None, allow_database=True).code == "valid"
    first.api_keys.revoke(owner, key_id, ClientInfo())
    deadline = time.monotonic() + 5
    while second.key_verifier.identify(raw, client_ip=None, allow_database=True).code != "revoked":
        assert time.monotonic() < deadline, "the revocation never reached the other instance"
        time.sleep(0.01)


def test_a_repeated_decision_sees_an_expiry_and_a_revocation(
    tessera: Tessera, clock: ManualClock
) -> None:
    """The pipeline answers a repeated request from the steps it remembers, and stops as soon
    as the key expires (its cache entry still live) or is revoked."""
    owner = new_owner(tessera, "ada@example.com")
    soon = clock.now() + timedelta(seconds=3)
    spec = KeySpec(name="k", scopes=["workspaces:read"], expires_at=soon)
    raw, key_id = new_key(tessera, owner, spec)
    facts = RequestFacts(raw, ("workspaces:read",))
    assert isinstance(tessera.authorizer.decide(facts), Allowed)
    assert isinstance(tessera.authorizer.decide(facts, allow_database=False), Allowed)
    clock.advance(3)
    assert _code(tessera.authorizer.decide(facts, allow_database=False)) == "expired"

    raw, key_id = new_key(tessera, owner, KeySpec(name="k2", scopes=["workspaces:read"]))
    facts = RequestFacts(raw, ("workspaces:read",))
    assert isinstance(tessera.authorizer.decide(facts), Allowed)
    assert isinstance(tessera.authorizer.decide(facts, allow_database=False), Allowed)
    tessera.api_keys.revoke(owner, key_id, ClientInfo())
    assert _code(tessera.authorizer.decide(facts)) == "revoked"


def _code(decision: object) -> str:
    return decision.code if isinstance(decision, Refused) else "allowed"


def test_a_value_read_before_an_eviction_is_not_stored_after_it() -> None:
    """A database read racing a revocation cannot put the stale record back in the cache."""
    cache: TtlCache[str] = TtlCache(ManualClock(datetime.now(UTC)), ttl=5, max_entries=10)
    read_at = cache.generation
    cache.evict("digest")  # the revocation commits while the read is in flight
    cache.put("digest", "active record", read_at_generation=read_at)
    assert cache.get("digest") is None
    cache.put("digest", "revoked record", read_at_generation=cache.generation)
    assert cache.get("digest") == "revoked record"
