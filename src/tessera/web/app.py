"""The ASGI application: routes, middleware and the error handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from tessera.deployment import Tessera
from tessera.web import customer_docs, docs, openapi, problems
from tessera.web.dashboard import routes as dashboard
from tessera.web.dashboard.pages import STATIC, SignInRequired, to_sign_in
from tessera.web.hotpaths import FastPaths
from tessera.web.middleware import RequestContextMiddleware
from tessera.web.routes import (
    api_keys,
    audit_events,
    auth,
    email_links,
    forward_auth,
    grants,
    identities,
    invitations,
    members,
    oauth,
    oauth_clients,
    ops,
    sessions,
    verify,
    workspaces,
)
from tessera.web.slashes import relative_slash_redirects

# Each one plain ASGI handler, documented as a route and served before the router.
HOT_ROUTES = (verify.route, forward_auth.route)


def create_app(tessera: Tessera) -> ASGIApp:
    """The application: FastAPI within the request context, the hot endpoints in front."""
    api = create_api(tessera)
    return FastPaths(RequestContextMiddleware(api), api, HOT_ROUTES)


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
        invitations,
        email_links,
        api_keys,
        audit_events,
        sessions,
        oauth_clients,
        grants,
        oauth,
        identities,
    )
    for module in routers:
        app.include_router(module.router)
    app.router.routes.extend(HOT_ROUTES)
    app.include_router(dashboard.router)
    # The routes themselves, for the Allow header of a 405 (FastAPI nests included routers).
    included = [route for m in (*routers, dashboard) for route in m.router.routes]
    app.state.routes = [*HOT_ROUTES, *included]
    app.include_router(customer_docs.router)
    docs.install(app)
    openapi.install(app, tessera.config.session.cookie_name)
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    relative_slash_redirects(app.router)
    problems.install(app)
    return app
