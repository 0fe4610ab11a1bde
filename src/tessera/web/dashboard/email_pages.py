"""Dashboard pages reached from a link: accepting an invitation, resetting a password,
verifying an email (SPEC section 3).

The link's secret travels in the query string (``?token=``), which the request log leaves
out, and then in a form field. Opening a link changes nothing: a button posts the change, so
a mail scanner that fetches links spends none of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from tessera.accounts.records import Invitation
from tessera.deployment import Tessera
from tessera.edge.problems import status_of
from tessera.errors import TesseraError
from tessera.principal import ClientInfo
from tessera.web.cookies import check_same_origin, set_cookie_header
from tessera.web.dashboard import forms
from tessera.web.dashboard.pages import check_form, render, visitor
from tessera.web.deps import client_info, tessera_of
from tessera.web.inputs import ApiBody, NewPassword, PersonName
from tessera.web.routes.email_links import RESET_REQUESTED, ResetConfirmBody

router = APIRouter(include_in_schema=False)
OPERATOR_RESET = "tessera user reset-password --email"


class InvitationSignup(ApiBody):
    """The invitation page's sign-up fields, with the API's limits."""

    name: PersonName = ""
    password: NewPassword


def _token(source: Any) -> str:
    return str(source.get("token", ""))[:200]


@router.get("/invitations/accept")
def invitation_page(request: Request) -> Response:
    tessera = tessera_of(request)
    token = _token(request.query_params)
    invitation = tessera.invitations.pending(token)
    return _invitation_form(request, tessera, invitation, token)


def _invitation_form(
    request: Request,
    tessera: Tessera,
    invitation: Invitation,
    token: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    who = visitor(request)
    return render(
        request,
        "invitation_accept.html",
        status=status,
        invitation=invitation,
        organization_name=tessera.invitations.organization_name(invitation),
        token=token,
        signed_in_as=who.user.email if who else None,
        csrf_token=who.csrf_token if who else "",
        matches=bool(who and who.user.email.lower() == invitation.email.lower()),
        next=f"/invitations/accept?token={token}",
        **context,
    )


@router.post("/invitations/accept")
async def accept_invitation(request: Request) -> Response:
    form = await request.form()
    tessera = tessera_of(request)
    token = _token(form)
    who = visitor(request)
    try:
        if who is not None:
            check_form(request, who, form)
            tessera.invitations.accept_existing(token, who.user.id, client_info(request))
            return RedirectResponse("/settings/members", status_code=303)
        check_same_origin(request, tessera)
        fields = forms.read(InvitationSignup, form)
        user_id = await run_in_threadpool(
            _sign_up, tessera, token, fields.password, fields.name, client_info(request)
        )
    except TesseraError as refused:
        invitation = _still_open(tessera, token)
        if invitation is None:
            raise
        errors = forms.field_errors(refused)
        return _invitation_form(
            request,
            tessera,
            invitation,
            token,
            status=status_of(refused),
            error=refused.detail if not errors else forms.CHECK_FIELDS,
            errors=errors,
        )
    _, raw = tessera.sessions.start(user_id, client_info(request))
    response = RedirectResponse("/settings/api-keys", status_code=303)
    response.headers.append("set-cookie", set_cookie_header(tessera, raw))
    return response


def _sign_up(tessera: Tessera, token: str, password: str, name: str, client: ClientInfo) -> str:
    member = tessera.invitations.accept_new(token, password=password, name=name, client=client)
    return member.user.id


def _still_open(tessera: Tessera, token: str) -> Invitation | None:
    try:
        return tessera.invitations.pending(token)
    except TesseraError:
        return None


@router.get("/password-reset")
def reset_page(request: Request) -> Response:
    return _reset_request_page(request)


def _reset_request_page(request: Request, **context: Any) -> Response:
    resets = tessera_of(request).password_resets
    return render(
        request,
        "password_reset.html",
        sends_email=resets.sends_email,
        operator_command=OPERATOR_RESET,
        **context,
    )


@router.post("/password-reset")
async def request_reset(request: Request, background: BackgroundTasks) -> Response:
    form = await request.form()
    tessera = tessera_of(request)
    check_same_origin(request, tessera)
    email = str(form.get("email", ""))[:254]
    mail = await run_in_threadpool(tessera.password_resets.request, email, client_info(request))
    if mail is not None:  # after the answer: its timing tells nothing about the email
        background.add_task(tessera.password_resets.send_quietly, mail)
    return _reset_request_page(request, message=RESET_REQUESTED, sent=True)


@router.get("/password-reset/confirm")
def reset_confirm_page(request: Request) -> Response:
    token = _token(request.query_params)
    tessera_of(request).password_resets.check(token)
    return render(request, "password_reset_confirm.html", token=token)


@router.post("/password-reset/confirm")
async def confirm_reset(request: Request) -> Response:
    form = await request.form()
    tessera = tessera_of(request)
    token = _token(form)
    try:
        check_same_origin(request, tessera)
        body = forms.read(ResetConfirmBody, form)
        await run_in_threadpool(
            tessera.password_resets.confirm, body.token, body.password, client_info(request)
        )
    except TesseraError as refused:
        errors = forms.field_errors(refused)
        if "password" not in errors:
            raise
        return render(
            request,
            "password_reset_confirm.html",
            status=status_of(refused),
            token=token,
            error=forms.CHECK_FIELDS,
            errors=errors,
        )
    return render(
        request,
        "login.html",
        message="Your password was changed, and every session was signed out. Sign in again.",
        signup_open=tessera.config.signup == "open",
        next="/",
    )


def verify_later(tessera: Tessera, user_id: str, background: BackgroundTasks) -> None:
    """Mail a verification link to someone who just signed up, after the answer goes out."""
    user = tessera.accounts.user(user_id)
    mail = tessera.email_verifications.for_new_user(user) if user else None
    if mail is not None:
        background.add_task(tessera.email_verifications.send_quietly, mail)


@router.get("/verify-email")
def verify_page(request: Request) -> Response:
    return render(request, "verify_email.html", token=_token(request.query_params))


@router.post("/verify-email")
async def verify_email(request: Request) -> Response:
    form = await request.form()
    tessera = tessera_of(request)
    check_same_origin(request, tessera)
    user = tessera.email_verifications.confirm(_token(form), client_info(request))
    return render(request, "verify_email.html", verified=user.email)
