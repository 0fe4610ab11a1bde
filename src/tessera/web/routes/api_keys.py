"""API keys of the caller's organization (SPEC section 2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from tessera.keys.records import key_resource
from tessera.keys.rules import KeySpec
from tessera.keys.service import MAX_GRACE_SECONDS, NewKey
from tessera.pagination import MAX_LIMIT
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import client_info, requires, tessera_of
from tessera.web.inputs import ApiBody, Name
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, JSON_BODY, problems

router = APIRouter(prefix="/v1/api-keys", tags=["API keys"])


class RateLimitBody(ApiBody):
    requests: int = Field(ge=1, le=10_000_000)
    per_seconds: int = Field(ge=1, le=86_400)


class CreateKeyBody(ApiBody):
    name: Name
    scopes: list[str] | None = Field(default=None, max_length=500)
    workspace_ids: list[str] | None = Field(default=None, max_length=500)
    environment: str = "live"
    expires_at: datetime | None = None
    allowed_ips: list[str] | None = Field(default=None, max_length=1000)
    rate_limit: RateLimitBody | None = None

    def spec(self) -> KeySpec:
        limit = (self.rate_limit.requests, self.rate_limit.per_seconds) if self.rate_limit else None
        return KeySpec(
            name=self.name,
            scopes=self.scopes,
            workspace_ids=self.workspace_ids,
            environment=self.environment,
            expires_at=self.expires_at,
            allowed_ips=self.allowed_ips,
            rate_limit=limit,
        )


class UpdateKeyBody(ApiBody):
    """Only ``name`` may change. The fields that never change are taken in, so that the
    service can answer ``immutable_field`` for them rather than call them unknown."""

    name: Name | None = None
    scopes: Any = None
    workspace_ids: Any = None
    environment: Any = None
    allowed_ips: Any = None
    rate_limit: Any = None


class RollBody(ApiBody):
    expires_old_in_seconds: int = Field(default=0, ge=0, le=MAX_GRACE_SECONDS)


def _created(request: Request, new: NewKey) -> dict[str, Any]:
    return {**key_resource(new.key, tessera_of(request).clock.now()), "key": new.raw}


@router.post(
    "",
    status_code=201,
    response_model=resources.NewApiKey,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def create_key(
    body: CreateKeyBody,
    request: Request,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    new = tessera_of(request).api_keys.create(principal, body.spec(), client_info(request))
    return _created(request, new)


@router.get(
    "",
    response_model=resources.ApiKeyList,
    responses=problems(*AUTHENTICATED, 400, 422),
    openapi_extra=CREDENTIALS,
)
def list_keys(
    request: Request,
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
    include_revoked: bool = False,
    principal: Principal = Depends(requires("api_keys:read")),
) -> dict[str, Any]:
    tessera = tessera_of(request)
    page = tessera.api_keys.page(
        principal.organization(),
        limit=limit,
        cursor=cursor,
        include_revoked=include_revoked,
    )
    now = tessera.clock.now()
    return {"data": [key_resource(r, now) for r in page.items], "next_cursor": page.next_cursor}


@router.get(
    "/{key_id}",
    response_model=resources.ApiKey,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def get_key(
    key_id: str, request: Request, principal: Principal = Depends(requires("api_keys:read"))
) -> dict[str, Any]:
    tessera = tessera_of(request)
    row = tessera.api_keys.get(principal.organization(), key_id)
    return key_resource(row, tessera.clock.now())


@router.patch(
    "/{key_id}",
    response_model=resources.ApiKey,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def update_key(
    key_id: str,
    body: UpdateKeyBody,
    request: Request,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    tessera = tessera_of(request)
    changes = body.model_dump(exclude_unset=True)
    row = tessera.api_keys.update(principal, key_id, changes, client_info(request))
    return key_resource(row, tessera.clock.now())


@router.delete(
    "/{key_id}",
    response_model=resources.ApiKey,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def revoke_key(
    key_id: str, request: Request, principal: Principal = Depends(requires("api_keys:write"))
) -> dict[str, Any]:
    tessera = tessera_of(request)
    row = tessera.api_keys.revoke(principal, key_id, client_info(request))
    return key_resource(row, tessera.clock.now())


@router.post(
    "/{key_id}/roll",
    status_code=201,
    response_model=resources.NewApiKey,
    responses=problems(*AUTHENTICATED, *JSON_BODY, 409),
    openapi_extra=CREDENTIALS,
)
def roll_key(
    key_id: str,
    request: Request,
    body: RollBody | None = None,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    grace = body.expires_old_in_seconds if body else 0
    new = tessera_of(request).api_keys.roll(principal, key_id, grace, client_info(request))
    return _created(request, new)


@router.get(
    "/{key_id}/usage",
    response_model=resources.KeyUsage,
    responses=problems(*AUTHENTICATED, 422),
    openapi_extra=CREDENTIALS,
)
def key_usage(
    key_id: str,
    request: Request,
    days: int = Query(30, ge=1, le=366),
    principal: Principal = Depends(requires("api_keys:read")),
) -> dict[str, Any]:
    data = tessera_of(request).api_keys.usage(principal.organization(), key_id, days)
    return {"data": data}
