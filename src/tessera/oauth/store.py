"""What the authorization server needs from storage (``storage/oauth.py`` serves it)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from tessera.audit import AuditWriter
from tessera.oauth.records import AuthorizationCode, OAuthClient, OAuthGrant


class OAuthChanges(AuditWriter, Protocol):
    """One transaction: its changes and its audit events commit together or not at all."""

    def client(self, client_id: str) -> OAuthClient | None: ...

    def save_client(self, client: OAuthClient) -> None:
        """Add the client, or replace the one with its id."""
        ...

    def grant(self, grant_id: str) -> OAuthGrant | None: ...

    def live_grant(self, client_id: str, user_id: str, organization_id: str) -> OAuthGrant | None:
        """The grant not yet revoked of this person to this client in this organization."""
        ...

    def save_grant(self, grant: OAuthGrant) -> None:
        """Add the grant, or replace the one with its id."""
        ...

    def revoke_grants_of_client(self, client_id: str, at: datetime) -> list[str]:
        """End every live grant of the client; the ids of those it ended."""
        ...

    def end_families_of(self, grant_ids: list[str], at: datetime) -> None:
        """End the token families issued under these grants, so that every instance, which
        checks a token's family at each request, refuses their tokens at once."""
        ...

    def add_code(self, code: AuthorizationCode) -> None: ...

    def code(self, digest: str) -> AuthorizationCode | None: ...

    def spend_code(self, code_id: str, at: datetime) -> bool:
        """Mark the code used if it is not yet; of several calls racing exactly one gets True."""
        ...

    def set_code_family(self, code_id: str, family_id: str) -> None:
        """Name the tokens issued from the code (a replay ends them)."""
        ...


class OAuthStore(Protocol):
    def client(self, client_id: str) -> OAuthClient | None: ...

    def clients(self, organization_id: str) -> list[OAuthClient]:
        """The organization's clients not deleted, oldest first."""
        ...

    def grant(self, grant_id: str) -> OAuthGrant | None: ...

    def grants_of(self, user_id: str) -> list[OAuthGrant]:
        """The person's grants not revoked, newest first."""
        ...

    def touch_grant(self, grant_id: str, at: datetime) -> None:
        """Record that the grant was used at ``at``."""
        ...

    def transaction(self) -> AbstractContextManager[OAuthChanges]: ...
