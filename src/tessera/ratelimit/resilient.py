"""What happens when Redis cannot be reached: refuse (503) or decide in this process alone.

Deciding alone, each instance takes its share of the quota: ``ceil(requests / N)`` per window,
N being the live instances its last heartbeat counted (``keys/cache.py``). The fleet then accepts
at most ``requests + N - 1`` per window during an outage, instead of N times the quota.
Either way the outage is logged as a warning (at most once a minute), and no request ever
gets a 500 because of it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis

from tessera.errors import ServiceUnavailable
from tessera.ratelimit.gcra import Quota, RateLimitDecision
from tessera.ratelimit.limiter import MemoryRateLimiter
from tessera.ratelimit.redis import RedisRateLimiter

log = logging.getLogger("tessera.ratelimit")
WARN_EVERY_SECONDS = 60.0


class ResilientRateLimiter:
    def __init__(
        self,
        shared: RedisRateLimiter,
        local: MemoryRateLimiter,
        on_error: str,
        *,
        instances: Callable[[], int] = lambda: 1,
    ) -> None:
        self.shared = shared
        self.local = local
        self._instances = instances
        self._refuse = on_error == "refuse"
        self._warned_at = float("-inf")

    def hit(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        try:
            return self.shared.hit(key, quota, cost)
        except redis.RedisError as error:
            self._outage(error)
            return self.local.hit(key, self._share(quota), cost)

    async def hit_async(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        """:meth:`hit` on the event loop, without a worker thread."""
        try:
            return await self.shared.hit_async(key, quota, cost)
        except redis.RedisError as error:
            self._outage(error)
            return self.local.hit(key, quota, cost)

    def peek(self, key: str, quota: Quota) -> RateLimitDecision:
        try:
            return self.shared.peek(key, quota)
        except redis.RedisError as error:
            self._outage(error)
            return self.local.peek(key, self._share(quota))

    def reset(self, key: str) -> None:
        try:
            self.shared.reset(key)
        except redis.RedisError as error:
            self._outage(error)
        self.local.reset(key)

    def _share(self, quota: Quota) -> Quota:
        """This instance's part of ``quota`` while it decides alone."""
        instances = max(self._instances(), 1)
        return Quota(math.ceil(quota.requests / instances), quota.per_seconds)

    def ping(self) -> bool:
        return self.shared.ping()

    def _outage(self, error: Exception) -> None:
        if time.monotonic() - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = time.monotonic()
            action = "refusing requests (503)" if self._refuse else "limiting in this process only"
            log.warning(
                "Redis is unreachable for rate limits (%s); %s", type(error).__name__, action
            )
        if self._refuse:
            raise ServiceUnavailable("Rate limits cannot be checked right now; try again shortly.")
