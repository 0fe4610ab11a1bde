"""The session cookie (SPEC section 3) and the same-origin rule for cookie-authenticated writes."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import HTTPConnection

from tessera.deployment import Tessera
from tessera.errors import Forbidden
from tessera.origins import deployment_origins
from tessera.principal import Principal

STATE_CHANGING = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def set_cookie_header(tessera: Tessera, value: str, *, max_age: int | None = None) -> str:
    """``Set-Cookie`` for the session: HttpOnly, SameSite=Lax, Path=/, Secure unless the
    deployment is plain-HTTP loopback development, Domain when configured."""
    settings = tessera.config.session
    age = tessera.sessions.max_age_seconds if max_age is None else max_age
    parts = [
        f"{settings.cookie_name}={value}",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        f"Max-Age={age}",
    ]
    if not tessera.config.is_loopback_http:
        parts.append("Secure")
    if settings.cookie_domain:
        parts.append(f"Domain={settings.cookie_domain}")
    return "; ".join(parts)


def clear_cookie_header(tessera: Tessera) -> str:
    return set_cookie_header(tessera, "", max_age=0)


def add_response_header(connection: HTTPConnection, name: str, value: str) -> None:
    """A header for whatever response this request gets (added by ``web/middleware.py``)."""
    connection.scope.setdefault("state", {}).setdefault("headers", []).append((name, value))


def cookie_value(connection: HTTPConnection, tessera: Tessera) -> str | None:
    value = connection.cookies.get(tessera.config.session.cookie_name)
    return value or None


def cookie_principal(connection: HTTPConnection, tessera: Tessera) -> Principal | None:
    """The user behind the session cookie, if it names a live session; the cookie is sent again
    with a fresh idle limit when the session was refreshed."""
    raw = cookie_value(connection, tessera)
    if raw is None or len(raw) > 200:
        return None
    active = tessera.sessions.authenticate(raw)
    if active is None:
        return None
    if active.refreshed:
        add_response_header(connection, "set-cookie", set_cookie_header(tessera, raw))
    organization_id = connection.headers.get("x-organization-id")
    principal = tessera.credentials.user_principal(active.user_id, organization_id)
    return replace(principal, via="session", facts={"session_id": active.id})


def check_same_origin(connection: HTTPConnection, tessera: Tessera) -> None:
    """Refuse a state-changing request from another site (CSRF): a foreign ``Origin`` or a
    cross-site ``Sec-Fetch-Site``. Applies to requests authenticated by the cookie alone."""
    if connection.scope.get("method") not in STATE_CHANGING:
        return
    origin = connection.headers.get("origin")
    config = tessera.config
    origins = deployment_origins(config.public_url, tuple(config.allowed_origins))
    if origin is not None and not origins.allows(origin):
        raise Forbidden("Cross-origin requests may not use the session cookie.")
    if connection.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("Cross-site requests may not use the session cookie.")
