"""What the tokens capability needs from storage: refresh-token families and signing keys."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tessera.audit import AuditWriter


@dataclass(frozen=True)
class RefreshTokenFamily:
    """Every refresh token descended from one login; reuse of a spent one ends them all."""

    id: str
    user_id: str
    organization_id: str | None
    client_id: str
    scope: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    # The OAuth grant its tokens were issued under; None for a first-party login.
    grant_id: str | None = None


@dataclass(frozen=True)
class RefreshToken:
    id: str
    digest: str = field(repr=False)
    family_id: str
    created_at: datetime
    spent_at: datetime | None = None


class TokenChanges(AuditWriter, Protocol):
    """One transaction: its changes and its audit events commit together or not at all."""

    def token(self, digest: str) -> RefreshToken | None: ...

    def family(self, family_id: str) -> RefreshTokenFamily | None: ...

    def add_family(self, family: RefreshTokenFamily) -> None: ...

    def add_token(self, token: RefreshToken) -> None: ...

    def spend(self, token_id: str, at: datetime) -> bool:
        """Mark the token spent if it is not yet; of several calls racing, on any number of
        instances, exactly one gets True."""
        ...

    def revoke_family(self, family_id: str, at: datetime) -> None:
        """End the family, unless it has already ended (its end time is kept)."""
        ...

    def revoke_families_of(self, user_id: str, at: datetime) -> None:
        """End every family of the user that has not already ended."""
        ...

    def revoke_families_in(self, user_id: str, organization_id: str, at: datetime) -> None:
        """End every family of the user bound to the organization (they left it)."""
        ...


class TokenStore(Protocol):
    def family(self, family_id: str) -> RefreshTokenFamily | None: ...

    def transaction(self) -> AbstractContextManager[TokenChanges]: ...


@dataclass(frozen=True)
class KeyInfo:
    """A signing key as the JWKS and the choice of signer see it: no private half."""

    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None  # when a newer key was added


class SigningKeyStore(Protocol):
    def all(self) -> list[KeyInfo]:
        """Every key, the oldest first, without the private halves. Of keys made in the same
        instant, the ones retired first come first: a key is older than the one that
        replaced it."""
        ...

    def encrypted_private_key(self, kid: str) -> str | None:
        """The private half of a key, as encrypted with the deployment's secret."""
        ...

    def add_current(self, key: KeyInfo, encrypted_private_key: str) -> None:
        """Add ``key`` and retire every key not yet retired, at ``key.created_at``, in one
        transaction."""
        ...
