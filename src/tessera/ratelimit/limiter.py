"""Rate limiter stores. The in-memory one serves a single process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from tessera.clock import Clock
from tessera.ratelimit.gcra import Quota, RateLimitDecision, decide


class RateLimiter(Protocol):
    def hit(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        """Count ``cost`` requests for ``key`` (all or none) and say whether they are allowed."""
        ...

    def peek(self, key: str, quota: Quota) -> RateLimitDecision:
        """The decision a request would get now, without counting one."""
        ...

    async def hit_async(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        """:meth:`hit` for a caller on the event loop, which it never blocks."""
        ...

    def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    """GCRA state in a bounded dict; the oldest keys go first when it is full."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        now = self._clock.timestamp()
        with self._lock:
            decision, tat = decide(quota, self._tats.get(key), now, cost)
            self._tats[key] = tat
            self._tats.move_to_end(key)
            if len(self._tats) > self._max_keys:
                self._tats.popitem(last=False)
        return decision

    async def hit_async(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        return self.hit(key, quota, cost)

    def peek(self, key: str, quota: Quota) -> RateLimitDecision:
        with self._lock:
            decision, _ = decide(quota, self._tats.get(key), self._clock.timestamp())
        return decision

    def reset(self, key: str) -> None:
        with self._lock:
            self._tats.pop(key, None)
