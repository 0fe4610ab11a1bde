"""The bounded in-process caches of the verification path, and what lets them be trusted.

Entries live at most ``ttl`` seconds, and a revocation or roll made through this process evicts
its entry at once. Across instances (SPEC section 6, "Revocation across instances") a cache
serves an entry only while its :class:`Lease` is held; with Redis configured, the
:class:`Fleet` of the process holds it:

- one subscription to the channel ``tessera:key-evictions`` carries every eviction;
- every ``cache_lease_ms / 3`` the fleet writes its heartbeat (``tessera:instances``, scored by
  Redis's own clock), reads the revocation sequence, then sends ``PING`` on the subscription's
  own connection. Redis answers in order, so when the ``PONG`` arrives every eviction published
  before the ``PING`` has been read and applied; the lease then runs until ``cache_lease_ms``
  after the ``PING`` was sent. A subscription that breaks or stalls stops renewing it;
- a revocation sequence (``tessera:revocation-seq``) rises with every eviction: a sequence above
  the highest one received means one was lost, and the caches are emptied; so are they each
  time the subscription is made again (entries are only trusted while it stays unbroken);
- :meth:`Fleet.publish` (one eviction or several, announced together) answers once every live
  instance (a heartbeat younger than the lease) has acknowledged each eviction, or once
  ``cache_lease_ms`` has passed since they were published, by when any instance that did not
  acknowledge has lost its lease.

The check on the hot path is one comparison of the lease's end with the monotonic clock.
Without Redis, one process holds its lease for good and several workers hold none.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from tessera.clock import Clock
from tessera.errors import ServiceUnavailable

log = logging.getLogger("tessera.keys")
T = TypeVar("T")
CHANNEL = "tessera:key-evictions"
INSTANCES = "tessera:instances"
SEQUENCE = "tessera:revocation-seq"
ACKS = "tessera:eviction-acks:"
# How long a revocation keeps trying to publish its eviction while Redis cannot be reached.
PUBLISH_PATIENCE_SECONDS = 5.0
# Heartbeats older than this are forgotten; within it they count instances for rate limits.
COUNTED_SECONDS = 2.0
FORGOTTEN_SECONDS = 60.0
# A subscription that answers nothing for this long (or four leases) is made again.
STALL_SECONDS = 2.0
# Margin for clocks that do not run at exactly the same rate, and for the answer's transit.
LEASE_MARGIN_SECONDS = 0.05
NO_LEASE = "Credentials cannot be checked right now; try again shortly."

HEARTBEAT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local counted = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[2]), '+inf')
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
return {seq, counted}
"""
# ARGV: the channel, the topic, how recent a live heartbeat is, then (message id, digest) pairs.
ANNOUNCE_SCRIPT = """
for i = 4, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[i] .. ' ' .. ARGV[2] .. ' ' .. ARGV[i + 1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[3]), '+inf')
"""


class Lease:
    """Whether this process may serve cached verdicts: until ``until`` (monotonic seconds)."""

    __slots__ = ("refuse", "until")

    def __init__(self, *, held: bool, refuse: bool = False) -> None:
        self.until = math.inf if held else 0.0
        self.refuse = refuse  # without the lease, answer 503 rather than read the database

    def held(self) -> bool:
        return time.monotonic() < self.until

    def check_fallback(self) -> None:
        """Raise :class:`ServiceUnavailable` when the lease is lost and the deployment chose
        ``revocation_fallback = "refuse"``; else the caller reads the database."""
        if self.refuse and not self.held():
            raise ServiceUnavailable(NO_LEASE)


class EvictionChannel(Protocol):
    """Carries evictions to the other instances."""

    def publish(self, *digests: str) -> None: ...

    def close(self) -> None: ...


# Connects a cache to the channel under a topic (what kind of credential it holds).
Subscribe = Callable[[str, "TtlCache[Any]"], EvictionChannel]


class CacheHold(NamedTuple):
    """An entry as :meth:`TtlCache.entry` returned it, to be checked with
    :meth:`TtlCache.still_holds` by one who remembers what it read."""

    key: str
    entry: tuple[float, Any]


