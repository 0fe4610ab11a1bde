"""The hot endpoints: each one plain ASGI handler, documented and dispatched like a route, and
reached before the framework's router.

FastAPI's router walks every route for each request, and its request objects and dependency
resolution cost more than a verification served from the caches. So a hot endpoint is a plain
ASGI handler, and :class:`FastPaths` sends requests for its exact method and path straight to
it. The same handler answers when the router itself dispatches the path (an application built
without the fast path), and the OpenAPI description documents it through :class:`HandledRoute`:
there is one implementation of each endpoint. What a handler raises goes on to the error
handler like any route's error (``web/problems.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send


class HandledRoute(APIRoute):
    """A route the OpenAPI description documents from ``documented`` (its name, docstring and
    the keyword arguments of any FastAPI route), answered by the plain ASGI ``handler``:
    FastAPI's request handling never runs, and ``documented`` is never called."""

    def __init__(
        self, path: str, documented: Callable[[], None], *, handler: ASGIApp, **kwargs: Any
    ) -> None:
        super().__init__(path, documented, **kwargs)
        self.app = handler


class FastPaths:
    """Serves the ``routes``' handlers itself and hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, routes: Iterable[HandledRoute]) -> None:
        self.app = app
        self.routes = {(method, r.path): r.app for r in routes for method in r.methods or ()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # handlers find the deployment where routes do
        await handler(scope, receive, send)
