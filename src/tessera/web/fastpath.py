"""Routes dispatched before the framework's router, for the verification hot path.

FastAPI's router walks every route for each request, and its request objects and dependency
resolution cost more than a verification served from the caches. Requests for these exact
paths go straight to a plain ASGI handler; what a handler raises goes on to the request
middleware, which answers it as every error is answered (``web/problems.py``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class FastPaths:
    """Serves ``routes`` (``(method, path)`` to an ASGI handler) itself and hands everything
    else to ``app``."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # handlers find the deployment where routes do
        await handler(scope, receive, send)
