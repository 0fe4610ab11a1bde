"""Users, organizations, memberships and workspaces in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from tessera.accounts.records import (
    Member,
    Membership,
    Organization,
    User,
    Workspace,
    normalize_email,
)
from tessera.storage import models
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database
from tessera.text import is_clean

# Read on every request with a user token or a session (what may they do here?): a Core
# statement on a connection of its own, as a key-cache miss's look-up (``storage/keys.py``).
_ROLE = select(models.Membership.role).where(
    models.Membership.user_id == bindparam("user_id"),
    models.Membership.organization_id == bindparam("organization_id"),
)


class _Reads:
    session: Session

    def user(self, user_id: str) -> User | None:
        row = self.session.get(models.User, user_id)
        return user_of(row) if row else None

    def user_by_email(self, email: str) -> User | None:
        if not is_clean(email):  # no account has such an email, and PostgreSQL refuses a NUL
            return None
        query = select(models.User).where(models.User.email_key == normalize_email(email))
        row = self.session.scalars(query).first()
        return user_of(row) if row else None

    def workspace(self, workspace_id: str) -> Workspace | None:
        row = self.session.get(models.Workspace, workspace_id)
        return workspace_of(row) if row else None

    def member(self, organization_id: str, user_id: str) -> Member | None:
        membership = self.session.get(models.Membership, (user_id, organization_id))
        user = self.session.get(models.User, user_id) if membership else None
        if membership is None or user is None:
            return None
        return _member_of(user, membership)


class SqlAccountChanges(_Reads, SqlChanges):
    def add_user(self, user: User) -> None:
        self.session.add(
            models.User(
                id=user.id,
                email=user.email,
                email_key=normalize_email(user.email),
                name=user.name,
                password_hash=user.password_hash,
                email_verified=user.email_verified,
                created_at=user.created_at,
            )
        )
        self.session.flush()

    def set_email_verified(self, user_id: str, verified: bool) -> None:
        self.session.execute(
            update(models.User).where(models.User.id == user_id).values(email_verified=verified)
        )

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.session.execute(
            update(models.User).where(models.User.id == user_id).values(password_hash=password_hash)
        )

    def organizations_named(self, name: str) -> list[Organization]:
        query = (
            select(models.Organization)
            .where(models.Organization.name == name)
            .order_by(models.Organization.created_at, models.Organization.id)
        )
        return [organization_of(row) for row in self.session.scalars(query)]

    def add_organization(self, organization: Organization) -> None:
        self.session.add(
            models.Organization(
                id=organization.id, name=organization.name, created_at=organization.created_at
            )
        )
        self.session.flush()

    def add_workspace(self, workspace: Workspace) -> None:
        self.session.add(
            models.Workspace(
                id=workspace.id,
                organization_id=workspace.organization_id,
                name=workspace.name,
                created_at=workspace.created_at,
            )
        )
        self.session.flush()

    def rename_workspace(self, workspace_id: str, name: str) -> None:
        self.session.execute(
            update(models.Workspace).where(models.Workspace.id == workspace_id).values(name=name)
        )

    def delete_workspace(self, workspace_id: str) -> None:
        self.session.execute(delete(models.Workspace).where(models.Workspace.id == workspace_id))

    def add_member(self, organization_id: str, user_id: str, role: str, at: datetime) -> None:
        self.session.add(
            models.Membership(
                user_id=user_id, organization_id=organization_id, role=role, created_at=at
            )
        )
        self.session.flush()

    def set_role(self, organization_id: str, user_id: str, role: str) -> None:
        self.session.execute(
            update(models.Membership)
            .where(
                models.Membership.organization_id == organization_id,
                models.Membership.user_id == user_id,
            )
            .values(role=role)
        )

    def remove_member(self, organization_id: str, user_id: str) -> None:
        self.session.execute(
            delete(models.Membership).where(
                models.Membership.organization_id == organization_id,
                models.Membership.user_id == user_id,
            )
        )

    def owner_count(self, organization_id: str) -> int:
        query = (
            select(func.count())
            .select_from(models.Membership)
            .where(
                models.Membership.organization_id == organization_id,
                models.Membership.role == "owner",
            )
        )
        return int(self.session.scalar(query) or 0)


class SqlAccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlAccountChanges]:
        with self._db.session() as session:
            yield SqlAccountChanges(session)

    def user(self, user_id: str) -> User | None:
        with self._db.read() as session:
            return SqlAccountChanges(session).user(user_id)

    def user_by_email(self, email: str) -> User | None:
        with self._db.read() as session:
            return SqlAccountChanges(session).user_by_email(email)

    def workspace(self, workspace_id: str) -> Workspace | None:
        with self._db.read() as session:
            return SqlAccountChanges(session).workspace(workspace_id)

    def member(self, organization_id: str, user_id: str) -> Member | None:
        with self._db.read() as session:
            return SqlAccountChanges(session).member(organization_id, user_id)

    def organization(self, organization_id: str) -> Organization | None:
        with self._db.read() as session:
            row = session.get(models.Organization, organization_id)
            return organization_of(row) if row else None

    def memberships(self, user_id: str) -> list[Membership]:
        query = (
            select(models.Membership, models.Organization)
            .join(models.Organization, models.Organization.id == models.Membership.organization_id)
            .where(models.Membership.user_id == user_id)
            .order_by(models.Membership.created_at, models.Organization.id)
        )
        with self._db.read() as session:
            return [
                Membership(organization_of(org), membership.role, membership.created_at)
                for membership, org in session.execute(query)
            ]

    def organization_ids(self, user_id: str) -> list[str]:
        query = (
            select(models.Membership.organization_id)
            .where(models.Membership.user_id == user_id)
            .order_by(models.Membership.created_at, models.Membership.organization_id)
        )
        with self._db.read() as session:
            return list(session.scalars(query))

    def person_by_email(self, email: str) -> tuple[str | None, list[str]]:
        if not is_clean(email):
            return None, []
        query = (
            select(models.User.id, models.Membership.organization_id)
            .outerjoin(models.Membership, models.Membership.user_id == models.User.id)
            .where(models.User.email_key == normalize_email(email))
            .order_by(models.Membership.created_at, models.Membership.organization_id)
        )
        with self._db.read() as session:
            rows = session.execute(query).all()
        user_id = rows[0][0] if rows else None
        return user_id, [organization_id for _, organization_id in rows if organization_id]

    def role(self, user_id: str, organization_id: str) -> str | None:
        row = self._db.first(_ROLE, {"user_id": user_id, "organization_id": organization_id})
        return row.role if row is not None else None

    def members(self, organization_id: str) -> list[Member]:
        query = (
            select(models.User, models.Membership)
            .join(models.Membership, models.Membership.user_id == models.User.id)
            .where(models.Membership.organization_id == organization_id)
            .order_by(models.Membership.created_at, models.User.email_key)
        )
        with self._db.read() as session:
            return [_member_of(u, m) for u, m in session.execute(query)]

    def workspaces(self, organization_id: str) -> list[Workspace]:
        query = (
            select(models.Workspace)
            .where(models.Workspace.organization_id == organization_id)
            .order_by(models.Workspace.created_at, models.Workspace.id)
        )
        with self._db.read() as session:
            return [workspace_of(row) for row in session.scalars(query)]


def existing_workspaces(session: Session, organization_id: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` are workspaces of the organization (for the key store's transactions)."""
    if not ids:
        return set()
    query = select(models.Workspace.id).where(
        models.Workspace.organization_id == organization_id, models.Workspace.id.in_(ids)
    )
    return set(session.scalars(query))


def user_of(row: models.User) -> User:
    return User(row.id, row.email, row.name, row.created_at, row.password_hash, row.email_verified)


def organization_of(row: models.Organization) -> Organization:
    return Organization(row.id, row.name, row.created_at)


def workspace_of(row: models.Workspace) -> Workspace:
    return Workspace(row.id, row.organization_id, row.name, row.created_at)


def _member_of(user: models.User, membership: models.Membership) -> Member:
    return Member(user_of(user), membership.organization_id, membership.role, membership.created_at)
