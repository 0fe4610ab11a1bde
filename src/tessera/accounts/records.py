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
