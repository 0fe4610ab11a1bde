"""The hot endpoints: each one plain ASGI handler, documented and dispatched like a route, and
reached before the framework's router and the request middleware.

FastAPI's router walks every route for each request, and its request objects and dependency
resolution cost more than a verification served from the caches. So a hot endpoint is a plain
ASGI handler, and ``FastPaths`` (``web/hotpaths.py``) sends requests for its exact method and
path straight to it, through the request middleware. The same handler answers when the router
itself dispatches the path (an application built without the fast path), and the OpenAPI
description documents it through :class:`HandledRoute`: there is one implementation of each
endpoint. What a handler raises goes on to the error handler like any route's error
(``web/problems.py``).

A hot endpoint also answers a *repeated* request in one step: the same ask
(:meth:`HotHandler.ask`) as one the pipeline allowed before (``Authorizer.decide_again``), from
a service token still known. That answer is a 200 with the request id and the access-log line the
middleware would give it; everything else (a first request, a refusal, a body in several
parts, a query string, a NUL in a header) goes through the middleware to the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from tessera.authz import Allowed

RawHeaders = list[tuple[bytes, bytes]]


class HotHandler(Protocol):
    reads_body: bool  # whether :meth:`ask` reads the body (else it is never received)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The whole request, as any ASGI application answers it."""

    def ask(self, scope: Scope, body: bytes) -> bytes | None:
        """The digest that names this request for ``Authorizer.decide_again`` (the one the
        handler gives the pipeline in its :class:`~tessera.authz.Ask`), or None when the
        request cannot be answered in one step (no service token, a NUL in a header)."""

    def render(self, allowed: Allowed) -> tuple[RawHeaders, bytes]:
        """The headers and body of the 200 for an allowed repeated request."""


class HandledRoute(APIRoute):
    """A route the OpenAPI description documents from ``documented`` (its name, docstring and
    the keyword arguments of any FastAPI route), answered by the plain ASGI ``handler``:
    FastAPI's request handling never runs, and ``documented`` is never called."""

    def __init__(
        self, path: str, documented: Callable[[], None], *, handler: HotHandler, **kwargs: Any
    ) -> None:
        super().__init__(path, documented, **kwargs)
        self.app = handler
        self.handler = handler
