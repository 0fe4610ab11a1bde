"""The bounded in-process cache of the verification path.

Entries live at most ``ttl`` seconds, and a revocation or roll made through this process
evicts its entry at once. With Redis configured, evictions are also published on a channel
every instance listens to, so a revocation reaches every instance within milliseconds; without
Redis, other processes converge within ``ttl``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from tessera.clock import Clock

log = logging.getLogger("tessera.keys")
T = TypeVar("T")
CHANNEL = "tessera:key-evictions"


class EvictionChannel(Protocol):
    """Carries evictions to the other instances."""

    def publish(self, digest: str) -> None: ...

    def close(self) -> None: ...


# Connects a cache to the channel under a topic (what kind of credential it holds).
Subscribe = Callable[[str, "TtlCache[Any]"], EvictionChannel]


class TtlCache(Generic[T]):
    """A least-recently-used map with a lifetime per entry.

    ``generation`` counts evictions, so that a value read from the database before an eviction
    (a revocation committed while the read was in flight) is never stored after it.
    """

    def __init__(self, clock: Clock, *, ttl: float, max_entries: int) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock.timestamp():
            with self._lock:
                self._entries.pop(key, None)
            return None
        return entry[1]

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


class EvictionBus:
    """Carries evictions between instances through Redis publish/subscribe."""

    def __init__(self, redis_url: str, topic: str, cache: TtlCache[Any]) -> None:
        import redis

        self._client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._topic = topic
        self._on_evict = cache.evict
        self._on_resync = cache.clear
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="tessera-key-evictions", daemon=True
        )
        self._thread.start()

    def publish(self, digest: str) -> None:
        try:
            self._client.publish(CHANNEL, f"{self._topic} {digest}")
        except Exception:  # a Redis outage must not undo a revocation already committed
            log.warning("could not publish a key eviction; other instances converge by TTL")

    def close(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(CHANNEL)
                self._on_resync()  # evictions sent while we were not listening are lost
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and isinstance(message.get("data"), bytes):
                        topic, _, digest = message["data"].decode().partition(" ")
                        if topic == self._topic:
                            self._on_evict(digest)
            except Exception:
                log.warning("key eviction channel lost; reconnecting")
                self._stop.wait(1.0)
