"""Dashboard pages: sign-up, sign-in, API keys, sessions, members, audit log (SPEC section 10)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from tessera import audit
from tessera.deployment import Tessera
from tessera.edge.problems import status_of
from tessera.errors import Forbidden, RateLimited, TesseraError, Unauthorized
from tessera.keys.records import key_resource
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo
from tessera.scopes import ADMIN_ROLES
from tessera.sessions.service import session_resource
from tessera.web.cookies import check_same_origin, clear_cookie_header, set_cookie_header
from tessera.web.dashboard import forms, oauth_pages, social
from tessera.web.dashboard.pages import (
    Visitor,
    check_form,
    page_context,
    render,
    signed_in,
    usage_chart,
    visitor,
    workspace_names,
)
from tessera.web.deps import client_info, tessera_of
from tessera.web.return_path import return_path
from tessera.web.routes.auth import SignupBody

router = APIRouter(include_in_schema=False)
router.include_router(oauth_pages.router)
router.include_router(social.router)  # sign in with a provider; Settings → Sign-in methods


def _redirect(path: str, set_cookie: str | None = None) -> Response:
    response = RedirectResponse(path, status_code=303)
    if set_cookie:
        response.headers.append("set-cookie", set_cookie)
    return response


@router.get("/")
def home(request: Request) -> Response:
    return _redirect("/settings/api-keys" if visitor(request) else "/login")


@router.get("/login")
def login_page(request: Request) -> Response:
    after = return_path(request, request.query_params.get("next"))
    if visitor(request):
        return _redirect(after)
    open_signup = tessera_of(request).config.signup == "open"
    return render(request, "login.html", signup_open=open_signup, next=after)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    tessera = tessera_of(request)
    try:
        check_same_origin(request, tessera)
        # Off the event loop: hashing takes a slot of the bounded pool and may wait for one.
        user = await run_in_threadpool(
            tessera.tokens.check_password, email, password, client_info(request)
        )
    except (Unauthorized, RateLimited, Forbidden) as refused:
        open_signup = tessera.config.signup == "open"
        return render(
            request,
            "login.html",
            status=status_of(refused),
            error=refused.detail,
            email=email,
            signup_open=open_signup,
            next=return_path(request, form.get("next")),
        )
    _, raw = tessera.sessions.start(user.id, client_info(request))
    return _redirect(return_path(request, form.get("next")), set_cookie_header(tessera, raw))


@router.get("/signup")
def signup_page(request: Request) -> Response:
    if tessera_of(request).config.signup != "open":
        return render(
            request, "login.html", status=403, error="Sign-up is closed.", signup_open=False
        )
    return render(request, "signup.html", form={})


@router.post("/signup")
async def signup(request: Request) -> Response:
    form = await request.form()
    fields = {k: str(form.get(k, "")) for k in ("email", "password", "name", "organization_name")}
    tessera = tessera_of(request)
    try:
        check_same_origin(request, tessera)
        if tessera.config.signup != "open":
            raise Forbidden("Sign-up is closed.")
        # Off the event loop: hashing takes a slot of the bounded pool and may wait for one.
        body = forms.read(SignupBody, form)
        user_id = await run_in_threadpool(_sign_up, tessera, body, client_info(request))
    except TesseraError as refused:
        errors = forms.field_errors(refused)
        return render(
            request,
            "signup.html",
            status=status_of(refused),
            error=forms.summary(refused, errors, fields),
            errors=errors,
            form=fields,
        )
    _, raw = tessera.sessions.start(user_id, client_info(request))
    return _redirect("/settings/api-keys", set_cookie_header(tessera, raw))


def _sign_up(tessera: Tessera, body: SignupBody, client: ClientInfo) -> str:
    return tessera.accounts.sign_up(**body.model_dump(), client=client).user.id


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = visitor(request)
    tessera = tessera_of(request)
    if who is not None:
        check_form(request, who, await request.form())
        session_id = who.principal.facts["session_id"]
        tessera.sessions.end(who.user.id, session_id, client_info(request))
    return _redirect("/login", clear_cookie_header(tessera))


@router.get("/settings/api-keys")
def keys_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    organization_id = _organization(who)
    page = tessera.api_keys.page(organization_id, limit=100, include_revoked=True)
    now = tessera.clock.now()
    _, names = workspace_names(tessera, organization_id)
    return render(
        request,
        "keys.html",
        **page_context(who, "keys"),
        keys=[key_resource(r, now) for r in page.items],
        workspace_names=names,
        can_write="api_keys:write" in who.principal.scopes,
    )


@router.get("/settings/api-keys/new")
def new_key_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _new_key_form(request, who)


def _new_key_form(
    request: Request, who: Visitor, error: str | None = None, status: int = 200
) -> Response:
    tessera = tessera_of(request)
    workspaces, _ = workspace_names(tessera, _organization(who))
    is_admin = who.principal.role in ADMIN_ROLES
    groups = [
        (
            resource,
            [
                s
                for s in scopes
                if s.name in who.principal.scopes and (is_admin or not s.admin_only)
            ],
        )
        for resource, scopes in tessera.catalog.grouped().items()
    ]
    return render(
        request,
        "key_new.html",
        status=status,
        error=error,
        **page_context(who, "keys"),
        form={},
        scope_groups=[(r, s) for r, s in groups if s],
        workspaces=workspaces,
        max_days=tessera.config.max_key_lifetime_days,
    )


@router.post("/settings/api-keys")
async def create_key(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    form = await request.form()
    tessera = tessera_of(request)
    try:
        check_form(request, who, form)
        new = tessera.api_keys.create(who.principal, _spec(request, form), client_info(request))
    except TesseraError as refused:
        return _new_key_form(request, who, error=refused.detail, status=status_of(refused))
    return render(
        request,
        "key_created.html",
        **page_context(who, "keys"),
        key=key_resource(new.key, tessera.clock.now()),
        raw=new.raw,
    )


def _spec(request: Request, form: Any) -> KeySpec:
    scopes = [str(s) for s in form.getlist("scopes")]
    workspaces = [str(w) for w in form.getlist("workspace_ids")]
    days = str(form.get("expires_in_days", "")).strip()
    expires = (
        tessera_of(request).clock.now() + timedelta(days=int(days)) if days.isdigit() else None
    )
    return KeySpec(
        name=str(form.get("name", "")),
        scopes=scopes or None,
        workspace_ids=workspaces or None,
        environment=str(form.get("environment", "live")),
        expires_at=expires,
    )


@router.get("/settings/api-keys/{key_id}")
def key_page(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    organization_id = _organization(who)
    row = tessera.api_keys.get(organization_id, key_id)
    days = tessera.api_keys.usage(organization_id, key_id, 30)
    _, names = workspace_names(tessera, organization_id)
    return render(
        request,
        "key_detail.html",
        **page_context(who, "keys"),
        key=key_resource(row, tessera.clock.now()),
        chart=usage_chart(days),
        workspace_names=names,
        total_requests=sum(d["requests"] for d in days),
        total_rejected=sum(d["rejected"] for d in days),
        can_write="api_keys:write" in who.principal.scopes,
    )


@router.get("/settings/api-keys/{key_id}/revoke")
def revoke_page(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    row = tessera.api_keys.get(_organization(who), key_id)
    return render(
        request,
        "key_revoke.html",
        **page_context(who, "keys"),
        key=key_resource(row, tessera.clock.now()),
    )


@router.post("/settings/api-keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    check_form(request, who, await request.form())
    _require(who, "api_keys:write")
    tessera_of(request).api_keys.revoke(who.principal, key_id, client_info(request))
    return _redirect("/settings/api-keys")


@router.post("/settings/api-keys/{key_id}/roll")
async def roll_key(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    form = await request.form()
    check_form(request, who, form)
    _require(who, "api_keys:write")
    grace = str(form.get("expires_old_in_seconds", "0"))
    tessera = tessera_of(request)
    new = tessera.api_keys.roll(
        who.principal, key_id, int(grace) if grace.isdigit() else 0, client_info(request)
    )
    return render(
        request,
        "key_created.html",
        **page_context(who, "keys"),
        key=key_resource(new.key, tessera.clock.now()),
        raw=new.raw,
    )


@router.get("/settings/sessions")
def sessions_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    rows = tessera_of(request).sessions.list(who.user.id)
    current = who.principal.facts["session_id"]
    return render(
        request,
        "sessions.html",
        **page_context(who, "sessions"),
        sessions=[session_resource(r, current) for r in rows],
    )


@router.post("/settings/sessions/{session_id}/end")
async def end_session(
    session_id: str, request: Request, who: Visitor = Depends(signed_in)
) -> Response:
    check_form(request, who, await request.form())
    tessera = tessera_of(request)
    tessera.sessions.end(who.user.id, session_id, client_info(request))
    if session_id == who.principal.facts["session_id"]:
        return _redirect("/login", clear_cookie_header(tessera))
    return _redirect("/settings/sessions")


@router.post("/settings/sessions/end-all")
async def end_all_sessions(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    check_form(request, who, await request.form())
    tessera = tessera_of(request)
    tessera.sessions.end_all(who.user.id, client_info(request))
    return _redirect("/login", clear_cookie_header(tessera))


@router.get("/settings/members")
def members_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    members = [
        {"user": m.user, "role": m.role, "created_at": m.as_resource()["created_at"]}
        for m in tessera.members.list(_organization(who))
    ]
    return render(
        request,
        "members.html",
        **page_context(who, "members"),
        members=members,
        roles=sorted(tessera.catalog.roles),
        can_manage=who.principal.role in ADMIN_ROLES,
    )


@router.post("/settings/members/{user_id}/role")
async def change_role(
    user_id: str, request: Request, who: Visitor = Depends(signed_in)
) -> Response:
    form = await request.form()
    check_form(request, who, form)
    tessera_of(request).members.change_role(
        who.principal,
        user_id=user_id,
        role=str(form.get("role", "")),
        client=client_info(request),
    )
    return _redirect("/settings/members")


@router.get("/settings/audit-log")
def audit_page(
    request: Request, cursor: str | None = None, who: Visitor = Depends(signed_in)
) -> Response:
    _require(who, "audit:read")
    page = tessera_of(request).audit_log.page(
        _organization(who), limit=50, cursor=cursor, action=None
    )
    return render(
        request,
        "audit.html",
        **page_context(who, "audit"),
        events=[audit.to_resource(e) for e in page.items],
        next_cursor=page.next_cursor,
    )


def _organization(who: Visitor) -> str:
    if who.principal.organization_id is None:
        raise Forbidden("You are not a member of any organization.")
    return who.principal.organization_id


def _require(who: Visitor, scope: str) -> None:
    if scope not in who.principal.scopes:
        raise Forbidden(f"Your role does not allow this ({scope}).")
