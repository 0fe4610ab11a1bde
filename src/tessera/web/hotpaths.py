"""The dispatcher of the hot endpoints (``web/fastpath.py``), in front of the request
middleware: a repeated request is answered in one step, every other one goes through the
middleware to its handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.deployment import Tessera
from tessera.ids import next_request_id
from tessera.web.fastpath import HandledRoute
from tessera.web.middleware import MAX_BODY_BYTES, RequestContextMiddleware, access_log, log_request

log = logging.getLogger("tessera.web")


class FastPaths:
    """Serves the ``routes``' handlers itself and hands every other request to ``app`` (the
    application within the request middleware). ``api`` is the application the handlers and
    the error handler find in the scope, as they find it under the router."""

    def __init__(self, app: ASGIApp, api: FastAPI, routes: Iterable[HandledRoute]) -> None:
        self.app = app
        self.api = api
        tessera: Tessera = api.state.tessera
        self.authorizer = tessera.authorizer
        self.routes = {
            (method, r.path): (r.handler, RequestContextMiddleware(r.handler))
            for r in routes
            for method in r.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = scope["type"] == "http"
        lane = self.routes.get((scope["method"], scope["path"])) if http else None
        if lane is None:
            await self.app(scope, receive, send)
            return
        handler, whole = lane
        body: bytes | None = b""
        if handler.reads_body:
            message = await receive()
            receive = _replaying(message, receive)  # the whole path reads it again
            if message["type"] != "http.request" or message.get("more_body"):
                body = None  # a body in several parts: the middleware counts it
            else:
                body = message.get("body", b"")
        if body is not None and len(body) <= MAX_BODY_BYTES and not scope["query_string"]:
            logged = access_log.isEnabledFor(logging.INFO)
            started = time.perf_counter() if logged else 0.0
            try:
                ask = handler.ask(scope, body)
                allowed = None if ask is None else await self.authorizer.decide_again_on_loop(ask)
            except Exception:  # the whole request meets the same failure and answers it
                log.debug("a repeated request is answered whole", exc_info=True)
                allowed = None
            if allowed is not None:
                request_id = next_request_id()
                headers, answer = handler.render(allowed)
                headers.append((b"x-request-id", request_id.encode()))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": answer})
                if logged:
                    log_request(scope, 200, started, request_id)
                return
        scope["app"] = self.api
        await whole(scope, receive, send)


def _replaying(first: Message, receive: Receive) -> Receive:
    """``receive``, giving ``first`` (already read) before anything else."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
