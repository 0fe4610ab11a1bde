"""The OAuth apps a person has authorized: list and revoke (SPEC section 4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tessera.clock import rfc3339
from tessera.deployment import Tessera
from tessera.errors import Forbidden
from tessera.oauth.records import OAuthGrant
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import authenticate, client_info, tessera_of
from tessera.web.openapi import AUTHENTICATED, USER_CREDENTIALS, problems

router = APIRouter(prefix="/v1/me/grants", tags=["OAuth grants"])


def _person(principal: Principal) -> str:
    # An OAuth token may not list or end the grants that let apps in, its own included.
    if principal.kind != "user" or principal.user_id is None or principal.client_id:
        raise Forbidden("Grants belong to people signed in themselves; this credential is not.")
    return principal.user_id


def grant_resource(tessera: Tessera, grant: OAuthGrant) -> dict[str, Any]:
    client = tessera.oauth_clients.named(grant.client_id)
    organization = tessera.accounts.organization(grant.organization_id)
    return {
        "id": grant.id,
        "object": "oauth_grant",
        "client": {"id": grant.client_id, "name": client.name if client else None},
        "organization": {
            "id": grant.organization_id,
            "name": organization.name if organization else None,
        },
        "scopes": sorted(grant.scopes),
        "created_at": rfc3339(grant.created_at),
        "last_used_at": rfc3339(grant.last_used_at),
    }


@router.get(
    "",
    response_model=resources.OAuthGrantList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def list_grants(request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    tessera = tessera_of(request)
    rows = tessera.oauth_grants.of_person(_person(principal))
    return {"data": [grant_resource(tessera, r) for r in rows], "next_cursor": None}


@router.delete(
    "/{grant_id}",
    response_model=resources.OAuthGrant,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def revoke_grant(
    grant_id: str, request: Request, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    tessera = tessera_of(request)
    grant = tessera.oauth_grants.revoke(_person(principal), grant_id, client_info(request))
    return grant_resource(tessera, grant)
