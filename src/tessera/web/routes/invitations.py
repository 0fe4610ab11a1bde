"""Invitations to the caller's organization (SPEC section 3), and accepting one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from tessera.accounts.records import user_resource
from tessera.clock import rfc3339
from tessera.errors import Forbidden
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import authenticate, client_info, requires, tessera_of
from tessera.web.inputs import ApiBody, Email, PersonName
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, JSON_BODY, problems

router = APIRouter(prefix="/v1", tags=["members"])
TOKEN_MAX_LENGTH = 200


class InvitationBody(ApiBody):
    email: Email
    role: str = Field(default="member", max_length=50)


class AcceptBody(ApiBody):
    token: str = Field(min_length=1, max_length=TOKEN_MAX_LENGTH)
    # For a person without an account: the invitation signs them up with these.
    password: str | None = Field(default=None, max_length=1024)
    name: PersonName = ""


class Invitation(resources.Resource):
    id: str = Field(examples=["inv_5Hq2Lm8Np1Rs4Tv7Wx0Y"])
    object: Literal["invitation"]
    organization_id: str
    email: str
    role: str
    status: Literal["pending", "accepted", "revoked", "expired"]
    emailed: bool = Field(description="The link went to the email; else `url` was answered.")
    created_at: resources.Timestamp
    created_by: str
    expires_at: resources.Timestamp
    accepted_at: resources.Timestamp | None
    accepted_by: str | None
    revoked_at: resources.Timestamp | None


class CreatedInvitation(Invitation):
    url: str | None = Field(
        default=None,
        description="The one-time link, answered only when no mail server is configured.",
    )


class InvitationList(resources.Resource):
    data: list[Invitation]
    next_cursor: str | None


class Accepted(resources.Resource):
    object: Literal["member"]
    user: resources.User
    organization_id: str
    role: str
    created_at: resources.Timestamp


@router.get(
    "/invitations",
    response_model=InvitationList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def list_invitations(
    request: Request, principal: Principal = Depends(requires("members:read"))
) -> dict[str, Any]:
    tessera = tessera_of(request)
    now = tessera.clock.now()
    rows = tessera.invitations.list(principal.organization())
    return {"data": [i.as_resource(now) for i in rows], "next_cursor": None}


@router.post(
    "/invitations",
    status_code=201,
    response_model=CreatedInvitation,
    responses=problems(*AUTHENTICATED, *JSON_BODY, 409),
    openapi_extra=CREDENTIALS,
)
def create_invitation(
    body: InvitationBody,
    request: Request,
    principal: Principal = Depends(requires("members:write")),
) -> dict[str, Any]:
    tessera = tessera_of(request)
    new = tessera.invitations.create(
        principal, email=body.email, role=body.role, client=client_info(request)
    )
    answer = new.invitation.as_resource(tessera.clock.now())
    if not new.invitation.emailed:
        answer["url"] = new.url  # the only time anyone sees it
    return answer


@router.post(
    "/auth/accept-invitation",
    response_model=Accepted,
    responses=problems(*JSON_BODY, 401, 403, 404, 409, 429),
    openapi_extra={"security": [{}, {"bearer": []}, {"sessionCookie": []}]},
)
def accept_invitation(body: AcceptBody, request: Request) -> dict[str, Any]:
    """With a user credential, the signed-in person (whose email the invitation names)
    joins; without one, ``password`` (and ``name``) sign the invited email up."""
    tessera = tessera_of(request)
    client = client_info(request)
    if _presents_credential(request):
        principal = authenticate(request)
        if principal.kind != "user" or principal.user_id is None:
            raise Forbidden("Only a person accepts an invitation; this credential is not one.")
        member = tessera.invitations.accept_existing(body.token, principal.user_id, client)
    else:
        member = tessera.invitations.accept_new(
            body.token, password=body.password or "", name=body.name, client=client
        )
    return {
        "object": "member",
        "user": user_resource(member.user),
        "organization_id": member.organization_id,
        "role": member.role,
        "created_at": rfc3339(member.created_at),
    }


@router.delete(
    "/invitations/{invitation_id}",
    response_model=Invitation,
    responses=problems(*AUTHENTICATED, 409),
    openapi_extra=CREDENTIALS,
)
def revoke_invitation(
    invitation_id: str,
    request: Request,
    principal: Principal = Depends(requires("members:write")),
) -> dict[str, Any]:
    tessera = tessera_of(request)
    revoked = tessera.invitations.revoke(principal, invitation_id, client_info(request))
    return revoked.as_resource(tessera.clock.now())


def _presents_credential(request: Request) -> bool:
    cookie = tessera_of(request).config.session.cookie_name
    headers = request.headers
    return bool(headers.get("authorization") or headers.get("x-api-key")) or (
        cookie in request.cookies
    )
