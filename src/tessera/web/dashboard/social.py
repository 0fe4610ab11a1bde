"""Social sign-in in the browser (SPEC section 3): ``/auth/{provider}/login`` sends the person
to the provider, ``/auth/{provider}/callback`` brings them back signed in, and Settings →
Sign-in methods links and unlinks providers.

The pending sign-in is bound to the browser by a short-lived cookie (HttpOnly, SameSite=Lax,
path ``/auth/``): a callback carrying a state that this browser did not start is refused.
Whatever goes wrong is a page that says what happened, never a 500.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from tessera.deployment import Tessera
from tessera.errors import Conflict, NotFound
from tessera.social.service import PENDING_SECONDS, SignInRefused
from tessera.web.cookies import set_cookie_header
from tessera.web.dashboard.pages import Visitor, check_form, page_context, render, signed_in
from tessera.web.deps import client_info, tessera_of
from tessera.web.return_path import return_path
from tessera.web.routes.identities import identity_list

router = APIRouter(include_in_schema=False)
SETTINGS = "/settings/sign-in-methods"
# How each refusal is shown: its status and the page's heading.
REFUSALS = {
    "unknown_provider": (404, "Unknown sign-in provider"),
    "bad_state": (400, "This sign-in cannot be completed"),
    "provider_error": (403, "The provider did not sign you in"),
    "unavailable": (502, "The provider cannot be reached"),
    "invalid": (502, "The provider's answer was not accepted"),
    "signup_closed": (403, "Sign-up is closed"),
    "email_in_use": (409, "An account with this email exists"),
    "no_email": (400, "No email address"),
    "already_linked": (409, "Already linked"),
}


def binding_cookie_name(tessera: Tessera) -> str:
    return tessera.config.session.cookie_name + "_signin"


def _binding_cookie(tessera: Tessera, value: str, max_age: int) -> str:
    parts = [
        f"{binding_cookie_name(tessera)}={value}",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/auth/",
        f"Max-Age={max_age}",
    ]
    if not tessera.config.is_loopback_http:
        parts.append("Secure")
    return "; ".join(parts)


def callback_url(tessera: Tessera, provider: str) -> str:
    return f"{tessera.config.issuer}/auth/{provider}/callback"


def _refused(request: Request, refused: SignInRefused) -> Response:
    status, heading = REFUSALS.get(refused.reason, (400, "Sign-in failed"))
    response = render(
        request,
        "social_error.html",
        status=status,
        heading=heading,
        detail=refused.detail,
        signup_open=tessera_of(request).config.signup == "open",
    )
    response.headers.append("set-cookie", _binding_cookie(tessera_of(request), "", 0))
    return response


def _to_provider(tessera: Tessera, url: str, browser_secret: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.headers.append("set-cookie", _binding_cookie(tessera, browser_secret, PENDING_SECONDS))
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/auth/{provider}/login")
def social_login(provider: str, request: Request) -> Response:
    tessera = tessera_of(request)
    after = return_path(request, request.query_params.get("next"))
    try:
        started = tessera.social.begin(
            provider, redirect_uri=callback_url(tessera, provider), return_to=after
        )
    except SignInRefused as refused:
        return _refused(request, refused)
    return _to_provider(tessera, started.url, started.browser_secret)


@router.get("/auth/{provider}/callback")
def social_callback(provider: str, request: Request) -> Response:
    tessera = tessera_of(request)
    client = client_info(request)
    params = {key: value for key, value in request.query_params.items()}
    try:
        finished = tessera.social.finish(
            provider,
            params,
            request.cookies.get(binding_cookie_name(tessera)),
            redirect_uri=callback_url(tessera, provider),
            client=client,
        )
    except SignInRefused as refused:
        return _refused(request, refused)
    if finished.linked:
        response = RedirectResponse(f"{SETTINGS}?linked={provider}", status_code=303)
    else:
        # A new session id at every sign-in, and the cookie exactly as password sign-in sets it.
        _, raw = tessera.sessions.start(finished.user_id, client, provider=provider)
        response = RedirectResponse(finished.return_to, status_code=303)
        response.headers.append("set-cookie", set_cookie_header(tessera, raw))
    response.headers.append("set-cookie", _binding_cookie(tessera, "", 0))
    return response


@router.get(SETTINGS)
def sign_in_methods(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _methods_page(request, who)


def _methods_page(
    request: Request, who: Visitor, error: str | None = None, status: int = 200
) -> Response:
    tessera = tessera_of(request)
    identities = identity_list(request, who.user.id)
    linked = {i["provider"] for i in identities}
    names = {p.name: p.display_name for p in tessera.social.providers}
    just_linked = request.query_params.get("linked")
    return render(
        request,
        "sign_in_methods.html",
        status=status,
        error=error,
        message=f"{names[just_linked]} is linked." if just_linked in names else None,
        **page_context(who, "sign-in-methods"),
        identities=identities,
        has_password=who.user.password_hash is not None,
        available=[p for p in tessera.social.providers if p.name not in linked],
    )


@router.get(SETTINGS + "/{provider}/link")
def link(provider: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    """A link rather than a form: the dashboard's CSP lets forms go nowhere but the dashboard,
    and this one leads to the provider. The session's CSRF token rides in the query."""
    check_form(request, who, request.query_params)
    tessera = tessera_of(request)
    try:
        started = tessera.social.begin(
            provider,
            redirect_uri=callback_url(tessera, provider),
            return_to=SETTINGS,
            link_user_id=who.user.id,
        )
    except SignInRefused as refused:
        return _refused(request, refused)
    return _to_provider(tessera, started.url, started.browser_secret)


@router.post(SETTINGS + "/{identity_id}/unlink")
async def unlink(identity_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    check_form(request, who, await request.form())
    try:
        tessera_of(request).social.unlink(who.user.id, identity_id, client_info(request))
    except (Conflict, NotFound) as refused:
        status = 409 if isinstance(refused, Conflict) else 404
        return _methods_page(request, who, error=refused.detail, status=status)
    return RedirectResponse(SETTINGS, status_code=303)
