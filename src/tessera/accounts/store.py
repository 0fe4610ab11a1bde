"""What the accounts capability needs from storage: users, organizations, members, workspaces."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from tessera.accounts.records import (
    EmailLink,
    Invitation,
    Member,
    Membership,
    Organization,
    User,
    Workspace,
)
from tessera.audit import AuditWriter


class AccountReads(Protocol):
    """Look-ups, on their own or inside a transaction."""

    def user(self, user_id: str) -> User | None: ...

    def user_by_email(self, email: str) -> User | None:
        """The user whose email is ``email`` in any case; None for an email that no account
        can have (one holding a NUL)."""
        ...

    def workspace(self, workspace_id: str) -> Workspace | None: ...

    def member(self, organization_id: str, user_id: str) -> Member | None: ...


class AccountChanges(AccountReads, AuditWriter, Protocol):
    """One transaction: its changes and its audit events commit together or not at all."""

    def add_user(self, user: User) -> None: ...

    def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    def set_email_verified(self, user_id: str, verified: bool) -> None: ...

    def organizations_named(self, name: str) -> list[Organization]: ...

    def add_organization(self, organization: Organization) -> None: ...

    def add_workspace(self, workspace: Workspace) -> None: ...

    def rename_workspace(self, workspace_id: str, name: str) -> None: ...

    def delete_workspace(self, workspace_id: str) -> None: ...

    def add_member(self, organization_id: str, user_id: str, role: str, at: datetime) -> None: ...

    def set_role(self, organization_id: str, user_id: str, role: str) -> None: ...

    def remove_member(self, organization_id: str, user_id: str) -> None: ...

    def owner_count(self, organization_id: str) -> int: ...


class AccountStore(AccountReads, Protocol):
    def organization(self, organization_id: str) -> Organization | None: ...

    def memberships(self, user_id: str) -> list[Membership]:
        """The user's organizations, the oldest membership first."""
        ...

    def role(self, user_id: str, organization_id: str) -> str | None: ...

    def organization_ids(self, user_id: str) -> list[str]:
        """The user's organizations, the oldest membership first."""
        ...

    def person_by_email(self, email: str) -> tuple[str | None, list[str]]:
        """The id of the user with this email, if any, and their organizations: one query,
        known email or not, so that the time taken tells nothing."""
        ...

    def members(self, organization_id: str) -> list[Member]:
        """The oldest membership first."""
        ...

    def workspaces(self, organization_id: str) -> list[Workspace]:
        """The oldest first."""
        ...

    def transaction(self) -> AbstractContextManager[AccountChanges]: ...


class InvitationChanges(AccountChanges, Protocol):
    """An account transaction that also reads and changes invitations."""

    def add_invitation(self, invitation: Invitation) -> None: ...

    def invitation(self, invitation_id: str) -> Invitation | None: ...

    def invitation_by_digest(self, digest: str) -> Invitation | None: ...

    def pending_invitations_for(self, organization_id: str, email: str) -> list[Invitation]:
        """The organization's invitations to ``email`` (any case) neither accepted nor revoked."""
        ...

    def accept_invitation(self, invitation_id: str, user_id: str, at: datetime) -> bool:
        """Mark the invitation accepted if it is still open; of several calls racing, on any
        number of instances, exactly one gets True."""
        ...

    def revoke_invitation(self, invitation_id: str, at: datetime) -> bool:
        """Revoke the invitation if it is still open; True when this call did."""
        ...


class InvitationStore(Protocol):
    def invitations(self, organization_id: str) -> list[Invitation]:
        """The organization's invitations neither accepted nor revoked, the newest first."""
        ...

    def transaction(self) -> AbstractContextManager[InvitationChanges]: ...


class EmailLinkChanges(AccountChanges, Protocol):
    """An account transaction that also reads and spends email links."""

    def add_email_link(self, link: EmailLink) -> None: ...

    def email_link_by_digest(self, digest: str) -> EmailLink | None: ...

    def email_links_since(self, user_id: str, purpose: str, since: datetime) -> int:
        """How many links of ``purpose`` the user was sent at ``since`` or later."""
        ...

    def spend_email_link(self, link_id: str, at: datetime) -> bool:
        """Mark the link used if it is not yet; of several calls racing exactly one gets True."""
        ...

    def spend_email_links_of(self, user_id: str, purpose: str, at: datetime) -> None:
        """Mark every unused link of the user for ``purpose`` used (one reset spends them all)."""
        ...


class EmailLinkStore(Protocol):
    def transaction(self) -> AbstractContextManager[EmailLinkChanges]: ...