class TtlCache(Generic[T]):
    """A least-recently-used map with a lifetime per entry, served only under its lease.

    ``generation`` counts evictions, so that a value read from the database before an eviction
    (a revocation committed while the read was in flight) is never stored after it.
    """

    def __init__(
        self, clock: Clock, *, ttl: float, max_entries: int, lease: Lease | None = None
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0
        self.lease = lease or Lease(held=True)

    def get(self, key: str) -> T | None:
        if self.lease.until <= time.monotonic():
            return None  # no lease: the entry may have been revoked without our knowing
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock.timestamp():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return entry[1]

    def entry(self, key: str) -> tuple[float, T] | None:
        """The live entry itself (its expiry and value), to be checked later with
        :meth:`still_holds` by one who remembers what it read."""
        if self.lease.until <= time.monotonic():
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock.timestamp():
            return None
        return entry

    def still_holds(self, key: str, entry: tuple[float, T]) -> bool:
        """Whether ``entry`` is still what this cache serves for ``key``: under the lease, not
        expired, neither evicted nor replaced since :meth:`entry` returned it."""
        return (
            self._entries.get(key) is entry
            and self.lease.until > time.monotonic()
            and entry[0] > self._clock.timestamp()
        )

    def put(self, key: str, value: T, *, read_at_generation: int | None = None) -> None:
        """Store ``value``; with ``read_at_generation``, only if nothing was evicted since."""
        with self._lock:
            if read_at_generation is not None and read_at_generation != self.generation:
                return
            self._entries[key] = (self._clock.timestamp() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def update(self, key: str, value: T) -> None:
        """Change a live entry's value, keeping its expiry (its lifetime never grows)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries[key] = (entry[0], value)

    def evict(self, key: str) -> None:
        with self._lock:
            self.generation += 1
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class LocalChannel:
    """The channel of a deployment without Redis: nothing to tell, nobody to wait for."""

    def __init__(self, lease: Lease, cache: TtlCache[Any]) -> None:
        cache.lease = lease

    def publish(self, *digests: str) -> None:
        pass

    def close(self) -> None:
        pass


def local_subscribe(*, workers: int) -> Subscribe:
    """Without Redis: one process trusts its cache for good, several workers never do."""
    lease = Lease(held=workers == 1)
    return lambda _topic, cache: LocalChannel(lease, cache)


class _Topic:
    def __init__(self, fleet: Fleet, topic: str) -> None:
        self._fleet = fleet
        self._topic = topic

    def publish(self, *digests: str) -> None:
        self._fleet.publish(self._topic, *digests)

    def close(self) -> None:
        self._fleet.close()


class Fleet:
    """This instance among the others: its lease, its heartbeat, the evictions it hears and
    acknowledges, and the ones it publishes (module docstring)."""

    def __init__(self, redis_url: str, *, lease_ms: int, refuse: bool = False) -> None:
        import redis

        self.lease = Lease(held=False, refuse=refuse)
        self.instance_id = uuid.uuid4().hex
        self.counted_instances = 1  # live instances seen in the last heartbeat
        self._lease_seconds = lease_ms / 1000
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=0.5)
        self._heartbeat = self._client.register_script(HEARTBEAT_SCRIPT)
        self._announce = self._client.register_script(ANNOUNCE_SCRIPT)
        self._caches: dict[str, list[TtlCache[Any]]] = {}
        self._unsent: list[tuple[str, str]] = []  # evictions Redis could not take, sent later
        self._pings = itertools.count()
        self._highest_seq = 0
        self._stop = threading.Event()
        self._warned_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._closed = False

    def subscribe(self, topic: str, cache: TtlCache[Any]) -> EvictionChannel:
        cache.lease = self.lease
        self._caches.setdefault(topic, []).append(cache)
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="tessera-fleet", daemon=True)
            self._thread.start()
        return _Topic(self, topic)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._lease_seconds + 2)
        try:
            self._client.zrem(INSTANCES, self.instance_id)
        except Exception:  # nobody waits on a heartbeat older than a lease anyway
            log.debug("could not withdraw the heartbeat")
        self._client.close()

    # The revoking side.

    def publish(self, topic: str, *digests: str) -> None:
        """Tell every instance to evict ``digests``; returns once each live one has
        acknowledged every one of them, or once the lease of any that has not has run out.
        Several digests are announced together and their acknowledgements awaited together,
        so a silent instance holds the caller for one lease, not one per digest.

        Raises :class:`ServiceUnavailable` when Redis cannot be reached for
        ``PUBLISH_PATIENCE_SECONDS``: the change is committed, and repeating the request
        confirms it. The eviction is sent again when Redis returns."""
        import redis

        if not digests:
            return
        messages = [(uuid.uuid4().hex, digest) for digest in digests]
        patience = time.monotonic() + PUBLISH_PATIENCE_SECONDS
        while True:
            try:
                live = self._announce(
                    keys=[INSTANCES, SEQUENCE],
                    args=[CHANNEL, topic, self._live_ms(), *itertools.chain(*messages)],
                )
                break
            except redis.RedisError:
                if time.monotonic() >= patience:
                    self._unsent.extend((topic, digest) for digest in digests)
                    raise ServiceUnavailable(
                        "The change is saved, but not every instance could be told of it; "
                        "repeat the request shortly."
                    ) from None
                time.sleep(0.05)
        published_at = time.monotonic()
        instances = [bytes(member).decode() for member in live]
        waiting = {(ACKS + m, instance) for m, _ in messages for instance in instances}
        self._await_acks(waiting, published_at)

    def _await_acks(self, waiting: set[tuple[str, str]], published_at: float) -> None:
        """Wait for each (acknowledgement list, instance) pair, until one lease has passed."""
        import redis

        deadline = published_at + self._lease_seconds + LEASE_MARGIN_SECONDS
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                silent = len({instance for _, instance in waiting})
                log.info("%d instance(s) did not acknowledge; their leases ran out", silent)
                return
            keys = sorted({key for key, _ in waiting})
            try:
                got = self._client.blpop(keys, timeout=max(remaining, 0.01))
            except redis.RedisError:
                time.sleep(min(remaining, 0.05))
                continue
            if got is not None:
                key: Any = got[0]
                member: Any = got[1]
                waiting.discard((_text(key), _text(member)))

    def _live_ms(self) -> int:
        return int((self._lease_seconds + LEASE_MARGIN_SECONDS) * 1000)

    # The listening side, on its own thread.

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                self._session(pubsub)
            except Exception as error:
                self.lease.until = 0.0
                self._warn(error)
                self._stop.wait(0.05)
            finally:
                pubsub.close()

    def _session(self, pubsub: Any) -> None:
        """One subscription, from the moment it is made until it breaks."""
        pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + 2.0
        while pubsub.get_message(timeout=0.1) is None or not pubsub.subscribed:
            if time.monotonic() > deadline:
                raise TimeoutError("the subscription was not confirmed")
        self._clear()  # entries cached before it were not covered by it
        self._resend()
        self._highest_seq = -1
        while not self._stop.is_set():
            started = time.monotonic()
            seq, counted = self._heartbeat(
                keys=[INSTANCES, SEQUENCE],
                args=[self.instance_id, self._live_ms(), int(FORGOTTEN_SECONDS * 1000)],
            )
            self.counted_instances = max(int(counted), 1)
            token = f"lease-{next(self._pings)}"
            pubsub.ping(token)
            # A late answer on an unbroken connection loses nothing (the lease has lapsed
            # meanwhile); only a connection silent for this long is given up and made again.
            patience = max(4 * self._lease_seconds, STALL_SECONDS)
            self._read(pubsub, started + patience, until_pong=token)
            if int(seq) > self._highest_seq:  # an eviction was lost, or this is the first round
                if self._highest_seq >= 0:
                    self._clear()
                self._highest_seq = int(seq)
            self.lease.until = started + self._lease_seconds
            self._read(pubsub, started + self._lease_seconds / 3)

    def _read(self, pubsub: Any, deadline: float, *, until_pong: str | None = None) -> None:
        """Apply evictions until ``deadline``; with ``until_pong``, stop at that answer, and
        raise if it has not come by the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if until_pong is not None:
                    raise TimeoutError("Redis stopped answering on the subscription")
                return
            message = pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            kind = message.get("type")
            data = message.get("data")
            if kind == "pong" and until_pong is not None:
                if isinstance(data, bytes) and data.decode() == until_pong:
                    return
            elif kind == "message" and isinstance(data, bytes):
                self._apply(data.decode())

    def _apply(self, message: str) -> None:
        parts = message.split(" ", 3)
        if len(parts) != 4 or not parts[0].isdigit():
            log.warning("ignored a message on %s that is not an eviction", CHANNEL)
            return
        seq, message_id, topic, digest = parts
        for cache in self._caches.get(topic, ()):
            cache.evict(digest)
        self._highest_seq = max(self._highest_seq, int(seq))
        with self._client.pipeline(transaction=False) as pipe:
            pipe.rpush(ACKS + message_id, self.instance_id)
            pipe.expire(ACKS + message_id, 60)
            pipe.execute()

    def _clear(self) -> None:
        for caches in self._caches.values():
            for cache in caches:
                cache.clear()

    def _resend(self) -> None:
        """Publish the evictions a revocation could not (each one kept until it is sent)."""
        while self._unsent:
            topic, digest = self._unsent[0]
            self._announce(
                keys=[INSTANCES, SEQUENCE],
                args=[CHANNEL, topic, self._live_ms(), uuid.uuid4().hex, digest],
            )
            self._unsent.pop(0)

    def _warn(self, error: Exception) -> None:
        if self._stop.is_set():
            return
        if time.monotonic() - self._warned_at >= 60:
            self._warned_at = time.monotonic()
            log.warning(
                "eviction channel lost (%s); cached verdicts are not served until it is back",
                type(error).__name__,
            )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class EvictionBus:
    """A listener without a lease, for caches outside the fleet's guarantee (the remote
    integration's): it evicts what it hears and empties its cache when it reconnects."""

    def __init__(self, redis_url: str, topic: str, cache: TtlCache[Any]) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._topic = topic
        self._cache = cache
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="tessera-key-evictions", daemon=True
        )
        self._thread.start()

    def publish(self, *digests: str) -> None:
        for digest in digests:
            self._cache.evict(digest)

    def close(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                self._cache.clear()  # evictions sent while we were not listening are lost
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and isinstance(message.get("data"), bytes):
                        parts = message["data"].decode().split(" ", 3)
                        if len(parts) == 4 and parts[2] == self._topic:
                            self._cache.evict(parts[3])
            except Exception:
                log.warning("key eviction channel lost; reconnecting")
                self._stop.wait(1.0)
