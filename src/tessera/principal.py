"""Who is making a request, as every part of Tessera sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

PrincipalKind = Literal["api_key", "user", "service", "oauth_client"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key, a user (token or session), a service token, or an
    OAuth client acting for itself (``client_credentials``).

    ``scopes`` is what the credential may do right now. ``workspace_ids`` is the credential's
    workspace restriction (``None``: every workspace); ``workspace_id`` the one the request
    acts in, once resolved.
    """

    kind: PrincipalKind
    id: str
    organization_id: str | None
    scopes: frozenset[str] = frozenset()
    workspace_id: str | None = None
    environment: str | None = None
    workspace_ids: tuple[str, ...] | None = None
    user_id: str | None = None
    role: str | None = None
    # How the caller authenticated: "api_key", "access_token", "session" or "service_token".
    via: str = ""
    # The credential's own (requests, per_seconds), overriding the deployment default.
    rate_limit: tuple[int, int] | None = None
    # An API key's own bounds, which every key it creates must stay within.
    allowed_ips: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    # The OAuth client a user's OAuth token was issued to (or the client itself).
    client_id: str | None = None
    # Extra facts about the credential (session id, token family) that edges may need.
    facts: dict[str, str] = field(default_factory=dict, compare=False)

    def organization(self) -> str:
        """The id of the organization this principal acts in; refused when there is none."""
        if self.organization_id is None:
            from tessera.errors import Forbidden

            raise Forbidden("This credential belongs to no organization.")
        return self.organization_id

    def missing_scopes(self, required: list[str] | tuple[str, ...]) -> list[str]:
        """The required scopes this principal lacks."""
        return [scope for scope in required if scope not in self.scopes]


@dataclass(frozen=True)
class ClientInfo:
    """What the audit log records about where a request came from."""

    ip: str | None = None
    user_agent: str | None = None
