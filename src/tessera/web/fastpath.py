"""Routes dispatched before the framework's router, for the verification hot path.

FastAPI's router walks every route for each request, and its request objects and dependency
resolution cost more than a verification served from the caches. Requests for these exact
paths go straight to a plain ASGI handler, with errors mapped as everywhere else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.errors import TesseraError
from tessera.web.problems import problem_response


class FastPaths:
    """Serves ``routes`` (``(method, path)`` to an ASGI handler) itself and hands everything
    else to ``app``. A handler raises :class:`TesseraError` only before it starts answering."""

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
        try:
            await handler(scope, receive, send)
        except TesseraError as error:
            request_id = scope.get("state", {}).get("request_id")
            await problem_response(error, request_id)(scope, receive, send)
