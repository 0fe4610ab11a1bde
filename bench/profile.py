"""Cost per request of the hot paths, in process: no server, no network, no load generator.

Each path's ASGI application is called ``--requests`` times with the request the load benches
send, and the time per request is printed next to a bare Starlette endpoint's; with
``--profile NAME`` the calls of that path run under cProfile and its heaviest functions are
printed (own time, then cumulative), which is where ``bench/PROFILE.md`` comes from.

    .venv/bin/python -m bench.profile [--requests 20000] [--profile forward-auth]

The figures leave out what the ASGI server spends on every request (parsing HTTP, about
30 µs with uvicorn's httptools), so the in-process ratios are lower than the load benches'.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Request

from bench.edge import ROUTES, SCOPES
from bench.verify import prepare

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_of(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Call:
    """One request, replayed: its scope is copied for each call (apps write into scopes)."""

    def __init__(self, app: Asgi, method: str, path: str, headers: dict[str, str], body: bytes):
        self.app = app
        self.scope = scope_of(method, path, {**headers, "content-length": str(len(body))})
        self.body = body
        self.status = 0

    async def __call__(self) -> None:
        body = self.body

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        await self.app(dict(self.scope), receive, send)


async def _run(call: Call, requests: int) -> float:
    await call()  # warm the caches
    assert call.status == 200, call.status
    started = time.perf_counter()
    for _ in range(requests):
        await call()
    return (time.perf_counter() - started) / requests * 1e6


def calls(folder: Path) -> dict[str, Call]:
    from bench.hello import app as hello
    from examples.contacts_api.app import create_app as contacts_app
    from tessera.config import load_config
    from tessera.deployment import Tessera
    from tessera.integrations.fastapi import Authenticator
    from tessera.keys.rules import KeySpec
    from tessera.web.app import create_app
    from tests.provisioning import new_key, new_owner

    env, key, token = prepare(folder, TESSERA_ROUTE=ROUTES, TESSERA_SCOPE=SCOPES)
    config = load_config(environ=env)
    tessera = Tessera(config)
    owner = new_owner(tessera, "reader@example.com", "Readers")
    reader, _ = new_key(tessera, owner, KeySpec("reader", ["contacts:read"]))
    app = create_app(tessera)
    auth = Authenticator.local(config)
    contacts = contacts_app(auth)
    _with_comparisons(contacts, auth)
    verify = json.dumps({"key": key, "required_scopes": ["workspaces:read"]}).encode()
    service = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    proxy = {
        "X-Tessera-Service-Token": token,
        "X-Original-Method": "GET",
        "X-Original-URI": "/v1/contacts",
        "X-API-Key": key,
    }
    return {
        "hello": Call(hello, "GET", "/hello", proxy, b""),
        "verify": Call(app, "POST", "/v1/keys/verify", service, verify),
        "forward-auth": Call(app, "GET", "/v1/forward-auth", proxy, b""),
        "contacts": Call(contacts, "GET", "/v1/contacts", {"X-API-Key": reader}, b""),
        "contacts-unprotected": Call(
            contacts, "GET", "/v1/contacts-unprotected", {"X-API-Key": reader}, b""
        ),
        # The same check as a FastAPI dependency, Depends(auth.requires(...)).
        "contacts-dependency": Call(
            contacts, "GET", "/v1/contacts-dependency", {"X-API-Key": reader}, b""
        ),
        # What FastAPI itself spends on a dependency that does nothing.
        "contacts-empty-dependency": Call(
            contacts, "GET", "/v1/contacts-empty-dependency", {"X-API-Key": reader}, b""
        ),
    }


def _with_comparisons(app: Any, auth: Any) -> None:
    from fastapi import Depends

    from tessera import Principal

    async def nothing(request: Request) -> None:
        return None

    @app.get("/v1/contacts-empty-dependency")
    async def list_contacts(_: None = Depends(nothing)) -> dict[str, Any]:
        return {"data": [], "caller": None}

    @app.get("/v1/contacts-dependency")
    async def list_with_dependency(
        principal: Principal = Depends(auth.requires("contacts:read")),
    ) -> dict[str, Any]:
        return {"data": [], "caller": principal.id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--profile", help="the path to profile: verify, forward-auth, contacts")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as folder:
        paths = calls(Path(folder))
        if args.profile:
            call = paths[args.profile]
            loop.run_until_complete(_run(call, 100))
            profiler = cProfile.Profile()
            profiler.enable()
            micros = loop.run_until_complete(_run(call, args.requests))
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
            print(f"{args.profile}: {micros:.1f} µs per request under the profiler")
            return
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(5):  # interleaved, the best of five: the machine's noise only adds
            for name, call in paths.items():
                micros = loop.run_until_complete(_run(call, args.requests // 5))
                best[name] = min(best[name], micros)
        for name, micros in best.items():
            ratio = best["hello"] / micros
            print(f"{name:22} {micros:7.1f} µs per request  (hello / this: {ratio:.2f})")


if __name__ == "__main__":
    main()
