"""Invitations and email links in SQL, in the same transactions as the accounts they create
or change (accepting an invitation adds a user and a membership at once)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, update

from tessera.accounts.records import EmailLink, Invitation, normalize_email
from tessera.storage import models
from tessera.storage.accounts import SqlAccountChanges
from tessera.storage.db import Database


class SqlLinkChanges(SqlAccountChanges):
    def add_invitation(self, invitation: Invitation) -> None:
        self.session.add(
            models.Invitation(
                id=invitation.id,
                organization_id=invitation.organization_id,
                email=invitation.email,
                email_key=normalize_email(invitation.email),
                role=invitation.role,
                digest=invitation.digest,
                created_at=invitation.created_at,
                created_by=invitation.created_by,
                expires_at=invitation.expires_at,
                emailed=invitation.emailed,
            )
        )
        self.session.flush()

    def invitation(self, invitation_id: str) -> Invitation | None:
        row = self.session.get(models.Invitation, invitation_id)
        return invitation_of(row) if row else None

    def invitation_by_digest(self, digest: str) -> Invitation | None:
        query = select(models.Invitation).where(models.Invitation.digest == digest)
        row = self.session.scalars(query).first()
        return invitation_of(row) if row else None

    def pending_invitations_for(self, organization_id: str, email: str) -> list[Invitation]:
        table = models.Invitation
        query = select(table).where(
            table.organization_id == organization_id,
            table.email_key == normalize_email(email),
            table.accepted_at.is_(None),
            table.revoked_at.is_(None),
        )
        return [invitation_of(row) for row in self.session.scalars(query)]

    def accept_invitation(self, invitation_id: str, user_id: str, at: datetime) -> bool:
        table = models.Invitation
        done = self.session.execute(
            update(table)
            .where(table.id == invitation_id, table.accepted_at.is_(None))
            .where(table.revoked_at.is_(None))
            .values(accepted_at=at, accepted_by=user_id)
        )
        return bool(getattr(done, "rowcount", 0))

    def revoke_invitation(self, invitation_id: str, at: datetime) -> bool:
        table = models.Invitation
        done = self.session.execute(
            update(table)
            .where(table.id == invitation_id, table.accepted_at.is_(None))
            .where(table.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(getattr(done, "rowcount", 0))

    def add_email_link(self, link: EmailLink) -> None:
        self.session.add(
            models.EmailLink(
                id=link.id,
                purpose=link.purpose,
                user_id=link.user_id,
                email=link.email,
                digest=link.digest,
                created_at=link.created_at,
                expires_at=link.expires_at,
            )
        )
        self.session.flush()

    def email_link_by_digest(self, digest: str) -> EmailLink | None:
        query = select(models.EmailLink).where(models.EmailLink.digest == digest)
        row = self.session.scalars(query).first()
        return email_link_of(row) if row else None

    def email_links_since(self, user_id: str, purpose: str, since: datetime) -> int:
        table = models.EmailLink
        query = (
            select(func.count())
            .select_from(table)
            .where(table.user_id == user_id, table.purpose == purpose, table.created_at >= since)
        )
        return int(self.session.scalar(query) or 0)

    def spend_email_link(self, link_id: str, at: datetime) -> bool:
        table = models.EmailLink
        done = self.session.execute(
            update(table).where(table.id == link_id, table.used_at.is_(None)).values(used_at=at)
        )
        return bool(getattr(done, "rowcount", 0))

    def spend_email_links_of(self, user_id: str, purpose: str, at: datetime) -> None:
        table = models.EmailLink
        self.session.execute(
            update(table)
            .where(table.user_id == user_id, table.purpose == purpose, table.used_at.is_(None))
            .values(used_at=at)
        )


class SqlLinkStore:
    """Both the invitation store and the email-link store: one adapter, one transaction kind."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlLinkChanges]:
        with self._db.session() as session:
            yield SqlLinkChanges(session)

    def invitations(self, organization_id: str) -> list[Invitation]:
        table = models.Invitation
        query = (
            select(table)
            .where(table.organization_id == organization_id)
            .where(table.accepted_at.is_(None), table.revoked_at.is_(None))
            .order_by(table.created_at.desc(), table.id.desc())
        )
        with self._db.read() as session:
            return [invitation_of(row) for row in session.scalars(query)]


def invitation_of(row: models.Invitation) -> Invitation:
    return Invitation(
        id=row.id,
        organization_id=row.organization_id,
        email=row.email,
        role=row.role,
        digest=row.digest,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        emailed=row.emailed,
        accepted_at=row.accepted_at,
        accepted_by=row.accepted_by,
        revoked_at=row.revoked_at,
    )


def email_link_of(row: models.EmailLink) -> EmailLink:
    return EmailLink(
        id=row.id,
        purpose=row.purpose,
        user_id=row.user_id,
        email=row.email,
        digest=row.digest,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )
