"""The yardstick: a bare Starlette endpoint, served with the same uvicorn settings as Tessera.

``/hello-fields`` answers as forward auth answers a key, with no check: its fields (SPEC section
5: the identity fields, the rate-limit fields and a request id), encoded once, and no body.
Against ``/hello`` it measures forward auth's answer by itself, the part of forward auth that
no check can avoid.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIELDS_PATH = "/hello-fields"
_FORWARD_AUTH_FIELDS = [
    (b"x-tessera-organization-id", b"org_qN3hJh5o5ZYbzFjSgpvC"),
    (b"x-tessera-principal", b"key_6Jm76lxPTRg7Hh0k3K9l"),
    (b"x-tessera-scopes", b"workspaces:read"),
    (b"x-tessera-environment", b"live"),
    (b"x-ratelimit-limit", b"1000000000"),
    (b"x-ratelimit-remaining", b"999999999"),
    (b"x-ratelimit-reset", b"1"),
    (b"ratelimit-policy", b'"default";q=1000000000;w=60'),
    (b"ratelimit", b'"default";r=999999999;t=1'),
    (b"x-request-id", b"req_waH0AXSH2"),
]


async def hello(_request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


async def hello_fields(_request: Request) -> Response:
    answer = Response()  # content-length: 0, as forward auth's
    answer.raw_headers.extend(_FORWARD_AUTH_FIELDS)
    return answer


app = Starlette(
    routes=[
        Route("/hello", hello, methods=["GET", "POST"]),
        Route(FIELDS_PATH, hello_fields, methods=["GET"]),
    ]
)
