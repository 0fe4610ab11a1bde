"""API keys of the caller's organization (SPEC section 2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tessera.keys.records import key_resource
from tessera.keys.rules import KeySpec
from tessera.keys.service import NewKey
from tessera.principal import Principal
from tessera.web.deps import client_info, requires, tessera_of

router = APIRouter(prefix="/v1/api-keys", tags=["API keys"])


class RateLimitBody(BaseModel):
    requests: int
    per_seconds: int


class CreateKeyBody(BaseModel):
    name: str = Field(max_length=1000)
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


class RollBody(BaseModel):
    expires_old_in_seconds: int = 0


def _created(request: Request, new: NewKey) -> dict[str, Any]:
    return {**key_resource(new.key, tessera_of(request).clock.now()), "key": new.raw}


@router.post("", status_code=201)
def create_key(
    body: CreateKeyBody,
    request: Request,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    new = tessera_of(request).api_keys.create(principal, body.spec(), client_info(request))
    return _created(request, new)


@router.get("")
def list_keys(
    request: Request,
    limit: int = 20,
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


@router.get("/{key_id}")
def get_key(
    key_id: str, request: Request, principal: Principal = Depends(requires("api_keys:read"))
) -> dict[str, Any]:
    tessera = tessera_of(request)
    row = tessera.api_keys.get(principal.organization(), key_id)
    return key_resource(row, tessera.clock.now())


@router.patch("/{key_id}")
def update_key(
    key_id: str,
    body: dict[str, Any],
    request: Request,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    tessera = tessera_of(request)
    row = tessera.api_keys.update(principal, key_id, body, client_info(request))
    return key_resource(row, tessera.clock.now())


@router.delete("/{key_id}")
def revoke_key(
    key_id: str, request: Request, principal: Principal = Depends(requires("api_keys:write"))
) -> dict[str, Any]:
    tessera = tessera_of(request)
    row = tessera.api_keys.revoke(principal, key_id, client_info(request))
    return key_resource(row, tessera.clock.now())


@router.post("/{key_id}/roll", status_code=201)
def roll_key(
    key_id: str,
    request: Request,
    body: RollBody | None = None,
    principal: Principal = Depends(requires("api_keys:write")),
) -> dict[str, Any]:
    grace = body.expires_old_in_seconds if body else 0
    new = tessera_of(request).api_keys.roll(principal, key_id, grace, client_info(request))
    return _created(request, new)


@router.get("/{key_id}/usage")
def key_usage(
    key_id: str,
    request: Request,
    days: int = 30,
    principal: Principal = Depends(requires("api_keys:read")),
) -> dict[str, Any]:
    data = tessera_of(request).api_keys.usage(principal.organization(), key_id, days)
    return {"data": data}
