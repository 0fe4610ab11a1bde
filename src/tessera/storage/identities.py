"""Social sign-in in SQL: identities, pending sign-ins, and the account changes that linking
makes, in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tessera.errors import Conflict
from tessera.social.records import Identity, PendingSignIn
from tessera.storage import models
from tessera.storage.accounts import SqlAccountChanges
from tessera.storage.db import Database
from tessera.storage.sessions import SqlSessionChanges
from tessera.storage.tokens import SqlTokenChanges


class SqlSocialChanges(SqlAccountChanges):
    def identity(self, provider: str, subject: str) -> Identity | None:
        table = models.Identity
        query = select(table).where(table.provider == provider, table.subject == subject)
        row = self.session.scalars(query).first()
        return _identity_of(row) if row else None

    def identities_of(self, user_id: str) -> list[Identity]:
        return _identities_of(self.session, user_id)

    def organization_ids(self, user_id: str) -> list[str]:
        query = (
            select(models.Membership.organization_id)
            .where(models.Membership.user_id == user_id)
            .order_by(models.Membership.created_at, models.Membership.organization_id)
        )
        return list(self.session.scalars(query))

    def add_identity(self, identity: Identity) -> None:
        """Adds the identity; a (provider, subject) already linked, say by a sign-in racing this
        one, is a Conflict that ends the transaction, not a database error."""
        self.session.add(models.Identity(**asdict(identity)))
        try:
            self.session.flush()
        except IntegrityError as error:
            raise Conflict("This sign-in is already linked to an account. Try again.") from error

    def touch_identity(self, identity_id: str, at: datetime, email: str | None) -> None:
        values: dict[str, object] = {"last_used_at": at}
        if email:
            values["email"] = email
        self.session.execute(
            update(models.Identity).where(models.Identity.id == identity_id).values(**values)
        )

    def remove_identity(self, identity_id: str) -> None:
        self.session.execute(delete(models.Identity).where(models.Identity.id == identity_id))

    def remove_password(self, user_id: str) -> None:
        self.session.execute(
            update(models.User).where(models.User.id == user_id).values(password_hash=None)
        )

    def end_sessions_of(self, user_id: str, at: datetime) -> list[str]:
        sessions = SqlSessionChanges(self.session)
        ended = [s.id for s in sessions.open_sessions(user_id)]
        for session_id in ended:
            sessions.end(session_id, at)
        return ended

    def revoke_families_of(self, user_id: str, at: datetime) -> None:
        SqlTokenChanges(self.session).revoke_families_of(user_id, at)

    def add_pending(self, pending: PendingSignIn) -> None:
        table = models.PendingSignIn
        # The table holds only sign-ins in flight: whatever has expired goes on the way.
        self.session.execute(delete(table).where(table.expires_at < pending.created_at))
        self.session.add(table(**asdict(pending)))

    def take_pending(self, state_digest: str, at: datetime) -> PendingSignIn | None:
        table = models.PendingSignIn
        row = self.session.get(table, state_digest)
        if row is None:
            return None
        found = _pending_of(row)
        # One conditional DELETE: of two callbacks racing with one state, one sees the row go.
        taken = self.session.execute(delete(table).where(table.state_digest == state_digest))
        return found if taken.rowcount == 1 else None  # type: ignore[attr-defined]


class SqlSocialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlSocialChanges]:
        with self._db.session() as session:
            yield SqlSocialChanges(session)

    def identities_of(self, user_id: str) -> list[Identity]:
        with self._db.read() as session:
            return _identities_of(session, user_id)


def _identities_of(session: Session, user_id: str) -> list[Identity]:
    table = models.Identity
    query = select(table).where(table.user_id == user_id).order_by(table.created_at, table.id)
    return [_identity_of(row) for row in session.scalars(query)]


def _identity_of(row: models.Identity) -> Identity:
    return Identity(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        subject=row.subject,
        email=row.email,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def _pending_of(row: models.PendingSignIn) -> PendingSignIn:
    return PendingSignIn(
        state_digest=row.state_digest,
        browser_digest=row.browser_digest,
        provider=row.provider,
        nonce=row.nonce,
        code_verifier=row.code_verifier,
        return_to=row.return_to,
        link_user_id=row.link_user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
