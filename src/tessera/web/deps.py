"""FastAPI dependencies: the deployment, the caller, and scope checks."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection, Request

from tessera.deployment import Tessera
from tessera.errors import InsufficientScope, Unauthorized
from tessera.principal import ClientInfo, Principal
from tessera.web.clientip import client_ip


def tessera_of(request: HTTPConnection) -> Tessera:
    tessera: Tessera = request.app.state.tessera
    return tessera


def client_info(request: HTTPConnection) -> ClientInfo:
    return ClientInfo(
        ip=client_ip(request, tessera_of(request).config.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


def presented_credential(request: HTTPConnection) -> str | None:
    """The credential in ``X-API-Key`` or ``Authorization: Bearer``, if any."""
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        return api_key.strip()
    authorization = request.headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <credential>'.")
    return value.strip()


def authenticate(request: Request) -> Principal:
    """The caller of this request; cached on the request so that it is resolved once."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    tessera = tessera_of(request)
    credential = presented_credential(request)
    if credential is None:
        raise Unauthorized("This endpoint needs a credential.", credential_presented=False)
    principal = tessera.credentials.authenticate(
        credential,
        organization_id=request.headers.get("x-organization-id"),
        client=client_info(request),
    )
    principal = tessera.credentials.in_workspace(principal, request.headers.get("x-workspace-id"))
    request.state.principal = principal
    return principal


def in_workspace(request: Request) -> Principal:
    """For routes that act inside a workspace: the caller, with the workspace resolved."""
    principal = authenticate(request)
    return tessera_of(request).credentials.in_workspace(
        principal, principal.workspace_id, required=True
    )


def requires(*scopes: str) -> Callable[[Request], Principal]:
    """A dependency that yields the caller when it holds every scope named."""

    def check(request: Request) -> Principal:
        principal = authenticate(request)
        missing = principal.has_scopes(scopes)
        if missing:
            raise InsufficientScope(missing)
        return principal

    return check
