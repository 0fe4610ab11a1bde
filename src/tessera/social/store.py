"""What social sign-in needs from storage, and from a provider."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from tessera.accounts.store import AccountChanges
from tessera.social.records import Identity, PendingSignIn, Profile


class SocialChanges(AccountChanges, Protocol):
    """One transaction over identities, the person's account and their credentials: linking
    an identity, removing a password and ending sessions commit together or not at all."""

    def identity(self, provider: str, subject: str) -> Identity | None: ...

    def organization_ids(self, user_id: str) -> list[str]:
        """The user's organizations, the oldest membership first."""
        ...

    def identities_of(self, user_id: str) -> list[Identity]: ...

    def add_identity(self, identity: Identity) -> None: ...

    def touch_identity(self, identity_id: str, at: datetime, email: str | None) -> None: ...

    def remove_identity(self, identity_id: str) -> None: ...

    def remove_password(self, user_id: str) -> None: ...

    def end_sessions_of(self, user_id: str, at: datetime) -> list[str]:
        """End every open browser session of the user; their ids."""
        ...

    def revoke_families_of(self, user_id: str, at: datetime) -> None:
        """End every refresh-token family of the user."""
        ...

    def add_pending(self, pending: PendingSignIn) -> None: ...

    def take_pending(self, state_digest: str, at: datetime) -> PendingSignIn | None:
        """The pending sign-in with this state, removed so that it is taken only once (two
        callbacks racing with one state: one gets it); None when unknown or taken."""
        ...


class SocialStore(Protocol):
    def identities_of(self, user_id: str) -> list[Identity]:
        """The oldest first."""
        ...

    def transaction(self) -> AbstractContextManager[SocialChanges]: ...


class ProviderError(Exception):
    """A provider refused, could not be reached, or answered something Tessera does not
    accept (a token that fails its checks). ``reason``: ``unavailable`` or ``invalid``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Provider(Protocol):
    """A sign-in provider as the service uses it; ``providers/`` speaks HTTP to each kind."""

    @property
    def name(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where the browser goes to sign in: authorization code with PKCE S256."""
        ...

    def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, issuer: str | None
    ) -> Profile:
        """Exchange the code and check what comes back (the ID token against the provider's
        JWKS, the ``iss`` the authorization response carried); raises ProviderError."""
        ...
