"""What a request says about its caller, read the same way by every edge: the credential as
presented, the headers that name a workspace or an organization, the client's address."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import Scope

from tessera.authz.decision import RequestFacts
from tessera.edge.clientip import client_ip, scope_client_ip
from tessera.errors import Unauthorized

BEARER_FORM = "The Authorization header must be 'Bearer <credential>'."


def header_map(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, the first value of each (as Starlette's
    ``Headers.get`` reads them), decoded once: for plain ASGI handlers on the hot paths."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in reversed(scope["headers"])
    }


def credential_of(headers: Mapping[str, str]) -> str | None:
    """:func:`presented_credential` from a :func:`header_map`."""
    api_key = headers.get("x-api-key")
    if api_key is not None:
        return api_key.strip()
    authorization = headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(BEARER_FORM)
    return value.strip()


def scope_facts(
    scope: Scope,
    headers: Mapping[str, str],
    *,
    trusted_proxies: list[str],
    cookie_name: str | None = None,
    address: str | None = None,
    route: tuple[str, str] | None = None,
) -> RequestFacts:
    """:func:`request_facts` for a plain ASGI handler, from a :func:`header_map`."""
    credential = credential_of(headers)
    session = None
    if credential is None and cookie_name is not None and "cookie" in headers:
        cookies: dict[str, str] = {}
        for name, value in scope["headers"]:  # every Cookie header, as Starlette reads them
            if name == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        session = cookies.get(cookie_name) or None
    return RequestFacts(
        credential,
        (),
        route,
        headers.get("x-workspace-id"),
        False,
        headers.get("x-organization-id"),
        address if address is not None else scope_client_ip(scope, headers, trusted_proxies),
        session,
        route[0] if route is not None else scope.get("method", "GET"),
        headers.get("origin"),
        headers.get("sec-fetch-site"),
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
        raise Unauthorized(BEARER_FORM)
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


def ask_digest(
    scope: Scope, tag: bytes, names: frozenset[bytes], needed: bytes | None, tail: bytes = b""
) -> bytes | None:
    """What names a request for ``Authorizer.decide_again`` (a hot endpoint's ``ask``, the
    integration's local mode): the SHA-256 of ``tag`` (no newline in it), of every header of
    ``names`` (lower-case), each value in order, and of ``tail`` (a body), laid out so that no
    two requests give the same text. None when the ``needed`` header did not come, or when any
    header holds a NUL, which the request middleware refuses."""
    parts = [tag, b"%d" % len(tail)]
    found = needed is None
    for name, value in scope["headers"]:
        if 0 in value:  # a NUL (an int's look-up: a quicker search than a bytes one)
            return None
        if name in names:
            parts += (name, value)  # neither holds a newline: HTTP has none in a field
            found = found or name == needed
    if not found:
        return None
    parts.append(tail)
    return hashlib.sha256(b"\n".join(parts)).digest()


def ask_peer(scope: Scope) -> bytes:
    """The address the request came from (its proxy's, behind one), as an ask's tag names it."""
    client = scope.get("client")
    return client[0].encode() if client else b"-"
