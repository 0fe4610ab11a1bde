"""Server-side browser sessions (SPEC section 3).

The cookie carries a random token; the database keeps only its digest. A session ends after
``max_age_days`` without use (the idle limit, pushed back at most once a minute) or
``absolute_max_days`` after sign-in, whichever comes first. Every sign-in makes a new session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from tessera import audit
from tessera.accounts import service as accounts
from tessera.clock import Clock, as_utc, rfc3339
from tessera.config import SessionConfig
from tessera.errors import NotFound
from tessera.ids import digest, new_id
from tessera.principal import ClientInfo
from tessera.storage.db import Database
from tessera.storage.models import BrowserSession, RefreshTokenFamily

REFRESH_EVERY_SECONDS = 60


@dataclass(frozen=True)
class ActiveSession:
    id: str
    user_id: str
    refreshed: bool  # the idle limit moved: the cookie should be sent again


class BrowserSessions:
    def __init__(self, config: SessionConfig, db: Database, clock: Clock) -> None:
        self._config = config
        self._db = db
        self._clock = clock

    @property
    def max_age_seconds(self) -> int:
        return self._config.max_age_days * 86400

    def start(self, user_id: str, client: ClientInfo) -> tuple[BrowserSession, str]:
        """A new session (a new id and token at every sign-in); returns it and the cookie value."""
        now = self._clock.now()
        raw = secrets.token_urlsafe(32)
        row = BrowserSession(
            id=new_id("ses"),
            digest=digest(raw),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            idle_expires_at=now + timedelta(days=self._config.max_age_days),
            absolute_expires_at=now + timedelta(days=self._config.absolute_max_days),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:400] or None,
        )
        with self._db.session() as session:
            session.add(row)
            # Like the end of a session: every organization of the person sees it begin.
            audit.record_in_organizations(
                session,
                "user.logged_in",
                accounts.organization_ids(session, user_id),
                now=now,
                actor=("user", user_id),
                target=("session", row.id),
                client=client,
                details={"via": "session"},
            )
        return row, raw

    def authenticate(self, raw: str) -> ActiveSession | None:
        """The live session behind a cookie value, its idle limit pushed back if due."""
        now = self._clock.now()
        with self._db.read() as session:
            row = session.scalars(
                select(BrowserSession).where(BrowserSession.digest == digest(raw))
            ).first()
        if row is None or not _alive(row, now):
            return None
        if (now - as_utc(row.last_seen_at)).total_seconds() < REFRESH_EVERY_SECONDS:
            return ActiveSession(row.id, row.user_id, refreshed=False)
        with self._db.session() as session:
            session.execute(
                update(BrowserSession)
                .where(BrowserSession.id == row.id)
                .values(
                    last_seen_at=now,
                    idle_expires_at=now + timedelta(days=self._config.max_age_days),
                )
            )
        return ActiveSession(row.id, row.user_id, refreshed=True)

    def list(self, user_id: str) -> list[BrowserSession]:
        now = self._clock.now()
        with self._db.read() as session:
            rows = session.scalars(
                select(BrowserSession)
                .where(BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None))
                .order_by(BrowserSession.created_at.desc())
            )
            return [row for row in rows if _alive(row, now)]

    def end(self, user_id: str, session_id: str, client: ClientInfo) -> None:
        now = self._clock.now()
        with self._db.session() as session:
            row = session.get(BrowserSession, session_id)
            if row is None or row.user_id != user_id or row.ended_at is not None:
                raise NotFound(f"No session {session_id}.")
            row.ended_at = now
            organizations = accounts.organization_ids(session, user_id)
            _audit_end(session, user_id, session_id, organizations, now, client)

    def end_all(self, user_id: str, client: ClientInfo) -> int:
        """Sign out everywhere: every session and every refresh-token family of the user."""
        now = self._clock.now()
        with self._db.session() as session:
            rows = list(
                session.scalars(
                    select(BrowserSession).where(
                        BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None)
                    )
                )
            )
            organizations = accounts.organization_ids(session, user_id)
            for row in rows:
                row.ended_at = now
                _audit_end(session, user_id, row.id, organizations, now, client)
            session.execute(
                update(RefreshTokenFamily)
                .where(
                    RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None)
                )
                .values(revoked_at=now)
            )
        return len(rows)


def _alive(row: BrowserSession, now: datetime) -> bool:
    return (
        row.ended_at is None
        and as_utc(row.idle_expires_at) > now
        and as_utc(row.absolute_expires_at) > now
    )


def _audit_end(
    session: Any,
    user_id: str,
    session_id: str,
    organizations: list[str],
    now: datetime,
    client: ClientInfo,
) -> None:
    """In each organization of the person: the session could act in every one of them."""
    audit.record_in_organizations(
        session,
        "session.ended",
        organizations,
        now=now,
        actor=("user", user_id),
        target=("session", session_id),
        client=client,
    )


def session_resource(row: BrowserSession, current_id: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "session",
        "created_at": rfc3339(row.created_at),
        "last_seen_at": rfc3339(row.last_seen_at),
        "expires_at": rfc3339(min(as_utc(row.idle_expires_at), as_utc(row.absolute_expires_at))),
        "ip": row.ip,
        "user_agent": row.user_agent,
        "current": row.id == current_id,
    }
