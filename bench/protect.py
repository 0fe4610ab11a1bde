"""Where a protected endpoint's time goes, in situ: one-route FastAPI applications that differ
by one part each, called in process (no server, no network), best of seven runs of each.

1. ``unprotected``: the endpoint alone;
2. ``headers``: the same endpoint adding the rate-limit fields to its answer, as any limiter
   would (FastAPI's response parameter);
3. ``asked``: ``@auth.protect`` with a check that answers every ask at once with the same
   caller: the request's ask digest, the decorator and the headers, no decision;
4. ``protected``: ``@auth.protect`` in local mode, a repeated request decided in one step
   (``Authorizer.decide_again``);
5. ``inline``: that one step's work written in the endpoint itself, with no decorator, no
   coroutine but the endpoint's and no layer of the pipeline: the ask digest, the remembered
   request, the key's ``holds``, the charge, the use count and the fields. What ``protected``
   adds beyond it is what the layers cost; what it adds beyond ``headers`` is what the steps
   cost by themselves, the least any check with the same guarantees could.

The difference between two lines is what the part added costs among the rest of a request's
work, which is more than the same part timed alone in a loop (``bench.breakdown``).

    .venv/bin/python -m bench.protect [--requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from bench.edge import SCOPES
from bench.profile import Call, _run
from bench.verify import prepare
from tessera import Principal
from tessera.authz import Allowed, Authorizer
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.edge.facts import ask_digest, ask_peer
from tessera.integrations.checks import Checked, Presented
from tessera.integrations.fastapi import _ASKED, Authenticator
from tessera.keys.rules import KeySpec
from tessera.ratelimit import Quota, decide
from tessera.ratelimit.headers import raw_rate_limit_headers
from tests.provisioning import new_key, new_owner

Define = Callable[[FastAPI, Authenticator], None]


class _AnswersAtOnce:
    """A check that knows every ask: one caller, with figures like local mode's."""

    remembers = True

    def __init__(self) -> None:
        caller = Principal(
            kind="api_key",
            id="key_bench",
            organization_id="org_bench",
            scopes=frozenset({"contacts:read"}),
            workspace_id=None,
            environment="live",
            workspace_ids=None,
            via="api_key",
        )
        self.allowed = Allowed(caller, None, decide(Quota(10**9, 60), None, time.time())[0])

    async def again(self, ask: bytes) -> Allowed:
        return self.allowed

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked:
        raise AssertionError("every request is answered at once")

    def forget(self, key_digest: str) -> None:
        pass


def _unprotected(app: FastAPI, auth: Authenticator) -> None:
    @app.get("/v1/contacts")
    async def contacts() -> dict[str, Any]:
        return {"data": [], "caller": None}


def _headers(app: FastAPI, auth: Authenticator) -> None:
    figures = _AnswersAtOnce().allowed.quota
    assert figures is not None

    @app.get("/v1/contacts")
    async def contacts(response: Response) -> dict[str, Any]:
        response.raw_headers.extend(raw_rate_limit_headers(figures))
        return {"data": [], "caller": None}


def _protected(app: FastAPI, auth: Authenticator) -> None:
    @app.get("/v1/contacts")
    @auth.protect("contacts:read")
    async def contacts(principal: Principal) -> dict[str, Any]:
        return {"data": [], "caller": principal.id}


def _inline(authorizer: Authorizer) -> Define:
    """The work of ``Authorizer.decide_again`` for the integration's repeated request, written
    in the endpoint (the request's ask is remembered by ``protected``'s first request)."""
    asks, keys = authorizer._asks, authorizer._keys  # the pipeline's own state, read directly

    def define(app: FastAPI, auth: Authenticator) -> None:
        @app.get("/v1/contacts")
        async def contacts(request: Request, response: Response) -> dict[str, Any]:
            scope = request.scope
            asker = b"integration %s contacts:read" % ask_peer(scope)
            ask = ask_digest(scope, asker, _ASKED, None)
            assert ask is not None, "the request names its key"
            repeat = asks[ask]
            meter = repeat.meter
            assert keys.holds(repeat.hold) and meter is not None, "the key stands, limited"
            quota = meter.hit(repeat.uses)
            assert quota.allowed, "within the quota"
            repeat.count_uses()
            response.raw_headers.extend(raw_rate_limit_headers(quota))
            return {"data": [], "caller": repeat.principal.id}

    return define


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env, _, _ = prepare(Path(folder), TESSERA_SCOPE=SCOPES)
        config = load_config(environ=env)
        tessera = Tessera(config)
        owner = new_owner(tessera, "reader@example.com", "Readers")
        key, _ = new_key(tessera, owner, KeySpec("reader", ["contacts:read"]))
        tessera.close()
        local = Authenticator.local(config)
        # The key stays cached through every run (entries live 5 seconds when served).
        local._check.tessera.key_verifier._cache._ttl = 3600.0  # type: ignore[attr-defined]
        variants: dict[str, tuple[Define, Authenticator]] = {
            "unprotected": (_unprotected, local),
            "headers": (_headers, local),
            "asked": (_protected, Authenticator(_AnswersAtOnce(), [])),
            "protected": (_protected, local),  # before inline: it remembers the ask
            "inline": (_inline(local._check.tessera.authorizer), local),  # type: ignore[attr-defined]
        }
        calls = {}
        for label, (define, auth) in variants.items():
            app = FastAPI()
            auth.install(app)
            define(app, auth)
            calls[label] = Call(app, "GET", "/v1/contacts", {"X-API-Key": key}, b"")
        best = {label: 1e9 for label in calls}
        for _ in range(7):  # alternating, so that a slower moment costs each the same
            for label, call in calls.items():
                best[label] = min(best[label], asyncio.run(_run(call, args.requests)))
        for label, micros in best.items():
            print(f"{label:12} {micros:5.1f} µs per request  (+{micros - best['unprotected']:.1f})")


if __name__ == "__main__":
    main()
