"""The trailing-slash redirect (``/login/`` to ``/login``), with a relative ``Location``.

Starlette's own redirect builds an absolute URL from the ``Host`` header, so a request with
``Host: evil.example`` was sent on to ``http://evil.example/login``. A path-absolute reference
is resolved by the client against the address it actually asked, whatever ``Host`` said.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

# Characters a path or query keeps as they are; everything else is percent-encoded, so no
# control character or space from a decoded path can reach the header.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"


def relative_slash_redirects(router: Router) -> None:
    """Replace ``router``'s trailing-slash redirect with one that never names a host."""
    router.redirect_slashes = False
    router.default = _SlashRedirect(router, router.default)


class _SlashRedirect:
    """The router's fallback: redirect when the path with its slash toggled matches a route."""

    def __init__(self, router: Router, not_found: ASGIApp) -> None:
        self.router = router
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _toggled(scope["path"]) if scope["type"] == "http" else None
        if target is not None and self._matches({**scope, "path": target}):
            await RedirectResponse(_location(target, scope))(scope, receive, send)
            return
        await self.not_found(scope, receive, send)

    def _matches(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)


def _toggled(path: str) -> str | None:
    if path == "/" or path.startswith("//"):  # "//host" would read as another host
        return None
    return path.rstrip("/") if path.endswith("/") else path + "/"


def _location(path: str, scope: Scope) -> str:
    location = quote(path, safe=_PATH_SAFE)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{location}?{quote(query, safe=_QUERY_SAFE)}" if query else location
