"""Members of the caller's organization (``members:read`` / ``members:write``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import client_info, requires, tessera_of
from tessera.web.inputs import ApiBody, Email
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, JSON_BODY, problems

router = APIRouter(prefix="/v1/members", tags=["members"])


class AddMemberBody(ApiBody):
    email: Email
    role: str = Field(default="member", max_length=50)


class RoleBody(ApiBody):
    role: str = Field(max_length=50)


@router.get(
    "",
    response_model=resources.MemberList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def list_members(
    request: Request, principal: Principal = Depends(requires("members:read"))
) -> dict[str, Any]:
    rows = tessera_of(request).members.list(principal.organization())
    return {"data": [m.as_resource() for m in rows], "next_cursor": None}


@router.post(
    "",
    status_code=201,
    response_model=resources.Member,
    responses=problems(*AUTHENTICATED, *JSON_BODY, 409),
    openapi_extra=CREDENTIALS,
)
def add_member(
    body: AddMemberBody, request: Request, principal: Principal = Depends(requires("members:write"))
) -> dict[str, Any]:
    member = tessera_of(request).members.add(
        principal, email=body.email, role=body.role, client=client_info(request)
    )
    return member.as_resource()


@router.patch(
    "/{user_id}",
    response_model=resources.Member,
    responses=problems(*AUTHENTICATED, *JSON_BODY, 409),
    openapi_extra=CREDENTIALS,
)
def change_role(
    user_id: str,
    body: RoleBody,
    request: Request,
    principal: Principal = Depends(requires("members:write")),
) -> dict[str, Any]:
    member = tessera_of(request).members.change_role(
        principal, user_id=user_id, role=body.role, client=client_info(request)
    )
    return member.as_resource()


@router.delete(
    "/{user_id}",
    response_model=resources.RemovedMember,
    responses=problems(*AUTHENTICATED, 409),
    openapi_extra=CREDENTIALS,
)
def remove_member(
    user_id: str, request: Request, principal: Principal = Depends(requires("members:write"))
) -> dict[str, Any]:
    member = tessera_of(request).members.remove(
        principal, user_id=user_id, client=client_info(request)
    )
    return {**member.as_resource(), "removed": True}
