"""Rendering, sign-in state and form protection shared by the dashboard's pages."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from tessera.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from tessera.accounts.records import Organization, User, Workspace
from tessera.deployment import Tessera
from tessera.edge.problems import Problem
from tessera.errors import Forbidden
from tessera.principal import Principal
from tessera.text import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, PERSON_NAME_MAX_LENGTH
from tessera.web.cookies import check_same_origin, cookie_principal
from tessera.web.dashboard import carried, readable
from tessera.web.dashboard.chart import usage_chart
from tessera.web.deps import tessera_of

__all__ = ["usage_chart"]  # where the pages of other modules find it

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

# The dashboard's own paths: an error on any of them is answered with a page, not JSON.
PAGES = (
    "/login",
    "/signup",
    "/logout",
    "/settings",
    "/auth",
    "/invitations",
    "/password-reset",
    "/verify-email",
    "/oauth2/authorize",
)
# What an error page says at its top, for people rather than programs.
HEADINGS = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Not valid",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}

templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())


def _day(value: str | None) -> str:
    return value[:10] if value else "—"


def _ago(value: str | None) -> str:
    if not value:
        return "Never"
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Just now"


def _status(key: dict[str, Any]) -> str:
    if key["revoked_at"]:
        return "revoked"
    return "active" if key["active"] else "expired"


templates.filters.update(
    day=_day,
    ago=_ago,
    status=_status,
    moment=readable.moment,
    browser=readable.user_agent,
    network=readable.network,
)
# The API's length limits, for the forms' maxlength (the server checks them again).
templates.globals["limits"] = {
    "name": NAME_MAX_LENGTH,
    "person_name": PERSON_NAME_MAX_LENGTH,
    "email": EMAIL_MAX_LENGTH,
    "password_min": MIN_PASSWORD_LENGTH,
    "password_max": MAX_PASSWORD_LENGTH,
}


@dataclass(frozen=True)
class Visitor:
    """A signed-in person on a page."""

    principal: Principal
    user: User
    organization: Organization | None
    csrf_token: str


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    tessera = tessera_of(request)
    context.setdefault("label", tessera.config.workspace_label)
    notice = _notice(request, tessera)
    if notice is not None:
        context.setdefault("message", notice)
    context.setdefault("sign_in_providers", tessera.social.providers)
    html = templates.get_template(name).render(**context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if carried.NOTICE in request.cookies:
        response.headers.append("set-cookie", carried.cleared(tessera, carried.NOTICE))
    return response


def _notice(request: Request, tessera: Tessera) -> str | None:
    """What the form posted before the redirect to this page did, said once."""
    who: Visitor | None = getattr(request.state, "visitor", None)
    if who is None:
        return None
    return carried.take(request, tessera, who.principal.facts["session_id"], carried.NOTICE)


def redirect(
    request: Request, who: Visitor, path: str, notice: str | None = None, *cookies: str
) -> Response:
    """A 303 to ``path`` after a form post, carrying ``notice`` for that page to show."""
    response = RedirectResponse(path, status_code=303)
    if notice is not None:
        session_id = who.principal.facts["session_id"]
        tessera = tessera_of(request)
        response.headers.append(
            "set-cookie", carried.carry(tessera, session_id, carried.NOTICE, notice)
        )
    for cookie in cookies:
        response.headers.append("set-cookie", cookie)
    return response


def organization_of(who: Visitor) -> str:
    if who.principal.organization_id is None:
        raise Forbidden("You are not a member of any organization.")
    return who.principal.organization_id


def require_scope(who: Visitor, scope: str) -> None:
    if scope not in who.principal.scopes:
        raise Forbidden(f"Your role does not allow this ({scope}).")


def is_page(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PAGES)


def error_page(scope: Scope, problem: Problem, request_id: str | None) -> HTMLResponse:
    """An error on a dashboard path, as a page of the dashboard with the error's status.

    The navigation is shown when the page's visitor is known already (``signed_in`` ran)."""
    who: Visitor | None = scope.get("state", {}).get("visitor")
    html = templates.get_template("error.html").render(
        **(page_context(who, "") if who is not None else {}),
        heading=HEADINGS.get(problem.status, problem.title),
        detail=problem.detail,
        request_id=request_id,
    )
    headers = {**dict(problem.headers), **SECURITY_HEADERS}
    return HTMLResponse(html, status_code=problem.status, headers=headers)


def visitor(request: Request) -> Visitor | None:
    tessera = tessera_of(request)
    principal = cookie_principal(request, tessera)
    if principal is None or principal.user_id is None:
        return None
    user = tessera.accounts.user(principal.user_id)
    organization = (
        tessera.accounts.organization(principal.organization_id)
        if principal.organization_id
        else None
    )
    if user is None:
        return None
    token = csrf_token(tessera, principal.facts["session_id"])
    return Visitor(principal, user, organization, token)


def page_context(who: Visitor, section: str) -> dict[str, Any]:
    return {
        "user": who.user,
        "organization": who.organization,
        "csrf_token": who.csrf_token,
        "section": section,
    }


def csrf_token(tessera: Tessera, session_id: str) -> str:
    """A synchronizer token bound to the session, so it dies with it."""
    key = hashlib.sha256(("csrf:" + tessera.secret_key).encode()).digest()
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, so that a handler can be a plain function that
    runs in the thread pool: the services block (on the database, and a revocation on the fleet's
    acknowledgements), and the event loop must keep serving other requests meanwhile."""
    return await request.form()


def check_form(request: Request, who: Visitor, form: Any) -> None:
    """Every form post: same origin, and the session's token."""
    check_same_origin(request, tessera_of(request))
    sent = str(form.get("csrf_token", ""))
    if not hmac.compare_digest(sent, who.csrf_token):
        raise Forbidden("The form has expired or did not come from this site; reload the page.")


class SignInRequired(Exception):
    """A page for signed-in people was asked for without a live session."""


def signed_in(request: Request) -> Visitor:
    """A dependency for pages: the signed-in visitor, or a redirect to the sign-in page."""
    who = visitor(request)
    if who is None:
        raise SignInRequired
    request.state.visitor = who  # for an error page later in this request
    return who


async def to_sign_in(_request: Request, _error: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


def workspace_names(
    tessera: Tessera, organization_id: str
) -> tuple[list[Workspace], dict[str, str]]:
    rows = tessera.workspaces.in_organization(organization_id)
    return rows, {w.id: w.name for w in rows}
