"""Dashboard pages: sign-up, sign-in, API keys, sessions, members, audit log (SPEC section 10)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from tessera.deployment import Tessera
from tessera.edge.problems import status_of
from tessera.errors import Forbidden, RateLimited, TesseraError, Unauthorized
from tessera.principal import ClientInfo
from tessera.sessions.service import session_resource
from tessera.web.cookies import check_same_origin, clear_cookie_header, set_cookie_header
from tessera.web.dashboard import (
    audit_log,
    email_pages,
    forms,
    keys,
    members_pages,
    oauth_pages,
    readable,
    social,
    workspaces,
)
from tessera.web.dashboard.pages import (
    Visitor,
    check_form,
    page_context,
    posted_form,
    render,
    signed_in,
    visitor,
)
from tessera.web.deps import client_info, tessera_of
from tessera.web.return_path import AGAIN, return_path
from tessera.web.routes.auth import SignupBody

router = APIRouter(include_in_schema=False)
router.include_router(oauth_pages.router)
router.include_router(social.router)  # sign in with a provider; Settings → Sign-in methods
router.include_router(members_pages.router)
router.include_router(email_pages.router)


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
    who = visitor(request)
    if who is not None and AGAIN not in request.query_params:
        return _redirect(after)
    open_signup = tessera_of(request).config.signup == "open"
    email = who.user.email if who is not None else None
    return render(request, "login.html", signup_open=open_signup, next=after, email=email)


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
            error=readable.refusal(refused, tessera.clock.now()),
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
async def signup(request: Request, background: BackgroundTasks) -> Response:
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
    email_pages.verify_later(tessera, user_id, background)
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
def end_session(
    session_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    tessera = tessera_of(request)
    tessera.sessions.end(who.user.id, session_id, client_info(request))
    if session_id == who.principal.facts["session_id"]:
        return _redirect("/login", clear_cookie_header(tessera))
    return _redirect("/settings/sessions")


@router.post("/settings/sessions/end-all")
def end_all_sessions(
    request: Request, who: Visitor = Depends(signed_in), form: FormData = Depends(posted_form)
) -> Response:
    check_form(request, who, form)
    tessera = tessera_of(request)
    tessera.sessions.end_all(who.user.id, client_info(request))
    return _redirect("/login", clear_cookie_header(tessera))


# Pages with modules of their own, after the routes above.
router.include_router(keys.router)
router.include_router(workspaces.router)
router.include_router(audit_log.router)
