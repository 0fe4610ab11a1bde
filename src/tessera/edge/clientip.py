"""The client's address: forwarded headers are believed only from callers that may name it.

Those are the proxies listed in ``trusted_proxies`` (empty by default: a connection from
loopback is a client like any other), and forward-auth callers, which prove with a service
token that they are the deployment's own proxy (SPEC section 5).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Scope


@lru_cache(maxsize=32)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted(address: str, cidrs: list[str]) -> bool:
    if not cidrs:  # the default: nobody names a client, and no address need be parsed
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(cidrs)))


def client_ip(request: HTTPConnection, trusted: list[str]) -> str | None:
    """The peer, or the client a trusted proxy names in ``X-Forwarded-For`` / ``X-Real-IP``."""
    peer = request.client.host if request.client else None
    if peer is None or not is_trusted(peer, trusted):
        return peer
    return named_client(request.headers, trusted) or peer


def forwarded_client_ip(request: HTTPConnection, trusted: list[str]) -> str | None:
    """For a caller that has proved it is the deployment's proxy: the client it names, or
    (when it names none) what :func:`client_ip` finds."""
    return named_client(request.headers, trusted) or client_ip(request, trusted)


def named_client(headers: Headers, trusted: list[str]) -> str | None:
    """The client the nearest proxy names: walking ``X-Forwarded-For`` from the last hop back,
    the first address that is not itself a trusted proxy (earlier hops are whatever the client
    chose to send); else ``X-Real-IP``. None when that is not an IP address."""
    forwarded = ",".join(headers.getlist("x-forwarded-for"))
    return _named(forwarded, headers.get("x-real-ip", ""), trusted)


def scope_client_ip(scope: Scope, headers: Mapping[str, str], trusted: list[str]) -> str | None:
    """:func:`client_ip` for a plain ASGI handler: ``headers`` holds the first value of each
    request header by its lower-case name (``edge/facts.header_map``)."""
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    if peer is None or not is_trusted(peer, trusted):
        return peer
    return scope_named_client(scope, headers, trusted) or peer


def scope_forwarded_client_ip(
    scope: Scope, headers: Mapping[str, str], trusted: list[str]
) -> str | None:
    """:func:`forwarded_client_ip` for a plain ASGI handler."""
    return scope_named_client(scope, headers, trusted) or scope_client_ip(scope, headers, trusted)


def scope_named_client(scope: Scope, headers: Mapping[str, str], trusted: list[str]) -> str | None:
    """:func:`named_client` for a plain ASGI handler."""
    if "x-forwarded-for" not in headers and "x-real-ip" not in headers:
        return None  # the common case: no header names a client
    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    )
    return _named(forwarded, headers.get("x-real-ip", ""), trusted)


def _named(forwarded: str, real_ip: str, trusted: list[str]) -> str | None:
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not is_trusted(hop, trusted):
            return hop if _valid(hop) else None
    real = real_ip.strip()
    return real if real and _valid(real) else None


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
