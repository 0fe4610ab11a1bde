"""The Redis store: the GCRA check and update as one Lua script, atomic across instances.

The script receives the current time from the caller's (injected) clock rather than reading
Redis ``TIME``: tests then control time, and deployments already keep their hosts' clocks in
step (tokens and sessions depend on it too).
"""

from __future__ import annotations

from typing import Any

import redis

from tessera.clock import Clock
from tessera.ratelimit.gcra import Quota, RateLimitDecision, decision_from

# KEYS[1]: the credential's TAT; ARGV: now, emission interval, window, count (1 = hit, 0 = peek),
# cost (requests counted at once).
# Returns {allowed, tat as a string}. A refused request leaves the TAT as it was.
GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local tat = math.max(stored, now)
local new_tat = tat + interval * tonumber(ARGV[5])
if now < new_tat - window then
  return {0, tostring(tat)}
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
return {1, tostring(new_tat)}
"""
PREFIX = "tessera:rl:"


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, clock: Clock, *, prefix: str = PREFIX) -> None:
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._script: Any = client.register_script(GCRA_SCRIPT)

    @classmethod
    def from_url(cls, url: str, clock: Clock) -> RedisRateLimiter:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, clock)

    def hit(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        return self._run(key, quota, count=True, cost=cost)

    def peek(self, key: str, quota: Quota) -> RateLimitDecision:
        return self._run(key, quota, count=False)

    def reset(self, key: str) -> None:
        self._client.delete(self._prefix + key)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def _run(self, key: str, quota: Quota, *, count: bool, cost: int = 1) -> RateLimitDecision:
        now = self._clock.timestamp()
        arguments = [
            repr(now),
            repr(quota.emission_interval),
            quota.per_seconds,
            "1" if count else "0",
            cost,
        ]
        allowed, tat = self._script(keys=[self._prefix + key], args=arguments)
        return decision_from(quota, bool(allowed), float(tat), now)
