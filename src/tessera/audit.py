"""The audit log: append-only events written in the transaction of the change they record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tessera.clock import rfc3339
from tessera.ids import new_id
from tessera.pagination import newest_first
from tessera.principal import ClientInfo, Principal
from tessera.storage.models import AuditEvent

ACTIONS = (
    "api_key.created",
    "api_key.updated",
    "api_key.rolled",
    "api_key.revoked",
    "user.signed_up",
    "user.logged_in",
    "user.login_failed",
    "session.ended",
    "refresh_token.reuse_detected",
    "member.role_changed",
    "member.added",
    "member.removed",
    "workspace.created",
    "workspace.updated",
    "workspace.deleted",
    "service_token.created",
    "signing_key.rotated",
)


def actor_of(principal: Principal | None) -> tuple[str, str | None]:
    if principal is None:
        return "system", None
    kind = {"api_key": "api_key", "user": "user", "service": "service"}[principal.kind]
    return kind, principal.id


def record(
    session: Session,
    action: str,
    *,
    now: datetime,
    organization_id: str | None,
    actor: tuple[str, str | None],
    target: tuple[str, str] | None = None,
    client: ClientInfo | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    client = client or ClientInfo()
    event = AuditEvent(
        id=new_id("evt"),
        organization_id=organization_id,
        action=action,
        actor_kind=actor[0],
        actor_id=actor[1],
        target_kind=target[0] if target else None,
        target_id=target[1] if target else None,
        ip=client.ip,
        user_agent=(client.user_agent or "")[:400] or None,
        created_at=now,
        details=details or {},
    )
    session.add(event)
    return event


def page(
    session: Session, organization_id: str, *, limit: int, cursor: str | None, action: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Newest first; ``action`` picks one action (``api_key.revoked``) or a family (``api_key``)."""
    query = select(AuditEvent).where(AuditEvent.organization_id == organization_id)
    if action:
        query = query.where(
            or_(AuditEvent.action == action, AuditEvent.action.startswith(action.rstrip(".") + "."))
        )
    columns = (AuditEvent.created_at, AuditEvent.id)
    return newest_first(session, query, columns, limit=limit, cursor=cursor)


def to_resource(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "audit_event",
        "action": event.action,
        "actor": {"kind": event.actor_kind, "id": event.actor_id},
        "target": {"kind": event.target_kind, "id": event.target_id} if event.target_id else None,
        "organization_id": event.organization_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "created_at": rfc3339(event.created_at),
        "details": event.details,
    }
