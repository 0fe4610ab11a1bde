"""OAuth clients of the caller's organization (SPEC section 4)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from tessera.oauth.clients import ClientSpec, NewClient
from tessera.oauth.records import client_resource
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import client_info, requires, tessera_of
from tessera.web.inputs import ApiBody, Name
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, JSON_BODY, problems

router = APIRouter(prefix="/v1/oauth-clients", tags=["OAuth clients"])
Uris = list[str]


class CreateClientBody(ApiBody):
    name: Name
    redirect_uris: Uris = Field(min_length=1, max_length=20)
    scopes: list[str] = Field(default_factory=list, max_length=500)
    type: Literal["confidential", "public"] = "confidential"


class UpdateClientBody(ApiBody):
    name: Name | None = None
    redirect_uris: Uris | None = Field(default=None, min_length=1, max_length=20)
    scopes: list[str] | None = Field(default=None, max_length=500)


class RotateBody(ApiBody):
    """Nothing to send: the new secret replaces the old one at once."""


def _created(new: NewClient) -> dict[str, Any]:
    answer = client_resource(new.client)
    if new.secret is not None:
        answer["client_secret"] = new.secret
    return answer


@router.post(
    "",
    status_code=201,
    response_model=resources.NewOAuthClient,
    response_model_exclude_none=False,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def create_client(
    body: CreateClientBody,
    request: Request,
    principal: Principal = Depends(requires("oauth_clients:write")),
) -> dict[str, Any]:
    spec = ClientSpec(body.name, body.redirect_uris, body.scopes, body.type)
    new = tessera_of(request).oauth_clients.create(principal, spec, client_info(request))
    return _created(new)


@router.get(
    "",
    response_model=resources.OAuthClientList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def list_clients(
    request: Request, principal: Principal = Depends(requires("oauth_clients:read"))
) -> dict[str, Any]:
    rows = tessera_of(request).oauth_clients.of_organization(principal.organization())
    return {"data": [client_resource(r) for r in rows], "next_cursor": None}


@router.get(
    "/{client_id}",
    response_model=resources.OAuthClient,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def get_client(
    client_id: str,
    request: Request,
    principal: Principal = Depends(requires("oauth_clients:read")),
) -> dict[str, Any]:
    return client_resource(
        tessera_of(request).oauth_clients.get(principal.organization(), client_id)
    )


@router.patch(
    "/{client_id}",
    response_model=resources.OAuthClient,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def update_client(
    client_id: str,
    body: UpdateClientBody,
    request: Request,
    principal: Principal = Depends(requires("oauth_clients:write")),
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    row = tessera_of(request).oauth_clients.update(
        principal, client_id, changes, client_info(request)
    )
    return client_resource(row)


@router.delete(
    "/{client_id}",
    response_model=resources.OAuthClient,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def delete_client(
    client_id: str,
    request: Request,
    principal: Principal = Depends(requires("oauth_clients:write")),
) -> dict[str, Any]:
    row = tessera_of(request).oauth_clients.delete(principal, client_id, client_info(request))
    return client_resource(row)


@router.post(
    "/{client_id}/rotate-secret",
    status_code=201,
    response_model=resources.NewOAuthClient,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def rotate_secret(
    client_id: str,
    request: Request,
    body: RotateBody | None = None,
    principal: Principal = Depends(requires("oauth_clients:write")),
) -> dict[str, Any]:
    new = tessera_of(request).oauth_clients.rotate_secret(
        principal, client_id, client_info(request)
    )
    return _created(new)
