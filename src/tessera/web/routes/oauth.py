"""The OAuth 2.0 / OpenID Connect endpoints (SPEC section 4): Starlette in, Authlib's server
(``oauth/server.py``) in the middle, Starlette out. Errors follow RFC 6749, not the problem
format: JSON from the token, revocation and introspection endpoints, a redirect carrying
``error``, ``state`` and ``iss`` from the authorization endpoint, and a page of our own when
the client or its redirect URI cannot be trusted."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from tessera.deployment import Tessera
from tessera.oauth.issuer import Subject
from tessera.oauth.records import OPENID_SCOPES, OAuthClient
from tessera.oauth.server import AUTH_METHODS, CONFIDENTIAL_METHODS, HttpRequest, HttpResponse
from tessera.web.dashboard.pages import SECURITY_HEADERS, Visitor, check_form, render, visitor
from tessera.web.deps import client_info, tessera_of
from tessera.web.return_path import sign_in_url

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def metadata(tessera: Tessera) -> dict[str, Any]:
    """What the discovery documents advertise: exactly what is supported."""
    issuer = tessera.config.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": [*OPENID_SCOPES, *sorted(tessera.catalog.scopes)],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_METHODS),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": tessera.signing.algorithms(),
        "claims_supported": ["sub", "name", "email", "email_verified", "auth_time", "nonce"],
        "authorization_response_iss_parameter_supported": True,
    }


@router.get("/.well-known/openid-configuration")
@router.get("/.well-known/oauth-authorization-server")
def discovery(request: Request) -> JSONResponse:
    return JSONResponse(metadata(tessera_of(request)))


@router.get("/oauth2/authorize")
async def authorize(request: Request) -> Response:
    oauth_request = await _request(request)
    return await run_in_threadpool(_authorize, request, oauth_request)


@router.post("/oauth2/authorize")
async def decide(request: Request) -> Response:
    """The consent page's answer: Allow or Deny."""
    oauth_request = await _request(request)
    return await run_in_threadpool(_decide, request, oauth_request)


@router.post("/oauth2/token")
async def token(request: Request) -> Response:
    server = tessera_of(request).oauth_server
    oauth_request = await _request(request)
    return _response(await run_in_threadpool(server.create_token_response, oauth_request))


@router.post("/oauth2/revoke")
async def revoke(request: Request) -> Response:
    return await _endpoint(request, "revocation")


@router.post("/oauth2/introspect")
async def introspect(request: Request) -> Response:
    return await _endpoint(request, "introspection")


@router.get("/oauth2/userinfo")
@router.post("/oauth2/userinfo")
def userinfo(request: Request) -> Response:
    tessera = tessera_of(request)
    header = request.headers.get("authorization", "")
    raw = header[7:].strip() if header[:7].lower() == "bearer " else ""
    issued = tessera.oauth_issuer.presented(raw) if raw.count(".") == 2 else None
    if issued is None or not issued.active or issued.kind != "access_token":
        return _bearer_error("invalid_token", "The access token is not valid.", 401)
    if "openid" not in issued.scope.split() or not issued.subject.startswith("usr_"):
        return _bearer_error("insufficient_scope", "The access token lacks openid.", 403)
    claims = tessera.oauth_issuer.userinfo(issued.subject, issued.scope)
    return JSONResponse(claims, headers=NO_STORE)


def _authorize(request: Request, oauth_request: HttpRequest) -> Response:
    tessera = tessera_of(request)
    who = visitor(request)
    try:
        # Authlib validates the request, and answers prompt=none without a session with
        # login_required (OpenID requests); the rest of prompt and max_age is ours.
        grant = tessera.oauth_server.get_consent_grant(oauth_request, end_user=who)
        prompts = _prompts(grant)
        sign_in = _sign_in_needed(tessera, who, grant, prompts)
    except OAuth2Error as error:
        return _authorize_error(tessera, oauth_request, error)
    if sign_in:
        if "none" in prompts:
            return _interaction_required(tessera, oauth_request, grant, LoginRequiredError)
        return _to_sign_in(request, again=who is not None)
    assert who is not None
    client: OAuthClient = grant.request.client.record
    choices = _choices(tessera, who, client, grant.request.scope or "")
    if not choices:
        return _error_page(request, "You belong to no organization that could allow this.")
    if len(choices) == 1 and "consent" not in prompts:
        organization_id, scopes = next(iter(choices.items()))
        if tessera.oauth_grants.remembered(client.id, who.user.id, organization_id, scopes):
            return _issue(request, oauth_request, grant, who, organization_id)
    if "none" in prompts:  # the consent page would have to be shown
        return _interaction_required(tessera, oauth_request, grant, ConsentRequiredError)
    return _consent_page(request, who, client, choices, grant.redirect_uri)


