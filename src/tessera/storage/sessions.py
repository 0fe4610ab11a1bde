"""Browser sessions in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tessera.sessions.store import BrowserSession
from tessera.storage import models
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database


class SqlSessionChanges(SqlChanges):
    def get(self, session_id: str) -> BrowserSession | None:
        row = self.session.get(models.BrowserSession, session_id)
        return _session_of(row) if row else None

    def open_sessions(self, user_id: str) -> list[BrowserSession]:
        return _open_sessions(self.session, user_id)

    def add(self, session: BrowserSession) -> None:
        self.session.add(models.BrowserSession(**asdict(session)))
        self.session.flush()

    def end(self, session_id: str, at: datetime) -> None:
        self.session.execute(
            update(models.BrowserSession)
            .where(models.BrowserSession.id == session_id)
            .values(ended_at=at)
        )


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlSessionChanges]:
        with self._db.session() as session:
            yield SqlSessionChanges(session)

    def by_digest(self, digest: str) -> BrowserSession | None:
        query = select(models.BrowserSession).where(models.BrowserSession.digest == digest)
        with self._db.read() as session:
            row = session.scalars(query).first()
            return _session_of(row) if row else None

    def open_sessions(self, user_id: str) -> list[BrowserSession]:
        with self._db.read() as session:
            return _open_sessions(session, user_id)

    def extend(self, session_id: str, last_seen_at: datetime, idle_expires_at: datetime) -> None:
        with self._db.session() as session:
            session.execute(
                update(models.BrowserSession)
                .where(models.BrowserSession.id == session_id)
                .values(last_seen_at=last_seen_at, idle_expires_at=idle_expires_at)
            )


def _open_sessions(session: Session, user_id: str) -> list[BrowserSession]:
    table = models.BrowserSession
    query = (
        select(table)
        .where(table.user_id == user_id, table.ended_at.is_(None))
        .order_by(table.created_at.desc())
    )
    return [_session_of(row) for row in session.scalars(query)]


def _session_of(row: models.BrowserSession) -> BrowserSession:
    return BrowserSession(
        id=row.id,
        digest=row.digest,
        user_id=row.user_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        idle_expires_at=row.idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
        ended_at=row.ended_at,
        ip=row.ip,
        user_agent=row.user_agent,
    )
