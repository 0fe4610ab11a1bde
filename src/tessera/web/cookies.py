"""The session cookie (SPEC section 3) and the same-origin rule for cookie-authenticated writes."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from tessera.authz import refusal_error
from tessera.authz.pipeline import cross_site
from tessera.deployment import Tessera
from tessera.origins import deployment_origins
from tessera.principal import Principal


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
    with a fresh idle limit when the session was renewed."""
    raw = cookie_value(connection, tessera)
    if raw is None:
        return None
    organization_id = connection.headers.get("x-organization-id")
    found = tessera.credentials.session_identity(raw, organization_id)
    if found is None:
        return None
    if found.renewed:
        add_response_header(connection, "set-cookie", set_cookie_header(tessera, raw))
    return found.principal


def check_same_origin(connection: HTTPConnection, tessera: Tessera) -> None:
    """Refuse a state-changing request from another site (CSRF), as the pipeline refuses one
    that the cookie alone authenticates (``authz/``)."""
    config = tessera.config
    refused = cross_site(
        connection.scope.get("method", "GET"),
        connection.headers.get("origin"),
        connection.headers.get("sec-fetch-site"),
        deployment_origins(config.public_url, tuple(config.allowed_origins)),
    )
    if refused is not None:
        raise refusal_error(refused)
