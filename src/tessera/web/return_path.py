"""Where a person goes after signing in: the ``next`` they came with, if it stays on the
deployment (SPEC section 3), else the dashboard. Every sign-in (password, provider, the
OAuth authorization endpoint's detour) reads its return address through here."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import HTTPConnection

from tessera.origins import deployment_origins
from tessera.web.deps import tessera_of

DEFAULT = "/settings/api-keys"


def return_path(connection: HTTPConnection, target: object, default: str = DEFAULT) -> str:
    """``target`` when it is a relative reference or on one of the deployment's origins;
    ``default`` otherwise (an open redirect is never followed)."""
    if not isinstance(target, str) or not target:
        return default
    config = tessera_of(connection).config
    origins = deployment_origins(config.public_url, tuple(config.allowed_origins))
    return target if origins.allows_return(target) else default


AGAIN = "again"  # the sign-in page asks even a signed-in person (OIDC prompt=login, max_age)


def sign_in_url(target: str, *, again: bool = False) -> str:
    """The sign-in page, returning to ``target`` afterwards; with ``again``, the page is shown
    to a person already signed in too, for a fresh sign-in."""
    return "/login?" + urlencode({"next": target, **({AGAIN: "1"} if again else {})})
