"""The ASGI application: routes, middleware and the error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from tessera.deployment import Tessera
from tessera.errors import FieldError, InvalidRequest, TesseraError, ValidationFailed
from tessera.web import customer_docs, docs, openapi
from tessera.web.dashboard import routes as dashboard
from tessera.web.dashboard.pages import STATIC, SignInRequired, to_sign_in
from tessera.web.fastpath import FastPaths
from tessera.web.middleware import RequestContextMiddleware
from tessera.web.problems import problem_response, status_problem
from tessera.web.routes import (
    api_keys,
    audit_events,
    auth,
    forward_auth,
    members,
    ops,
    sessions,
    verify,
    workspaces,
)
from tessera.web.slashes import relative_slash_redirects


def create_app(tessera: Tessera) -> ASGIApp:
    """The application: the verification fast path and request context around FastAPI."""
    api = create_api(tessera)
    fast = FastPaths(
        api,
        {
            ("POST", verify.PATH): verify.VerifyEndpoint(tessera),
            ("GET", forward_auth.PATH): forward_auth.ForwardAuthEndpoint(),
        },
    )
    return RequestContextMiddleware(fast)


def create_api(tessera: Tessera) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        tessera.close()

    app = FastAPI(
        title="Tessera",
        version="0.1.0",
        summary="Authentication for public APIs: API keys, user tokens, sessions, scopes.",
        lifespan=lifespan,
        docs_url=None,  # served from local files by web/docs.py
        redoc_url=None,
    )
    app.state.tessera = tessera
    routers = (
        ops,
        auth,
        workspaces,
        members,
        api_keys,
        verify,
        audit_events,
        forward_auth,
        sessions,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(dashboard.router)
    # The routes themselves, for the Allow header of a 405 (FastAPI nests included routers).
    app.state.routes = [route for m in (*routers, dashboard) for route in m.router.routes]
    app.include_router(customer_docs.router)
    docs.install(app)
    openapi.install(app, tessera.config.session.cookie_name)
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    relative_slash_redirects(app.router)
    _install_error_mapping(app)
    return app


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _install_error_mapping(app: FastAPI) -> None:
    @app.exception_handler(TesseraError)
    async def tessera_error(request: Request, exc: TesseraError) -> Response:
        return problem_response(exc, request_id(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(_from_validation(exc), request_id(request))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        response = status_problem(exc.status_code, request_id(request), detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The framework raises the exception again once this answer is sent; the request
        # middleware logs it then, once, with its traceback and the request id.
        return status_problem(500, request_id(request), "An unexpected error occurred.")


def allowed_methods(request: Request) -> str:
    """Every method the path answers. Starlette's own ``Allow`` names only the methods of the
    first route whose path matched, while each method of a path is a route of its own here."""
    methods: set[str] = set()
    for route in request.app.state.routes:
        if (
            isinstance(route, Route)
            and route.methods
            and route.matches(request.scope)[0] != Match.NONE
        ):
            methods |= route.methods
    return ", ".join(sorted(methods))


def _from_validation(exc: RequestValidationError) -> TesseraError:
    errors = [
        FieldError(
            ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body", e.get("msg", "")
        )
        for e in exc.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return InvalidRequest("The request body is not valid JSON.", errors=errors)
    return ValidationFailed("The request is not valid.", errors=errors)
