"""Accounts: sign-up, users made by an operator, password checks, who belongs where.

Sign-up (the API and the dashboard) and ``tessera user create`` are one path: a user, an
organization with its ``Default`` workspace unless an existing one is joined, the membership,
and a ``user.signed_up`` event, in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tessera import audit
from tessera.accounts.passwords import Passwords
from tessera.accounts.records import (
    Membership,
    Organization,
    User,
    Workspace,
    normalize_email,
    organization_resource,
    user_resource,
)
from tessera.accounts.store import AccountChanges, AccountStore
from tessera.clock import Clock
from tessera.errors import (
    Conflict,
    EmailTaken,
    FieldError,
    Forbidden,
    OrganizationExists,
    Unauthorized,
    ValidationFailed,
)
from tessera.ids import new_id
from tessera.principal import ClientInfo
from tessera.scopes import ScopeCatalog
from tessera.text import EMAIL_MAX_LENGTH, PERSON_NAME_MAX_LENGTH, check_clean, checked_name

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
FIRST_WORKSPACE = "Default"

__all__ = [
    "EMAIL_PATTERN",
    "Accounts",
    "NewAccount",
    "check_email",
    "normalize_email",
    "organization_resource",
    "user_resource",
]


@dataclass(frozen=True)
class NewAccount:
    user: User
    organization: Organization
    workspace: Workspace | None  # None when the user joined an existing organization


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


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        passwords: Passwords,
        clock: Clock,
        catalog: ScopeCatalog,
        *,
        signup_open: bool,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._clock = clock
        self._catalog = catalog
        self._signup_open = signup_open

    def sign_up(
        self, *, email: str, password: str, name: str, organization_name: str, client: ClientInfo
    ) -> NewAccount:
        """A person signing up: a new user owning a new organization."""
        if not self._signup_open:
            raise Forbidden("Sign-up is closed on this deployment.")
        now = self._clock.now()
        with self._store.transaction() as tx:
            user = self._new_user(tx, email, password, name, now)
            organization, workspace = _new_organization(tx, organization_name, now)
            tx.add_member(organization.id, user.id, "owner", now)
            tx.record(
                audit.event(
                    "user.signed_up",
                    now=now,
                    organization_id=organization.id,
                    actor=("user", user.id),
                    target=("user", user.id),
                    client=client,
                )
            )
        return NewAccount(user, organization, workspace)

    def create_user(
        self,
        *,
        email: str,
        password: str,
        name: str,
        organization_name: str,
        role: str = "owner",
        join: bool = False,
    ) -> NewAccount:
        """An operator creating a user (``tessera user create``): in a new organization, or
        with ``join`` in the existing organization of that name."""
        self._check_role(role)
        now = self._clock.now()
        with self._store.transaction() as tx:
            user = self._new_user(tx, email, password, name, now)
            organization, workspace = _organization_for(tx, organization_name, role, join, now)
            tx.add_member(organization.id, user.id, role, now)
            tx.record(
                audit.event(
                    "user.signed_up",
                    now=now,
                    organization_id=organization.id,
                    actor=audit.SYSTEM,
                    target=("user", user.id),
                    details={"role": role},
                )
            )
        return NewAccount(user, organization, workspace)

    def check_password(self, email: str, password: str) -> User:
        """The user whose credentials these are; the same refusal whether the email exists or
        not. A hash made with weaker parameters than today's is replaced."""
        user = self._store.user_by_email(email)
        if not self._passwords.verify(user.password_hash if user else None, password):
            raise Unauthorized("The email or password is incorrect.")
        assert user is not None and user.password_hash is not None  # verify() needs both
        upgraded = self._passwords.upgraded(user.password_hash, password)
        if upgraded is not None:
            with self._store.transaction() as tx:
                tx.set_password_hash(user.id, upgraded)
        return user

    def user(self, user_id: str) -> User | None:
        return self._store.user(user_id)

    def user_by_email(self, email: str) -> User | None:
        return self._store.user_by_email(email)

    def person_by_email(self, email: str) -> tuple[str | None, list[str]]:
        """The id of the user with this email, if any, and their organizations."""
        return self._store.person_by_email(email)

    def organization(self, organization_id: str) -> Organization | None:
        return self._store.organization(organization_id)

    def memberships(self, user_id: str) -> list[Membership]:
        return self._store.memberships(user_id)

    def home_organization(self, user_id: str) -> str | None:
        """The organization a user acts in unless they name one: their oldest membership's."""
        memberships = self._store.memberships(user_id)
        return memberships[0].organization.id if memberships else None

    def role(self, user_id: str, organization_id: str) -> str | None:
        return self._store.role(user_id, organization_id)

    def profile(self, user_id: str) -> tuple[User, list[Membership]]:
        """A user and every organization they belong to (``/v1/me``)."""
        user = self._store.user(user_id)
        if user is None:
            raise Unauthorized("The user no longer exists.")
        return user, self._store.memberships(user_id)

    def _new_user(
        self, tx: AccountChanges, email: str, password: str, name: str, now: datetime
    ) -> User:
        email = check_email(email)
        if tx.user_by_email(email) is not None:
            raise EmailTaken("An account with this email already exists.")
        user = User(
            id=new_id("usr"),
            email=email,
            name=check_person_name(name, email),
            created_at=now,
            password_hash=self._passwords.hash(password),
        )
        tx.add_user(user)
        return user

    def _check_role(self, role: str) -> None:
        if role not in self._catalog.roles:
            raise ValidationFailed(
                f"Unknown role '{role}'.",
                errors=[FieldError("role", f"one of {sorted(self._catalog.roles)}")],
            )


def _organization_for(
    tx: AccountChanges, name: str, role: str, join: bool, now: datetime
) -> tuple[Organization, Workspace | None]:
    existing = tx.organizations_named(checked_name(name, "organization_name"))
    if existing and not join:
        raise OrganizationExists(f"An organization named {name.strip()!r} already exists.")
    if len(existing) > 1:
        raise Conflict(f"{len(existing)} organizations are named {name.strip()!r}.")
    if existing:
        return existing[0], None
    if role != "owner":  # an organization is never without an owner
        raise ValidationFailed(
            "The first member of a new organization is its owner.",
            errors=[FieldError("role", "owner for a new organization")],
        )
    return _new_organization(tx, name, now)


def _new_organization(
    tx: AccountChanges, name: str, now: datetime
) -> tuple[Organization, Workspace]:
    """A new organization with its first workspace."""
    organization = Organization(new_id("org"), checked_name(name, "organization_name"), now)
    workspace = Workspace(new_id("ws"), organization.id, FIRST_WORKSPACE, now)
    tx.add_organization(organization)
    tx.add_workspace(workspace)
    return organization, workspace
