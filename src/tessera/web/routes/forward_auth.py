"""``GET /v1/forward-auth`` for nginx ``auth_request`` and Traefik ForwardAuth.

Like the verification API it sits in front of every request of the protected API, so the
application serves it on its fast path (``web/fastpath.py``): from the caches on the event loop,
in a worker thread only when a look-up must wait. The route below is the same endpoint, kept for
the OpenAPI description.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tessera.errors import InsufficientScope, RateLimited, Unauthorized, WouldBlock
from tessera.principal import Principal
from tessera.web.deps import identify, tessera_of
from tessera.web.problems import problem_response

PATH = "/v1/forward-auth"
router = APIRouter(tags=["forward auth"])


@router.get(PATH)
def forward_auth(request: Request) -> Response:
    """200 with the caller's identity in headers, or 401 / 403 / 429 with the error body.

    nginx's ``auth_request`` turns any answer but 2xx, 401 and 403 into a 500, so when the proxy
    says it is nginx (``X-Tessera-Proxy: nginx``) a 429 is sent as 403 with
    ``X-Tessera-Status: 429``, which the example configuration turns back into a 429.
    """
    return decide(request, allow_database=True)


class ForwardAuthEndpoint:
    """The endpoint as a plain ASGI handler, for the application's fast path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = decide(request, allow_database=False)
        except WouldBlock:
            response = await run_in_threadpool(decide, request, allow_database=True)
        await response(scope, receive, send)


def decide(request: Request, *, allow_database: bool) -> Response:
    try:
        principal = _authorize(request, allow_database)
    except RateLimited as refused:
        if request.headers.get("x-tessera-proxy", "").lower() != "nginx":
            raise
        request_id = request.scope.get("state", {}).get("request_id")
        response = problem_response(refused, request_id, {"X-Tessera-Status": "429"})
        response.status_code = 403
        return response
    return Response(status_code=200, headers=identity_headers(principal))


def _authorize(request: Request, allow_database: bool) -> Principal:
    tessera = tessera_of(request)
    token = request.headers.get("x-tessera-service-token")
    if not token or not token.startswith("svc_"):
        raise Unauthorized("The proxy must send a service token in X-Tessera-Service-Token.")
    tessera.service_tokens.authenticate(token, allow_database=allow_database)
    method = request.headers.get("x-original-method") or request.headers.get("x-forwarded-method")
    uri = request.headers.get("x-original-uri") or request.headers.get("x-forwarded-uri")
    if not method or not uri:
        raise Unauthorized("The proxy must send the original method and URI.")
    required = tessera.routes.required_scopes(method, uri)
    principal = identify(request, allow_database=allow_database)
    missing = principal.has_scopes(required)
    if missing:
        raise InsufficientScope(missing)
    return principal


def identity_headers(principal: Principal) -> dict[str, str]:
    headers = {
        "X-Tessera-Organization-Id": principal.organization_id or "",
        "X-Tessera-Principal": principal.id,
        "X-Tessera-Scopes": " ".join(sorted(principal.scopes)),
    }
    if principal.workspace_id:
        headers["X-Tessera-Workspace-Id"] = principal.workspace_id
    if principal.environment:
        headers["X-Tessera-Environment"] = principal.environment
    return headers
