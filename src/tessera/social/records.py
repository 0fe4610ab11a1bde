"""What social sign-in keeps and what a provider tells about a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tessera.clock import rfc3339


@dataclass(frozen=True)
class Identity:
    """A person's account at a provider, linked to a user: unique by (provider, subject)."""

    id: str
    user_id: str
    provider: str
    subject: str
    email: str | None
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class Profile:
    """What a provider said about the person who signed in, after Tessera checked it."""

    subject: str
    email: str | None
    email_verified: bool
    name: str = ""


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in on its way through a provider: made at ``/auth/{provider}/login``, taken once
    at the callback. Only digests of ``state`` and of the browser's binding cookie are kept."""

    state_digest: str = field(repr=False)
    browser_digest: str = field(repr=False)
    provider: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    return_to: str
    link_user_id: str | None
    created_at: datetime
    expires_at: datetime


def identity_resource(identity: Identity, display_name: str) -> dict[str, Any]:
    return {
        "id": identity.id,
        "object": "identity",
        "provider": identity.provider,
        "provider_name": display_name,
        "subject": identity.subject,
        "email": identity.email,
        "created_at": rfc3339(identity.created_at),
        "last_used_at": rfc3339(identity.last_used_at),
    }
