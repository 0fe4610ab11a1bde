"""A stand-in for the customer's API behind nginx: it echoes what the proxy told it."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def contacts(request: Request) -> JSONResponse:
    identity = {k: v for k, v in request.headers.items() if k.startswith("x-tessera-")}
    leaked = [h for h in ("authorization", "x-api-key") if request.headers.get(h)]
    return JSONResponse(
        {"method": request.method, "identity": identity, "credential_headers": leaked}
    )


app = Starlette(routes=[Route("/v1/contacts", contacts, methods=["GET", "POST"])])
