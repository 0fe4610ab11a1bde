"""``GET /v1/forward-auth`` for nginx ``auth_request`` and Traefik ForwardAuth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tessera.errors import InsufficientScope, RateLimited, Unauthorized
from tessera.principal import Principal
from tessera.web.deps import authenticate, tessera_of
from tessera.web.problems import problem_response

router = APIRouter(tags=["forward auth"])


@router.get("/v1/forward-auth")
def forward_auth(request: Request) -> Response:
    """200 with the caller's identity in headers, or 401 / 403 / 429 with the error body.

    nginx's ``auth_request`` turns any answer but 2xx, 401 and 403 into a 500, so when the proxy
    says it is nginx (``X-Tessera-Proxy: nginx``) a 429 is sent as 403 with
    ``X-Tessera-Status: 429``, which the example configuration turns back into a 429.
    """
    try:
        principal = _authorize(request)
    except RateLimited as refused:
        if request.headers.get("x-tessera-proxy", "").lower() != "nginx":
            raise
        request_id = request.scope.get("state", {}).get("request_id")
        response = problem_response(refused, request_id, {"X-Tessera-Status": "429"})
        response.status_code = 403
        return response
    return Response(status_code=200, headers=identity_headers(principal))


def _authorize(request: Request) -> Principal:
    tessera = tessera_of(request)
    token = request.headers.get("x-tessera-service-token")
    if not token or tessera.service_tokens.authenticate(token).kind != "service":
        raise Unauthorized("The proxy must send a service token in X-Tessera-Service-Token.")
    method = request.headers.get("x-original-method") or request.headers.get("x-forwarded-method")
    uri = request.headers.get("x-original-uri") or request.headers.get("x-forwarded-uri")
    if not method or not uri:
        raise Unauthorized("The proxy must send the original method and URI.")
    required = tessera.routes.required_scopes(method, uri)
    principal = authenticate(request)
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
