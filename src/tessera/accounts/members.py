"""Members of an organization and their roles.

Only owners and admins change roles; only an owner grants or takes away ``owner``; the last
owner can be neither demoted nor removed, so an organization is never left without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tessera import audit
from tessera.accounts.service import find_user_by_email, user_resource
from tessera.clock import rfc3339
from tessera.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ADMIN_ROLES, ScopeCatalog
from tessera.storage.models import Membership, User
from tessera.tokens import refresh


@dataclass(frozen=True)
class Member:
    user: User
    membership: Membership

    def as_resource(self) -> dict[str, Any]:
        return {
            "object": "member",
            "user": user_resource(self.user),
            "role": self.membership.role,
            "created_at": rfc3339(self.membership.created_at),
        }


def list_members(session: Session, organization_id: str) -> list[Member]:
    rows = session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization_id)
        .order_by(Membership.created_at, User.email_key)
    )
    return [Member(user, membership) for user, membership in rows]


def get_member(session: Session, organization_id: str, user_id: str) -> Member:
    membership = session.get(Membership, (user_id, organization_id))
    user = session.get(User, user_id) if membership else None
    if membership is None or user is None:
        raise NotFound(f"No member {user_id} in this organization.")
    return Member(user, membership)


def add_member(
    session: Session,
    catalog: ScopeCatalog,
    actor: Principal,
    *,
    email: str,
    role: str,
    now: datetime,
    client: ClientInfo,
) -> Member:
    """Add an existing user to the actor's organization."""
    organization_id = actor.organization()
    _check_may_assign(catalog, actor, role)
    user = find_user_by_email(session, email)
    if user is None:
        raise NotFound("No user with this email; they must sign up first.")
    if session.get(Membership, (user.id, organization_id)) is not None:
        raise Conflict("This user is already a member.")
    membership = Membership(
        user_id=user.id, organization_id=organization_id, role=role, created_at=now
    )
    session.add(membership)
    _record(session, "member.added", actor, user.id, now, client, {"role": role})
    return Member(user, membership)


def change_role(
    session: Session,
    catalog: ScopeCatalog,
    actor: Principal,
    *,
    user_id: str,
    role: str,
    now: datetime,
    client: ClientInfo,
) -> Member:
    member = get_member(session, actor.organization(), user_id)
    previous = member.membership.role
    _check_may_assign(catalog, actor, role)
    _check_may_touch(actor, member)
    if previous == "owner" and role != "owner":
        _keep_an_owner(session, member.membership.organization_id)
    member.membership.role = role
    _record(
        session, "member.role_changed", actor, user_id, now, client, {"from": previous, "to": role}
    )
    return member


def remove_member(
    session: Session, actor: Principal, *, user_id: str, now: datetime, client: ClientInfo
) -> Member:
    member = get_member(session, actor.organization(), user_id)
    if actor.kind != "user" or actor.user_id != user_id:  # only people leave by themselves
        _check_may_touch(actor, member)
    if member.membership.role == "owner":
        _keep_an_owner(session, member.membership.organization_id)
    session.delete(member.membership)
    # Their tokens for this organization are refused from now on, not at their expiry.
    refresh.end_families_in(session, user_id, member.membership.organization_id, now)
    _record(
        session, "member.removed", actor, user_id, now, client, {"role": member.membership.role}
    )
    return member


def _check_may_assign(catalog: ScopeCatalog, actor: Principal, role: str) -> None:
    if role not in catalog.roles:
        raise ValidationFailed(
            f"Unknown role '{role}'.",
            errors=[FieldError("role", f"one of {sorted(catalog.roles)}")],
        )
    if actor.role not in ADMIN_ROLES:
        raise Forbidden("Only owners and admins manage members.")
    if role == "owner" and actor.role != "owner":
        raise Forbidden("Only an owner can make someone an owner.")


def _check_may_touch(actor: Principal, member: Member) -> None:
    if actor.role not in ADMIN_ROLES:
        raise Forbidden("Only owners and admins manage members.")
    if member.membership.role == "owner" and actor.role != "owner":
        raise Forbidden("Only an owner can change or remove an owner.")


def _keep_an_owner(session: Session, organization_id: str) -> None:
    owners = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == organization_id, Membership.role == "owner")
    )
    if (owners or 0) <= 1:
        raise Conflict("An organization needs at least one owner.")


def _record(
    session: Session,
    action: str,
    actor: Principal,
    user_id: str,
    now: datetime,
    client: ClientInfo,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        action,
        now=now,
        organization_id=actor.organization_id,
        actor=audit.actor_of(actor),
        target=("user", user_id),
        client=client,
        details=details,
    )
