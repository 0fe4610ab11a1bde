"""Users, organizations, memberships and workspaces as the rest of Tessera sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tessera.clock import rfc3339


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)
    email_verified: bool = False


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Workspace:
    id: str
    organization_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Membership:
    """A user's place in an organization."""

    organization: Organization
    role: str
    created_at: datetime


@dataclass(frozen=True)
class Member:
    """An organization's member: the person and their role there."""

    user: User
    organization_id: str
    role: str
    created_at: datetime

    def as_resource(self) -> dict[str, Any]:
        return {
            "object": "member",
            "user": user_resource(self.user),
            "role": self.role,
            "created_at": rfc3339(self.created_at),
        }


def normalize_email(email: str) -> str:
    """The form under which an email is unique: case does not make another account."""
    return email.strip().lower()


def user_resource(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "object": "user",
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "created_at": rfc3339(user.created_at),
    }


def organization_resource(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "object": "organization",
        "name": organization.name,
        "created_at": rfc3339(organization.created_at),
    }


def workspace_resource(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "object": "workspace",
        "name": workspace.name,
        "organization_id": workspace.organization_id,
        "created_at": rfc3339(workspace.created_at),
    }


@dataclass(frozen=True)
class Invitation:
    """An invitation to join an organization, bound to one email; its link's secret is kept
    only as ``digest``."""

    id: str
    organization_id: str
    email: str
    role: str
    digest: str = field(repr=False)
    created_at: datetime
    created_by: str
    expires_at: datetime
    emailed: bool = False  # the link went to the email itself, so following it proves the address
    accepted_at: datetime | None = None
    accepted_by: str | None = None
    revoked_at: datetime | None = None

    def status(self, now: datetime) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.expires_at > now else "expired"

    def as_resource(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "invitation",
            "organization_id": self.organization_id,
            "email": self.email,
            "role": self.role,
            "status": self.status(now),
            "emailed": self.emailed,
            "created_at": rfc3339(self.created_at),
            "created_by": self.created_by,
            "expires_at": rfc3339(self.expires_at),
            "accepted_at": rfc3339(self.accepted_at),
            "accepted_by": self.accepted_by,
            "revoked_at": rfc3339(self.revoked_at),
        }


@dataclass(frozen=True)
class EmailLink:
    """A one-time link sent to a person's email: a password reset or an email verification."""

    id: str
    purpose: str  # "password_reset" or "email_verification"
    user_id: str
    email: str  # the address it was sent to: a link proves nothing about any other
    digest: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now
