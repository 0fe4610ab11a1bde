"""The rate limiter's contract, on every store: memory, and Redis (real server) behind the
resilient wrapper the deployment uses. The event-loop form (``hit_async``) answers exactly as
the blocking one, however many decisions arrive in one turn of the loop."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import redis

from tessera.clock import ManualClock
from tessera.ratelimit import MemoryRateLimiter, Quota, RateLimiter
from tessera.ratelimit.redis import RedisRateLimiter
from tessera.ratelimit.resilient import ResilientRateLimiter
from tests.services import require_redis

QUOTA = Quota(10, 60)


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock)
        return
    client = redis.Redis.from_url(require_redis())
    prefix = f"tessera-test:{secrets.token_hex(6)}:"
    yield ResilientRateLimiter(
        RedisRateLimiter(client, clock, prefix=prefix), MemoryRateLimiter(clock), "refuse"
    )
    client.close()


def test_hit_async_answers_as_hit(limiter: RateLimiter, clock: ManualClock) -> None:
    """The same quota counted through both forms gives the figures one form alone gives."""

    async def alternate() -> list[tuple[bool, int]]:
        answers = []
        for index in range(12):
            if index % 2:
                decision = await limiter.hit_async("k", QUOTA)
            else:
                decision = limiter.hit("k", QUOTA)
            answers.append((decision.allowed, decision.remaining))
        return answers

    answers = asyncio.run(alternate())
    assert answers == [(True, 9 - i) for i in range(10)] + [(False, 0), (False, 0)]
    clock.advance(6)  # one request's worth of the quota comes back
    assert asyncio.run(limiter.hit_async("k", QUOTA)).allowed


def test_decisions_of_one_turn_are_exact(limiter: RateLimiter) -> None:
    """50 decisions asked for at once on a quota of 10: exactly 10 allowed, none approximated,
    and each allowed one sees a different remaining count."""

    async def burst() -> list[tuple[bool, int]]:
        decisions = await asyncio.gather(*(limiter.hit_async("b", QUOTA) for _ in range(50)))
        return [(d.allowed, d.remaining) for d in decisions]

    answers = asyncio.run(burst())
    allowed = [remaining for ok, remaining in answers if ok]
    assert len(allowed) == 10
    assert sorted(allowed) == list(range(10))
    assert limiter.peek("b", QUOTA).remaining == 0


def test_uses_are_counted_all_or_none(limiter: RateLimiter) -> None:
    async def uses() -> list[bool]:
        first = await limiter.hit_async("u", QUOTA, 7)
        second = await limiter.hit_async("u", QUOTA, 4)  # only 3 left: refused, none counted
        third = await limiter.hit_async("u", QUOTA, 3)
        return [first.allowed, second.allowed, third.allowed]

    assert asyncio.run(uses()) == [True, False, True]


def test_a_turn_of_the_loop_is_one_round_trip(clock: ManualClock) -> None:
    """Redis only: the decisions of one turn travel in one call of the script."""
    client = redis.Redis.from_url(require_redis())
    limiter = RedisRateLimiter(client, clock, prefix=f"tessera-test:{secrets.token_hex(6)}:")
    sent: list[int] = []

    async def burst() -> list[bool]:
        await limiter.hit_async("warm", QUOTA)  # the loop's connection, and the script loaded
        batcher = next(iter(limiter._batchers.values()))
        execute = batcher._execute

        async def counted(keys: list[str], arguments: list[str]) -> bytes:
            sent.append(len(keys))
            return await execute(keys, arguments)

        batcher._execute = counted  # type: ignore[method-assign]
        decisions = await asyncio.gather(
            *(limiter.hit_async(f"key{i % 4}", QUOTA) for i in range(48))
        )
        return [decision.allowed for decision in decisions]

    allowed = asyncio.run(burst())
    client.close()
    assert sent == [48]
    assert allowed.count(True) == 40  # 10 on each of the four keys, in the order asked


def test_a_flushed_script_is_loaded_again(clock: ManualClock) -> None:
    """Redis only: after SCRIPT FLUSH (a restarted Redis) the next batch still decides."""
    client = redis.Redis.from_url(require_redis())
    limiter = RedisRateLimiter(client, clock, prefix=f"tessera-test:{secrets.token_hex(6)}:")

    async def twice() -> list[bool]:
        first = await limiter.hit_async("s", QUOTA)
        client.script_flush()
        second = await asyncio.gather(*(limiter.hit_async("s", QUOTA) for _ in range(3)))
        return [first.allowed, *(d.allowed for d in second)]

    assert asyncio.run(twice()) == [True, True, True, True]
    assert limiter.peek("s", QUOTA).remaining == 5
    client.close()


def test_redis_down_falls_back_or_refuses_on_the_loop(clock: ManualClock) -> None:
    from tessera.errors import ServiceUnavailable

    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    local = ResilientRateLimiter(RedisRateLimiter(dead, clock), MemoryRateLimiter(clock), "local")
    assert asyncio.run(local.hit_async("d", QUOTA)).remaining == 9
    refuse = ResilientRateLimiter(RedisRateLimiter(dead, clock), MemoryRateLimiter(clock), "refuse")
    with pytest.raises(ServiceUnavailable):
        asyncio.run(refuse.hit_async("d", QUOTA))
