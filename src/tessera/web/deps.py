"""FastAPI dependencies: the deployment, the caller, and scope checks."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection, Request

from tessera.deployment import Tessera
from tessera.edge.clientip import client_ip
from tessera.edge.facts import presented_credential
from tessera.errors import InsufficientScope, Unauthorized, WouldBlock
from tessera.principal import ClientInfo, Principal
from tessera.ratelimit.policy import RateLimitExceeded
from tessera.web.cookies import check_same_origin, cookie_principal


def tessera_of(request: HTTPConnection) -> Tessera:
    tessera: Tessera = request.app.state.tessera
    return tessera


def client_info(request: HTTPConnection) -> ClientInfo:
    return ClientInfo(
        ip=client_ip(request, tessera_of(request).config.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


def authenticate(request: Request) -> Principal:
    """The caller of this request; cached on the request so that it is resolved once."""
    return identify(request, allow_database=True)


def identify(
    request: Request, *, allow_database: bool, client: ClientInfo | None = None
) -> Principal:
    """:func:`authenticate`; with ``allow_database=False`` it raises :class:`WouldBlock`
    rather than wait on the database or Redis (for callers on the event loop). ``client``
    replaces the caller's own address (forward auth: the client its proxy names).

    A valid credential is served whatever its address has been failing at; an invalid one
    counts against the address, and past its limit the answer is ``429``."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    tessera = tessera_of(request)
    if not allow_database and not tessera.rate_limits.in_process:
        raise WouldBlock
    credential = presented_credential(request)
    if credential is None:
        if not allow_database:
            raise WouldBlock
        return _from_cookie(request, tessera)
    client = client or client_info(request)
    try:
        principal = tessera.credentials.authenticate(
            credential,
            organization_id=request.headers.get("x-organization-id"),
            client=client,
            allow_database=allow_database,
        )
    except Unauthorized:
        tessera.rate_limits.count_failure(client.ip)
        raise
    principal = tessera.credentials.in_workspace(
        principal, request.headers.get("x-workspace-id"), allow_database=allow_database
    )
    charge(request, principal)
    request.state.principal = principal
    return principal


def _from_cookie(request: Request, tessera: Tessera) -> Principal:
    principal = cookie_principal(request, tessera)
    if principal is None:
        raise Unauthorized("This endpoint needs a credential.", credential_presented=False)
    check_same_origin(request, tessera)
    principal = tessera.credentials.in_workspace(principal, request.headers.get("x-workspace-id"))
    charge(request, principal)
    request.state.principal = principal
    return principal


def charge(request: HTTPConnection, principal: Principal) -> None:
    """Count the request against the caller's quota; the decision's figures go out as headers
    on whatever response this request gets (``web/middleware.py``)."""
    try:
        decision = tessera_of(request).rate_limits.charge(principal)
    except RateLimitExceeded as exceeded:
        request.scope["state"]["rate_limit"] = exceeded.decision
        raise
    if decision is not None:
        request.scope["state"]["rate_limit"] = decision


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
        missing = principal.missing_scopes(scopes)
        if missing:
            raise InsufficientScope(missing)
        return principal

    return check
