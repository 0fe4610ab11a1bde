"""Password reset and email verification by emailed links (SPEC section 3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import Field
from starlette.responses import Response

from tessera.accounts.records import user_resource
from tessera.errors import Forbidden
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import authenticate, client_info, tessera_of
from tessera.web.inputs import ApiBody, Email, NewPassword
from tessera.web.openapi import AUTHENTICATED, JSON_BODY, USER_CREDENTIALS, problems

router = APIRouter(prefix="/v1", tags=["users and tokens"])
TOKEN_MAX_LENGTH = 200
RESET_REQUESTED = "If an account has this email, a link to reset its password is on its way."


class ResetRequestBody(ApiBody):
    email: Email


class ResetConfirmBody(ApiBody):
    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)
    password: NewPassword


class VerifyBody(ApiBody):
    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)


class VerificationRequest(ApiBody):
    """No fields: the link goes to the signed-in person's own address."""


class Notice(resources.Resource):
    detail: str


class Verified(resources.Resource):
    user: resources.User


@router.post(
    "/auth/password-reset",
    status_code=202,
    response_model=Notice,
    responses=problems(*JSON_BODY, 429),
)
def request_reset(
    body: ResetRequestBody, request: Request, background: BackgroundTasks
) -> dict[str, Any]:
    """``202`` whether or not the email has an account; the mail goes out after the answer,
    so the time taken tells nothing either."""
    resets = tessera_of(request).password_resets
    mail = resets.request(body.email, client_info(request))
    if mail is not None:
        background.add_task(resets.send_quietly, mail)
    return {"detail": RESET_REQUESTED}


@router.post(
    "/auth/password-reset/confirm",
    status_code=204,
    response_class=Response,
    responses=problems(*JSON_BODY, 404, 429),
)
def confirm_reset(body: ResetConfirmBody, request: Request) -> Response:
    tessera_of(request).password_resets.confirm(body.token, body.password, client_info(request))
    return Response(status_code=204)


@router.post(
    "/me/email-verification",
    status_code=202,
    response_model=Notice,
    responses=problems(*AUTHENTICATED, *JSON_BODY, 409),
    openapi_extra=USER_CREDENTIALS,
)
def send_verification(
    request: Request,
    body: VerificationRequest | None = None,
    principal: Principal = Depends(authenticate),
) -> dict[str, Any]:
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("Only a person verifies an email; this credential is not one.")
    tessera_of(request).email_verifications.send_to(principal.user_id)
    return {"detail": "A verification link is on its way."}


@router.post(
    "/auth/verify-email", response_model=Verified, responses=problems(*JSON_BODY, 404, 429)
)
def verify_email(body: VerifyBody, request: Request) -> dict[str, Any]:
    user = tessera_of(request).email_verifications.confirm(body.token, client_info(request))
    return {"user": user_resource(user)}
