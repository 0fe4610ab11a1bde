"""What a request says about its caller, read the same way by every edge: the credential as
presented, the headers that name a workspace or an organization, the client's address."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from tessera.authz.decision import RequestFacts
from tessera.edge.clientip import client_ip
from tessera.errors import Unauthorized


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


def request_facts(
    request: HTTPConnection,
    *,
    trusted_proxies: list[str],
    cookie_name: str | None = None,
    required_scopes: tuple[str, ...] = (),
    address: str | None = None,
    route: tuple[str, str] | None = None,
) -> RequestFacts:
    """The facts of ``request``. ``cookie_name`` names the session cookie where it may stand
    in for a credential; ``address`` and ``route`` are what a proxy says of the request it
    forwards (the client's address, the original method and URI)."""
    headers = request.headers
    credential = presented_credential(request)
    session = None
    if credential is None and cookie_name is not None:
        session = request.cookies.get(cookie_name) or None
    return RequestFacts(
        credential,
        required_scopes=required_scopes,
        route=route,
        workspace_id=headers.get("x-workspace-id"),
        organization_id=headers.get("x-organization-id"),
        client_ip=address if address is not None else client_ip(request, trusted_proxies),
        session=session,
        method=route[0] if route is not None else request.scope.get("method", "GET"),
        origin=headers.get("origin"),
        fetch_site=headers.get("sec-fetch-site"),
    )