def _decide(request: Request, oauth_request: HttpRequest) -> Response:
    tessera = tessera_of(request)
    who = visitor(request)
    if who is None:
        return _to_sign_in(request, again=False)
    form = dict(oauth_request.form)
    check_form(request, who, form)
    try:
        grant = tessera.oauth_server.get_consent_grant(oauth_request, end_user=who)
        if _sign_in_needed(tessera, who, grant, _prompts(grant)):
            return _to_sign_in(request, again=True)
    except OAuth2Error as error:
        return _authorize_error(tessera, oauth_request, error)
    if form.get("decision") != "allow":
        return _response(
            tessera.oauth_server.create_authorization_response(oauth_request, None, grant)
        )
    return _issue(request, oauth_request, grant, who, form.get("organization_id", ""))


def _issue(
    request: Request, oauth_request: HttpRequest, grant: Any, who: Visitor, organization_id: str
) -> Response:
    """The code, for what the person may allow in the organization they chose."""
    tessera = tessera_of(request)
    client: OAuthClient = grant.request.client.record
    choices = _choices(tessera, who, client, grant.request.scope or "")
    if organization_id not in choices:
        return _error_page(request, "Choose one of your organizations.")
    scopes = choices[organization_id]
    consent = tessera.oauth_grants.consent(
        client, who.user.id, organization_id, scopes, client_info(request)
    )
    subject = Subject(
        organization_id=organization_id,
        user_id=who.user.id,
        grant_id=consent.id,
        scope=" ".join(sorted(scopes)),
        auth_time=_signed_in_at(tessera, who),
    )
    server = tessera.oauth_server
    return _response(server.create_authorization_response(oauth_request, subject, grant))


def _choices(
    tessera: Tessera, who: Visitor, client: OAuthClient, requested: str
) -> dict[str, frozenset[str]]:
    """For each organization of the person: what they may allow of what was asked."""
    asked = frozenset(requested.split())
    return {
        m.organization.id: asked
        & tessera.oauth_issuer.grantable(client, who.user.id, m.organization.id)
        for m in tessera.accounts.memberships(who.user.id)
    }


def _consent_page(
    request: Request,
    who: Visitor,
    client: OAuthClient,
    choices: dict[str, frozenset[str]],
    redirect_uri: str,
) -> Response:
    tessera = tessera_of(request)
    owner = tessera.accounts.organization(client.organization_id)
    asked = sorted({s for scopes in choices.values() for s in scopes})
    catalog = tessera.catalog.scopes.values()
    descriptions = {**OPENID_SCOPES, **{s.name: s.description for s in catalog}}
    refused = sorted(set((request.query_params.get("scope") or "").split()) - set(asked))
    organizations = [
        (m.organization.id, m.organization.name) for m in tessera.accounts.memberships(who.user.id)
    ]
    # A scope the person may allow in some of their organizations only: say where it is not.
    names = dict(organizations)
    limited = {
        scope: [names[o] for o, granted in choices.items() if scope not in granted]
        for scope in asked
    }
    response = render(
        request,
        "consent.html",
        client=client,
        owner=owner.name if owner else "",
        scopes=[(s, descriptions.get(s, ""), limited[s]) for s in asked],
        refused=refused,
        organizations=organizations,
        person=who.user,
        csrf_token=who.csrf_token,
        action="/oauth2/authorize?" + request.url.query,
    )
    # The answer to this form is a redirect to the client: the page may send it there.
    target = urlsplit(redirect_uri)
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
    )
    response.headers["Content-Security-Policy"] = csp
    return response


def _authorize_error(tessera: Tessera, oauth_request: HttpRequest, error: OAuth2Error) -> Response:
    """To the client when its redirect URI was checked; never to an untrusted one."""
    if getattr(error, "redirect_uri", None):
        server = tessera.oauth_server
        return _response(server.handle_error_response(oauth_request, error))
    detail = error.description or error.error
    html = render_error(detail)
    return html


