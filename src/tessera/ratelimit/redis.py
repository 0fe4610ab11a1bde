"""The Redis store: the GCRA check and update as one Lua script, atomic across instances.

The script receives the current time from the caller's (injected) clock rather than reading
Redis ``TIME``: tests then control time, and deployments already keep their hosts' clocks in
step (tokens and sessions depend on it too).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import Any

import redis
import redis.asyncio

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
# The name Redis files the script under (EVALSHA), not a security measure.
GCRA_SHA = hashlib.sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest()
# What the asynchronous client copies of the synchronous one's settings.
_COPIED = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout")


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, clock: Clock, *, prefix: str = PREFIX) -> None:
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._script: Any = client.register_script(GCRA_SCRIPT)
        # One batcher per event loop: asyncio connections belong to the loop that opened them.
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_url(cls, url: str, clock: Clock) -> RedisRateLimiter:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, clock)

    def hit(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        return self._run(key, quota, count=True, cost=cost)

    def peek(self, key: str, quota: Quota) -> RateLimitDecision:
        return self._run(key, quota, count=False)

    async def hit_async(self, key: str, quota: Quota, cost: int = 1) -> RateLimitDecision:
        """:meth:`hit` on the event loop: the same script, sent with the other decisions asked
        for in the same turn of the loop in one pipeline (one round trip for all of them)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _Batcher(loop, _async_client(self._client))
        now = self._clock.timestamp()
        arguments = (repr(now), repr(quota.emission_interval), quota.per_seconds, "1", cost)
        allowed, tat = await batcher.run(self._prefix + key, arguments)
        return decision_from(quota, bool(allowed), float(tat), now)

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


def _async_client(client: redis.Redis) -> redis.asyncio.Redis:
    settings = client.connection_pool.connection_kwargs
    copied = {name: settings[name] for name in _COPIED if name in settings}
    if "path" in settings:  # a Unix socket
        copied = {k: v for k, v in copied.items() if k not in ("host", "port")}
        copied["unix_socket_path"] = settings["path"]
    return redis.asyncio.Redis(**copied)


class _Batcher:
    """Collects the script calls of one turn of the event loop and sends them in one pipeline.

    Each call is still the whole atomic script on its own key, so no decision is approximated:
    only the round trip is shared. A batch in flight does not hold the next one back (the
    connection pool opens another connection)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: redis.asyncio.Redis) -> None:
        self._loop = loop
        self._client = client
        self._pending: list[tuple[str, tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, key: str, arguments: tuple[Any, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((key, arguments, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = self._loop.create_task(self._send(batch))
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[str, tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            results = await self._execute(batch)
            if any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                await self._client.script_load(GCRA_SCRIPT)  # Redis restarted or was flushed
                results = await self._execute(batch)
        except Exception as error:  # the connection: every decision of the batch fails alike
            results = [error] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # its request was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(
        self, batch: list[tuple[str, tuple[Any, ...], asyncio.Future[Any]]]
    ) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key, arguments, _ in batch:
                pipe.evalsha(GCRA_SHA, 1, key, *arguments)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
