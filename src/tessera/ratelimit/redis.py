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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tessera.clock import Clock
from tessera.ratelimit.gcra import SLACK, Quota, RateLimitDecision, decision_from

# One decision per key, in order: KEYS[i] is a credential's TAT, and ARGV[i] its now, emission
# interval, window, count (1 = hit, 0 = peek) and cost (requests counted at once), separated by
# spaces. Returns "allowed tat" for each key in turn, joined by commas (one string: the cheapest
# answer to read). A refused request leaves the TAT as it was. Each decision reads what the ones
# before it wrote, so deciding many in one call is exactly deciding them one after the other.
# TATs are written with 17 significant digits, which read back as the same float (Lua's own
# tostring keeps 14, a tenth of a millisecond at epoch times, which miscounted bursts).
GCRA_SCRIPT = """
local answers = {}
for i = 1, #KEYS do
  local now, interval, window, count, cost =
    string.match(ARGV[i], '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
  now = tonumber(now)
  window = tonumber(window)
  local stored = tonumber(redis.call('GET', KEYS[i]) or '0')
  local tat = math.max(stored, now)
  local new_tat = tat + tonumber(interval) * tonumber(cost)
  if new_tat - now > window + SLACK then
    answers[i] = '0 ' .. string.format('%.17g', tat)
  else
    if count == '1' then
      local ttl = math.ceil((new_tat - now) * 1000) + 1000
      redis.call('SET', KEYS[i], string.format('%.17g', new_tat), 'PX', ttl)
    end
    answers[i] = '1 ' .. string.format('%.17g', new_tat)
  end
end
return table.concat(answers, ',')
""".replace("SLACK", repr(SLACK))
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
        """:meth:`hit` on the event loop: the same script, called once for all the decisions
        asked for in the same turn of the loop (one round trip for all of them)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _Batcher(_async_client(self._client))
        now = self._clock.timestamp()
        allowed, tat = await batcher.run(self._prefix + key, _arguments(now, quota, "1", cost))
        return decision_from(quota, allowed == b"1", float(tat), now)

    def reset(self, key: str) -> None:
        self._client.delete(self._prefix + key)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def _run(self, key: str, quota: Quota, *, count: bool, cost: int = 1) -> RateLimitDecision:
        now = self._clock.timestamp()
        arguments = _arguments(now, quota, "1" if count else "0", cost)
        answer: bytes = self._script(keys=[self._prefix + key], args=[arguments])
        allowed, tat = answer.split(b" ")
        return decision_from(quota, allowed == b"1", float(tat), now)


def _arguments(now: float, quota: Quota, count: str, cost: int) -> str:
    return f"{now!r} {quota.emission_interval!r} {quota.window!r} {count} {cost}"


def _async_client(client: redis.Redis) -> redis.asyncio.Redis:
    settings = client.connection_pool.connection_kwargs
    copied = {name: settings[name] for name in _COPIED if name in settings}
    if "path" in settings:  # a Unix socket
        copied = {k: v for k, v in copied.items() if k not in ("host", "port")}
        copied["unix_socket_path"] = settings["path"]
    # One immediate retry (a pooled connection Redis closed), no backoff: the asyncio client's
    # default, ten retries with backoff, holds each request for seconds while Redis is down,
    # where the fallback must answer at once.
    return redis.asyncio.Redis(**copied, retry=Retry(NoBackoff(), 1))


class _Batcher:
    """Collects the decisions of one turn of the event loop and sends them to Redis as one call
    of the script; those that arrive while a call is in flight go together in the next one,
    sent as soon as the answer is back (one round trip at a time, as full as the load makes it).

    The script decides them one after the other, each whole and atomic, so no decision is
    approximated: only the round trip is shared."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        # Not the loop itself: the batchers are kept in a map keyed weakly by their loop.
        self._client = client
        self._keys: list[str] = []
        self._arguments: list[str] = []
        self._futures: list[asyncio.Future[Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = False

    def run(self, key: str, arguments: str) -> asyncio.Future[list[bytes]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._futures and not self._in_flight:
            loop.call_soon(self._flush)
        self._keys.append(key)
        self._arguments.append(arguments)
        self._futures.append(future)
        return future

    def _flush(self) -> None:
        if not self._futures:
            return
        self._in_flight = True
        batch = (self._keys, self._arguments, self._futures)
        self._keys, self._arguments, self._futures = [], [], []
        task = asyncio.get_running_loop().create_task(self._send(*batch))
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight = False
        self._flush()  # what arrived meanwhile

    async def _send(
        self, keys: list[str], arguments: list[str], futures: list[asyncio.Future[Any]]
    ) -> None:
        try:
            answers = await self._execute(keys, arguments)
        except Exception as error:  # the connection: every decision of the batch fails alike
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future, answer in zip(futures, answers.split(b","), strict=True):
            if not future.done():  # else its request was cancelled
                future.set_result(answer.split(b" "))

    async def _execute(self, keys: list[str], arguments: list[str]) -> bytes:
        try:
            answers: bytes = await self._client.evalsha(GCRA_SHA, len(keys), *keys, *arguments)
        except redis.exceptions.NoScriptError:  # Redis restarted or was flushed
            await self._client.script_load(GCRA_SCRIPT)
            answers = await self._client.evalsha(GCRA_SHA, len(keys), *keys, *arguments)
        return answers
