"""The audit log of the caller's organization (SPEC section 7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from tessera import audit
from tessera.pagination import MAX_LIMIT
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import requires, tessera_of
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, problems

router = APIRouter(prefix="/v1/audit-events", tags=["audit log"])


@router.get(
    "",
    response_model=resources.AuditEventList,
    responses=problems(*AUTHENTICATED, 400, 422),
    openapi_extra=CREDENTIALS,
)
def list_events(
    request: Request,
    limit: int = Query(20, ge=1, le=MAX_LIMIT),
    cursor: str | None = None,
    action: str | None = None,
    principal: Principal = Depends(requires("audit:read")),
) -> dict[str, Any]:
    page = tessera_of(request).audit_log.page(
        principal.organization(), limit=limit, cursor=cursor, action=action
    )
    return {"data": [audit.to_resource(e) for e in page.items], "next_cursor": page.next_cursor}
