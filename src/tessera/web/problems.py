"""The web application's one error handler: every exception raised while answering a request
(by a route, a dependency, the fast path or the request middleware) is answered here.

The exception becomes a :class:`~tessera.edge.problems.Problem` through the one error map, and
the request's path picks the rendering: the dashboard's HTML page for its pages, RFC 6749 JSON
under ``/oauth2/``, the proxy's form for forward auth asked by nginx, ``application/problem+json``
everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from tessera.edge.problems import (
    Problem,
    oauth_response,
    problem_of,
    problem_response,
    proxy_response,
    status_problem,
)
from tessera.errors import FieldError, InternalError, InvalidRequest, TesseraError, ValidationFailed
from tessera.web.dashboard.pages import error_page, is_page
from tessera.web.routes.forward_auth import PATH as FORWARD_AUTH

OAUTH_PREFIX = "/oauth2/"
UNEXPECTED = "An unexpected error occurred."


def install(app: FastAPI) -> None:
    """Answer every exception a route raises through :func:`error_response`."""

    async def handler(request: Request, exc: Exception) -> Response:
        return error_response(request.scope, exc)

    for kind in (TesseraError, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, handler)


def error_response(scope: Scope, exc: BaseException) -> Response:
    problem = problem_of_exception(exc)
    if problem.status == 405:
        problem = replace(problem, headers=(("Allow", allowed_methods(scope)),))
    return render(scope, problem)


def problem_of_exception(exc: BaseException) -> Problem:
    if isinstance(exc, TesseraError):
        return problem_of(exc)
    if isinstance(exc, RequestValidationError):
        return problem_of(invalid_body(exc.errors()))
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else None
        return status_problem(exc.status_code, detail, tuple((exc.headers or {}).items()))
    return problem_of(InternalError(UNEXPECTED))


def render(scope: Scope, problem: Problem) -> Response:
    request_id = scope.get("state", {}).get("request_id")
    path: str = scope.get("path", "")
    if is_page(path):
        return error_page(scope, problem, request_id)
    if path.startswith(OAUTH_PREFIX):
        return oauth_response(problem)
    if path == FORWARD_AUTH and _header(scope, b"x-tessera-proxy").lower() == "nginx":
        return proxy_response(problem, request_id)
    return problem_response(problem, request_id)


def invalid_body(errors: Sequence[Mapping[str, Any]]) -> TesseraError:
    """The error for a body the parser refused: ``400`` when it is not JSON, else ``422`` with
    the fields at fault."""
    fields = [
        FieldError(
            ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body", e.get("msg", "")
        )
        for e in errors
    ]
    if any(e.get("type") == "json_invalid" for e in errors):
        return InvalidRequest("The request body is not valid JSON.", errors=fields)
    return ValidationFailed("The request is not valid.", errors=fields)


def allowed_methods(scope: Scope) -> str:
    """Every method the path answers. Starlette's own ``Allow`` names only the methods of the
    first route whose path matched, while each method of a path is a route of its own here."""
    methods: set[str] = set()
    for route in scope["app"].state.routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""
