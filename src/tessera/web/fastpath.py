"""Routes dispatched before the framework's router, for the verification hot path.

FastAPI's router walks every route for each request; for an endpoint whose own work is a
cache look-up, that walk costs more than the work. Requests for these exact paths go straight
to their endpoint, with errors mapped as everywhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.errors import TesseraError
from tessera.web.problems import problem_response

Endpoint = Callable[[Request], Awaitable[Response]]


class FastPaths:
    """Serves ``routes`` itself and hands everything else to ``app`` (the FastAPI application,
    which the endpoints still see as ``request.app``)."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except TesseraError as error:
            response = problem_response(error, scope.get("state", {}).get("request_id"))
        await response(scope, receive, send)
