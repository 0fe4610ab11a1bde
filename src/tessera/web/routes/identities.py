"""The caller's sign-in providers (SPEC section 3): list them, unlink one (never the last way
to sign in). Linking happens in the browser, through the provider: Settings → Sign-in methods."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import Response

from tessera.errors import Forbidden
from tessera.principal import Principal
from tessera.social.records import identity_resource
from tessera.web.deps import authenticate, client_info, tessera_of
from tessera.web.openapi import AUTHENTICATED, USER_CREDENTIALS, problems
from tessera.web.resources import Resource, Timestamp

router = APIRouter(prefix="/v1/me/identities", tags=["users and tokens"])


class Identity(Resource):
    id: str = Field(examples=["idn_4f9Q2mX7aB1cD3eF5gH7"])
    object: str = Field(examples=["identity"])
    provider: str = Field(examples=["google"], description="The provider's name in the config.")
    provider_name: str = Field(examples=["Google"])
    subject: str = Field(description="The person's id at the provider.")
    email: str | None = Field(description="The email the provider gave at the last sign-in.")
    created_at: Timestamp
    last_used_at: Timestamp | None


class IdentityList(Resource):
    data: list[Identity]
    next_cursor: str | None


def _user(principal: Principal) -> str:
    if principal.user_id is None or principal.kind != "user":
        raise Forbidden("Sign-in methods belong to users; this credential is not one.")
    return principal.user_id


def identity_list(request: Request, user_id: str) -> list[dict[str, Any]]:
    social = tessera_of(request).social
    names = {p.name: p.display_name for p in social.providers}
    return [
        identity_resource(i, names.get(i.provider, i.provider)) for i in social.identities(user_id)
    ]


@router.get(
    "",
    response_model=IdentityList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def list_identities(
    request: Request, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    return {"data": identity_list(request, _user(principal)), "next_cursor": None}


@router.delete(
    "/{identity_id}",
    status_code=204,
    response_class=Response,
    responses=problems(*AUTHENTICATED, 409),
    openapi_extra=USER_CREDENTIALS,
)
def unlink_identity(
    identity_id: str, request: Request, principal: Principal = Depends(authenticate)
) -> Response:
    tessera_of(request).social.unlink(_user(principal), identity_id, client_info(request))
    return Response(status_code=204)
