"""Sign-up, tokens, logout and ``/v1/me`` (SPEC section 3)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import Field
from starlette.responses import Response

from tessera.accounts.passwords import MAX_PASSWORD_LENGTH
from tessera.accounts.records import organization_resource, user_resource
from tessera.errors import Forbidden, InvalidRequest, Unauthorized
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.cookies import (
    add_response_header,
    check_same_origin,
    clear_cookie_header,
    cookie_principal,
)
from tessera.web.deps import authenticate, client_info, tessera_of
from tessera.web.inputs import ApiBody, Email, Name, NewPassword, PersonName
from tessera.web.openapi import AUTHENTICATED, JSON_BODY, USER_CREDENTIALS, problems

router = APIRouter(prefix="/v1", tags=["users and tokens"])


class SignupBody(ApiBody):
    email: Email
    password: NewPassword
    name: PersonName = ""  # none: the email's local part
    organization_name: Name


class TokenBody(ApiBody):
    grant_type: Literal["password", "refresh_token"] = "password"
    email: Email | None = None
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    refresh_token: str | None = Field(default=None, max_length=512)


class LogoutBody(ApiBody):
    refresh_token: str | None = Field(default=None, max_length=512)


@router.post(
    "/auth/signup",
    status_code=201,
    response_model=resources.SignedUp,
    responses=problems(*JSON_BODY, 403, 409),
)
def signup(body: SignupBody, request: Request, background: BackgroundTasks) -> dict[str, Any]:
    tessera = tessera_of(request)
    account = tessera.accounts.sign_up(
        email=body.email,
        password=body.password,
        name=body.name,
        organization_name=body.organization_name,
        client=client_info(request),
    )
    verification = tessera.email_verifications.for_new_user(account.user)
    if verification is not None:  # sent after the answer; a failure is logged, not fatal
        background.add_task(tessera.email_verifications.send_quietly, verification)
    return {
        "user": user_resource(account.user),
        "organization": organization_resource(account.organization),
    }


@router.post(
    "/auth/token",
    response_model=resources.TokenPair,
    responses=problems(*JSON_BODY, 401, 429, 503),
)
def token(body: TokenBody, request: Request) -> dict[str, Any]:
    tokens = tessera_of(request).tokens
    if body.grant_type == "refresh_token":
        if not body.refresh_token:
            raise InvalidRequest("refresh_token is required for grant_type refresh_token.")
        return tokens.refresh(body.refresh_token, client_info(request)).as_response()
    if body.email is None or body.password is None:
        raise InvalidRequest("email and password are required.")
    return tokens.login(body.email, body.password, client_info(request)).as_response()


@router.post(
    "/auth/logout",
    status_code=204,
    response_class=Response,
    responses=problems(*JSON_BODY, 401, 403, 404),
    openapi_extra={"security": [{}, {"sessionCookie": []}]},
)
def logout(request: Request, body: LogoutBody | None = None) -> Response:
    tessera = tessera_of(request)
    if body is not None and body.refresh_token:
        tessera.tokens.logout(body.refresh_token)
        return Response(status_code=204)
    if not _end_cookie_session(request):
        raise Unauthorized("Send a refresh_token or a session cookie.", credential_presented=False)
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=resources.Me,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def me(request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("/v1/me describes a signed-in user; this credential is not one.")
    user, memberships = tessera_of(request).accounts.profile(principal.user_id)
    return {
        "user": user_resource(user),
        "memberships": [
            {"organization": organization_resource(m.organization), "role": m.role}
            for m in memberships
        ],
    }


def _end_cookie_session(request: Request) -> bool:
    """End the session the cookie names (and tell the browser to drop the cookie)."""
    tessera = tessera_of(request)
    principal = cookie_principal(request, tessera)
    if principal is None or principal.user_id is None:
        return False
    check_same_origin(request, tessera)
    session_id = principal.facts["session_id"]
    tessera.sessions.end(principal.user_id, session_id, client_info(request))
    add_response_header(request, "set-cookie", clear_cookie_header(tessera))
    return True