def render_error(detail: str) -> Response:
    from tessera.web.dashboard.pages import templates

    page = templates.get_template("oauth_error.html").render(detail=detail)
    return Response(page, status_code=400, media_type="text/html", headers=SECURITY_HEADERS)


def _error_page(request: Request, detail: str) -> Response:
    return render_error(detail)


def _prompts(grant: Any) -> list[str]:
    """The request's ``prompt`` values; ``none`` with any other is invalid (OIDC Core 3.1.2.1)."""
    prompts = str(grant.request.payload.data.get("prompt") or "").split()
    if "none" in prompts and len(prompts) > 1:
        raise _invalid(grant, "prompt=none cannot be combined with other values.")
    return prompts


def _sign_in_needed(tessera: Tessera, who: Visitor | None, grant: Any, prompts: list[str]) -> bool:
    """Whether the person must sign in (again) first: nobody is signed in, the client asked
    for a fresh sign-in (``prompt=login``), or the sign-in is older than ``max_age`` seconds."""
    if who is None or "login" in prompts:
        return True
    max_age = grant.request.payload.data.get("max_age")
    if max_age is None:
        return False
    if not max_age.isdigit() or len(max_age) > 12:
        raise _invalid(grant, "max_age must be a number of seconds.")
    signed_in_at = _signed_in_at(tessera, who)
    if signed_in_at is None:
        return True
    if signed_in_at.tzinfo is None:
        signed_in_at = signed_in_at.replace(tzinfo=UTC)
    return bool((tessera.clock.now() - signed_in_at).total_seconds() > int(max_age))


def _invalid(grant: Any, detail: str) -> InvalidRequestError:
    """``invalid_request`` back to the client, which Authlib has already checked."""
    state = grant.request.payload.state
    return InvalidRequestError(detail, redirect_uri=grant.redirect_uri, state=state)


def _to_sign_in(request: Request, *, again: bool) -> Response:
    """To the sign-in page, and back to this request afterwards. A sign-in asked for by
    ``prompt=login`` or ``max_age`` returns without them: it has just been fresh."""
    pairs = request.query_params.multi_items()
    resume: list[tuple[str, str]] = []
    for name, value in pairs:
        if name == "max_age":
            continue
        if name == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
            if not value:
                continue
        resume.append((name, value))
    target = _here(request) if resume == pairs else f"{request.url.path}?{urlencode(resume)}"
    return RedirectResponse(sign_in_url(target, again=again), status_code=303)


def _interaction_required(
    tessera: Tessera, oauth_request: HttpRequest, grant: Any, error: type[OAuth2Error]
) -> Response:
    """``prompt=none`` when a page would have to be shown: the error goes to the client."""
    refused = error(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
    return _authorize_error(tessera, oauth_request, refused)


def _signed_in_at(tessera: Tessera, who: Visitor) -> Any:
    session_id = who.principal.facts.get("session_id")
    for session in tessera.sessions.list(who.user.id):
        if session.id == session_id:
            return session.created_at
    return None


def _here(request: Request) -> str:
    return request.url.path + ("?" + request.url.query if request.url.query else "")


async def _request(request: Request) -> HttpRequest:
    tessera = tessera_of(request)
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        parsed = await request.form()
        form = [(k, v) for k, v in parsed.multi_items() if isinstance(v, str)]
    uri = tessera.config.issuer + request.url.path
    if request.url.query:
        uri += "?" + request.url.query
    return HttpRequest(
        method=request.method,
        uri=uri,
        headers=request.headers,  # type: ignore[arg-type]
        query=list(request.query_params.multi_items()),
        form=form,
        client_ip=client_info(request).ip,
    )


async def _endpoint(request: Request, name: str) -> Response:
    server = tessera_of(request).oauth_server
    oauth_request = await _request(request)
    answer = await run_in_threadpool(server.create_endpoint_response, name, oauth_request)
    return _response(answer)


def _response(answer: HttpResponse) -> Response:
    headers = {k: v for k, v in answer.headers if k.lower() != "location"}
    if answer.location is not None:
        return RedirectResponse(answer.location, status_code=302, headers=headers)
    body = answer.body if isinstance(answer.body, dict) else {}
    return JSONResponse(body, status_code=answer.status, headers=headers)


def _bearer_error(code: str, detail: str, status: int) -> Response:
    headers = {"WWW-Authenticate": f'Bearer realm="tessera", error="{code}"', **NO_STORE}
    return JSONResponse({"error": code, "error_description": detail}, status, headers=headers)
