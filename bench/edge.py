"""Enforcement at the edge, measured side by side in one run:

(a) ``GET /v1/forward-auth`` for a cached key against a bare Starlette endpoint (same request);
    then a bare endpoint answering as forward auth does (its fields, no body) against it,
    forward auth's answer with no check (``bench.hello``);
(b) the example contacts API's protected endpoint (local mode) against the same endpoint
    unprotected, on the same server; then the unprotected answer with the rate-limit fields
    alone against it, the part of the protection no check can avoid (``bench.contacts``);
(c) the Redis rate limiter's cost per decision against the in-memory one.

    .venv/bin/python -m bench.edge [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
import redis

from bench.contacts import FIELDS_PATH
from bench.harness import paired_rounds, report, uvicorn, wrk
from bench.hello import FIELDS_PATH as HELLO_FIELDS
from bench.verify import prepare
from tessera.clock import SystemClock
from tessera.ratelimit import MemoryRateLimiter, Quota, RateLimiter
from tessera.ratelimit.redis import RedisRateLimiter
from tests.provisioning import new_key, new_owner

ROUTES = json.dumps([{"methods": ["GET"], "path": "/v1/contacts*", "scopes": ["workspaces:read"]}])
SCOPES = json.dumps([{"name": "contacts:read"}, {"name": "contacts:write"}])


def forward_auth(folder: Path, seconds: int, rounds: int) -> None:
    env, key, token = prepare(folder / "a", TESSERA_ROUTE=ROUTES)
    headers = {
        "X-Tessera-Service-Token": token,
        "X-Original-Method": "GET",
        "X-Original-URI": "/v1/contacts",
        "X-API-Key": key,
    }
    with (
        uvicorn("tessera.web.asgi:create", factory=True, env=env) as tessera,
        uvicorn("bench.hello:app") as hello,
    ):
        answer = httpx.get(tessera + "/v1/forward-auth", headers=headers)
        assert answer.status_code == 200
        fields = httpx.get(hello + HELLO_FIELDS, headers=headers)
        assert set(fields.headers) == set(answer.headers), "the yardstick answers the same fields"
        assert fields.content == answer.content == b""

        def bare() -> float:
            return wrk(hello + "/hello", headers=headers, seconds=seconds)

        def checked() -> float:
            return wrk(tessera + "/v1/forward-auth", headers=headers, seconds=seconds)

        pairs = paired_rounds(rounds, checked, bare)
        floor = paired_rounds(
            rounds, lambda: wrk(hello + HELLO_FIELDS, headers=headers, seconds=seconds), bare
        )
    report("(a) GET /v1/forward-auth (cached key)", pairs, "bare Starlette hello")
    report("(a) bare endpoint answering forward auth's fields, no body", floor, "bare hello")


def integration(folder: Path, seconds: int, rounds: int) -> None:
    env, _, _ = prepare(folder / "b", TESSERA_SCOPE=SCOPES)
    key = _reader_key(env)
    headers = {"X-API-Key": key}
    with uvicorn("bench.contacts:from_environment", factory=True, env=env) as app:
        assert httpx.get(app + "/v1/contacts", headers=headers).status_code == 200
        fields = httpx.get(app + FIELDS_PATH, headers=headers)
        assert fields.status_code == 200 and "ratelimit" in fields.headers

        def unprotected() -> float:
            return wrk(app + "/v1/contacts-unprotected", headers=headers, seconds=seconds)

        pairs = paired_rounds(
            rounds, lambda: wrk(app + "/v1/contacts", headers=headers, seconds=seconds), unprotected
        )
        floor = paired_rounds(
            rounds, lambda: wrk(app + FIELDS_PATH, headers=headers, seconds=seconds), unprotected
        )
    report("(b) contacts API, protected (local mode)", pairs, "same endpoint unprotected")
    report("(b) the same answer with SPEC's rate-limit fields, no check", floor, "unprotected")


def _reader_key(env: dict[str, str]) -> str:
    from tessera.config import load_config
    from tessera.deployment import Tessera
    from tessera.keys.rules import KeySpec

    tessera = Tessera(load_config(environ=env))
    owner = new_owner(tessera, "reader@example.com", "Readers")
    key, _ = new_key(tessera, owner, KeySpec("reader", ["contacts:read"]))
    tessera.close()
    return key


def limiter_cost(decisions: int = 20_000, concurrent: int = 32) -> None:
    """µs per decision: the blocking form one at a time, and the event-loop form with
    ``concurrent`` requests deciding at once (as under load), whose decisions share a round
    trip to Redis."""
    clock = SystemClock()
    quota = Quota(10**9, 60)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    stores: dict[str, RateLimiter] = {
        "memory": MemoryRateLimiter(clock),
        "redis": RedisRateLimiter(client, clock, prefix="tessera-bench:"),
    }
    cost = {}
    for name, store in stores.items():
        store.hit("warm", quota)
        started = time.perf_counter()
        for index in range(decisions):
            store.hit(f"key:{index % 100}", quota)
        cost[name] = (time.perf_counter() - started) / decisions * 1e6

        async def on_loop(store: RateLimiter = store) -> float:
            async def one_request(worker: int) -> None:
                for index in range(decisions // concurrent):
                    await store.hit_async(f"key:{(worker + index) % 100}", quota)

            await store.hit_async("warm", quota)
            started = time.perf_counter()
            await asyncio.gather(*(one_request(worker) for worker in range(concurrent)))
            return (time.perf_counter() - started) / decisions * 1e6

        cost[f"{name} on the event loop"] = asyncio.run(on_loop())
    for name, micros in cost.items():
        print(f"(c) {name}: {micros:.1f} µs per decision")
    print(f"(c) ratio redis/memory: {cost['redis'] / cost['memory']:.1f}")
    loop_ratio = cost["redis on the event loop"] / cost["memory on the event loop"]
    print(f"(c) ratio on the event loop, {concurrent} at once: {loop_ratio:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        forward_auth(Path(folder), args.seconds, args.rounds)
        integration(Path(folder), args.seconds, args.rounds)
    limiter_cost()


if __name__ == "__main__":
    main()
