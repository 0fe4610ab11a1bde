"""Sign-up, password login and membership look-ups."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.accounts.passwords import Passwords
from tessera.clock import rfc3339
from tessera.errors import EmailTaken, FieldError, Unauthorized, ValidationFailed
from tessera.ids import new_id
from tessera.storage.models import Membership, Organization, User, Workspace
from tessera.text import (
    EMAIL_MAX_LENGTH,
    PERSON_NAME_MAX_LENGTH,
    check_clean,
    checked_name,
    is_clean,
)

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class NewAccount:
    user: User
    organization: Organization
    workspace: Workspace


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    cleaned = check_clean(email.strip(), "email")
    if len(cleaned) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.match(cleaned):
        raise ValidationFailed(
            "The email address is not valid.", errors=[FieldError("email", "not an email address")]
        )
    return cleaned


def check_person_name(name: str, email: str) -> str:
    """The name given, or the email's local part when none is (the sign-up form's name is
    optional)."""
    if not name.strip():
        return email.split("@")[0]
    return checked_name(name, most=PERSON_NAME_MAX_LENGTH)


def find_user_by_email(session: Session, email: str) -> User | None:
    if not is_clean(email):  # no account has such an email, and PostgreSQL refuses a NUL
        return None
    return session.scalars(select(User).where(User.email_key == normalize_email(email))).first()


def create_user(
    session: Session, passwords: Passwords, *, email: str, password: str, name: str, now: datetime
) -> User:
    email = check_email(email)
    if find_user_by_email(session, email) is not None:
        raise EmailTaken("An account with this email already exists.")
    user = User(
        id=new_id("usr"),
        email=email,
        email_key=normalize_email(email),
        name=check_person_name(name, email),
        password_hash=passwords.hash(password),
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def create_organization(
    session: Session, name: str, now: datetime
) -> tuple[Organization, Workspace]:
    """A new organization with its ``Default`` workspace."""
    name = checked_name(name, "organization_name")
    organization = Organization(id=new_id("org"), name=name, created_at=now)
    session.add(organization)
    workspace = Workspace(
        id=new_id("ws"), organization_id=organization.id, name="Default", created_at=now
    )
    session.add(workspace)
    session.flush()
    return organization, workspace


def add_member(
    session: Session, user: User, organization: Organization, role: str, now: datetime
) -> None:
    session.add(
        Membership(user_id=user.id, organization_id=organization.id, role=role, created_at=now)
    )


def sign_up(
    session: Session,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    name: str,
    organization_name: str,
    now: datetime,
) -> NewAccount:
    user = create_user(session, passwords, email=email, password=password, name=name, now=now)
    organization, workspace = create_organization(session, organization_name, now)
    add_member(session, user, organization, "owner", now)
    session.flush()
    return NewAccount(user, organization, workspace)


def check_password(session: Session, passwords: Passwords, email: str, password: str) -> User:
    """The user whose credentials these are; the same refusal whether the email exists or not."""
    user = find_user_by_email(session, email)
    if not passwords.verify(user.password_hash if user else None, password):
        raise Unauthorized("The email or password is incorrect.")
    assert user is not None and user.password_hash is not None  # verify() needs both
    upgraded = passwords.upgraded(user.password_hash, password)
    if upgraded is not None:
        user.password_hash = upgraded
    return user


def memberships(session: Session, user_id: str) -> list[tuple[Membership, Organization]]:
    rows = session.execute(
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Organization.id)
    )
    return [(m, o) for m, o in rows]


def organization_ids(session: Session, user_id: str) -> list[str]:
    """The organizations a user belongs to, oldest membership first."""
    query = select(Membership.organization_id).where(Membership.user_id == user_id)
    return list(session.scalars(query.order_by(Membership.created_at)))


def person_by_email(session: Session, email: str) -> tuple[str | None, list[str]]:
    """The id of the user with this email, if any, and their organizations: one query,
    known email or not, so that the time taken tells nothing."""
    rows = session.execute(
        select(User.id, Membership.organization_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(User.email_key == normalize_email(email))
        .order_by(Membership.created_at)
    ).all()
    user_id = rows[0][0] if rows else None
    return user_id, [organization_id for _, organization_id in rows if organization_id]


def membership(session: Session, user_id: str, organization_id: str) -> Membership | None:
    return session.get(Membership, (user_id, organization_id))


def user_resource(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "object": "user",
        "email": user.email,
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
