"""The audit log in SQL, and the base of every store transaction: each one can record events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tessera.audit import AuditEvent
from tessera.pagination import Page
from tessera.storage import models
from tessera.storage.db import Database
from tessera.storage.pagination import newest_first


class SqlChanges:
    """One database transaction; what a store's transaction adds to it commits together."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, event: AuditEvent) -> None:
        self.session.add(row_of(event))


class SqlAuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, *events: AuditEvent) -> None:
        with self._db.session() as session:
            session.add_all([row_of(event) for event in events])

    def page(
        self,
        organization_id: str,
        *,
        limit: int,
        cursor: str | None,
        action: str | None,
        actor_id: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> Page[AuditEvent]:
        table = models.AuditEvent
        query = select(table).where(table.organization_id == organization_id)
        if action:
            family = action.rstrip(".") + "."
            query = query.where(or_(table.action == action, table.action.startswith(family)))
        if actor_id:
            query = query.where(table.actor_id == actor_id)
        if since is not None:
            query = query.where(table.created_at >= since)
        if before is not None:
            query = query.where(table.created_at < before)
        columns = (table.created_at, table.id)
        with self._db.read() as session:
            rows, next_cursor = newest_first(session, query, columns, limit=limit, cursor=cursor)
            return Page(tuple(event_of(row) for row in rows), next_cursor)


def row_of(event: AuditEvent) -> models.AuditEvent:
    return models.AuditEvent(
        id=event.id,
        organization_id=event.organization_id,
        action=event.action,
        actor_kind=event.actor_kind,
        actor_id=event.actor_id,
        target_kind=event.target_kind,
        target_id=event.target_id,
        ip=event.ip,
        user_agent=event.user_agent,
        created_at=event.created_at,
        details=event.details,
    )


def event_of(row: models.AuditEvent) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        action=row.action,
        organization_id=row.organization_id,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        target_kind=row.target_kind,
        target_id=row.target_id,
        ip=row.ip,
        user_agent=row.user_agent,
        created_at=row.created_at,
        details=dict(row.details or {}),
    )
