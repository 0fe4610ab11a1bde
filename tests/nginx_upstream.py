"""A stand-in for the customer's API behind nginx: it echoes what the proxy told it, and keeps
the request targets it received (``GET /__seen``, asked directly, not through nginx)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

SEEN: list[str] = []


async def contacts(request: Request) -> JSONResponse:
    identity = {k: v for k, v in request.headers.items() if k.startswith("x-tessera-")}
    leaked = [h for h in ("authorization", "x-api-key") if request.headers.get(h)]
    return JSONResponse(
        {"method": request.method, "identity": identity, "credential_headers": leaked}
    )


async def seen(request: Request) -> JSONResponse:
    return JSONResponse(SEEN)


routes = Starlette(
    routes=[
        Route("/v1/contacts", contacts, methods=["GET", "POST"]),
        Route("/__seen", seen, methods=["GET"]),
    ]
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] != "/__seen":
        SEEN.append(scope["raw_path"].decode("latin-1"))
    await routes(scope, receive, send)
