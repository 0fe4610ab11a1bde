"""Where a cached verification's time goes, stage by stage, in process (best of several runs
of each stage alone; the stages of one request add up to about its whole cost).

    .venv/bin/python -m bench.breakdown [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.edge import ROUTES, SCOPES
from bench.profile import Call, scope_of
from bench.verify import prepare
from tessera.authz import Ask, RequestFacts
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.edge.clientip import scope_forwarded_client_ip
from tessera.edge.facts import header_map, scope_facts
from tessera.keys.rules import KeySpec
from tessera.ratelimit.headers import raw_rate_limit_headers
from tessera.web.middleware import RequestContextMiddleware
from tessera.web.routes import forward_auth, verify
from tests.provisioning import new_key, new_owner


def best(stage: Callable[[], Any], calls: int, warm: Callable[[], Any]) -> float:
    runs = []
    for _ in range(5):
        warm()  # cached entries live 5 seconds: filled again before each run
        started = time.perf_counter()
        for _ in range(calls):
            stage()
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return min(runs)


def best_async(loop: asyncio.AbstractEventLoop, call: Call, calls: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await call()
        return (time.perf_counter() - started) / calls * 1e6

    return min(loop.run_until_complete(run()) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    n = args.calls
    logging.getLogger("tessera.access").setLevel(logging.WARNING)  # as served: no access log
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as folder:
        env, key, token = prepare(Path(folder), TESSERA_ROUTE=ROUTES, TESSERA_SCOPE=SCOPES)
        tessera = Tessera(load_config(environ=env))
        owner = new_owner(tessera, "b@example.com", "B")
        new_key(tessera, owner, KeySpec("b", ["contacts:read"]))
        authorizer = tessera.authorizer
        proxy = {
            "X-Tessera-Service-Token": token,
            "X-Original-Method": "GET",
            "X-Original-URI": "/v1/contacts",
            "X-API-Key": key,
        }
        scope = scope_of("GET", "/v1/forward-auth", proxy)
        headers = header_map(scope)
        trusted = tessera.config.trusted_proxies
        facts = scope_facts(
            scope,
            headers,
            trusted_proxies=trusted,
            cookie_name="tessera_session",
            address=scope_forwarded_client_ip(scope, headers, trusted),
            route=("GET", "/v1/contacts"),
        )
        authorizer.service(token, lambda: None, allow_database=True)  # the caches, warm
        ask = forward_auth.ask_of(scope)
        assert ask is not None
        decision = authorizer.decide(facts, ask=Ask(ask, token))
        assert decision.quota is not None and decision.principal is not None
        principal = decision.principal
        renderings = forward_auth._Renderings()
        key_facts = RequestFacts(key, ("workspaces:read",), keys_only=True)
        body = json.dumps({"key": key, "required_scopes": ["workspaces:read"]}).encode()

        async def nothing(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        stages = {
            "headers read into a dict": lambda: header_map(scope),
            "request facts (credential, client address)": lambda: scope_facts(
                scope,
                headers,
                trusted_proxies=trusted,
                cookie_name="tessera_session",
                address=scope_forwarded_client_ip(scope, headers, trusted),
                route=("GET", "/v1/contacts"),
            ),
            "proxy's service token": lambda: authorizer.service(
                token, lambda: None, allow_database=False
            ),
            "route table (method and URI to scopes)": lambda: tessera.routes.route_scopes(
                "GET", "/v1/contacts"
            ),
            "key: digest and cache": lambda: tessera.key_verifier.identify(
                key, client_ip="127.0.0.1", allow_database=False
            ),
            "limiter (in-process GCRA)": lambda: tessera.rate_limits.charge(principal),
            "usage counted (in memory)": lambda: tessera.key_verifier.record_use(
                principal.id, accepted=True, count=1
            ),
            "whole pipeline (authz.decide)": lambda: authorizer.decide(facts, allow_database=False),
            "forward auth: identity fields (rendered once)": lambda: renderings.of(principal),
            "rate-limit headers as bytes": lambda: raw_rate_limit_headers(decision.quota),
            "verify: body parsed": lambda: verify._parse(body),
            "verify: whole pipeline": lambda: authorizer.decide(key_facts, allow_database=False),
            "verify: verdict as JSON": lambda: verify.orjson.dumps(verify.verdict_body(decision)),
            "repeat: forward auth's ask digest": lambda: forward_auth.ask_of(scope),
            "repeat: decided again (holds, quota, use)": lambda: authorizer.decide_again(ask),
        }

        def warm() -> None:
            authorizer.service(token, lambda: None, allow_database=True)
            authorizer.decide(facts, ask=Ask(ask, token))
            authorizer.decide(key_facts)

        for name, stage in stages.items():
            print(f"{name:45} {best(stage, n, warm):6.2f} µs")
        bare = best_async(loop, Call(nothing, "GET", "/x", proxy, b""), n)
        wrapped = best_async(
            loop, Call(RequestContextMiddleware(nothing), "GET", "/x", proxy, b""), n
        )
        print(f"{'middleware (request id, checks, headers)':45} {wrapped - bare:6.2f} µs")
        tessera.close()


if __name__ == "__main__":
    main()
