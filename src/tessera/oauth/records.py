"""What the authorization server keeps: clients, grants (consents) and authorization codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from tessera.clock import rfc3339

ClientType = Literal["confidential", "public"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Scopes of the protocol itself, which no role grants and every person may consent to.
OPENID_SCOPES: dict[str, str] = {
    "openid": "Sign you in with your account",
    "profile": "See your name",
    "email": "See your email address",
    "offline_access": "Keep access while you are away",
}


@dataclass(frozen=True)
class OAuthClient:
    id: str
    organization_id: str
    name: str
    type: ClientType
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    secret_digest: str | None = field(repr=False)
    created_at: datetime
    created_by: str | None
    deleted_at: datetime | None = None

    @property
    def confidential(self) -> bool:
        return self.type == "confidential"

    def allows_redirect(self, uri: str) -> bool:
        """An exact match, except that a loopback redirect may name any port (RFC 8252)."""
        if uri in self.redirect_uris:
            return True
        return any(_same_but_port(uri, registered) for registered in self.redirect_uris)


@dataclass(frozen=True)
class OAuthGrant:
    id: str
    client_id: str
    user_id: str
    organization_id: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


@dataclass(frozen=True)
class AuthorizationCode:
    id: str
    digest: str = field(repr=False)
    grant_id: str
    client_id: str
    user_id: str
    organization_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: datetime
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    family_id: str | None = None


def client_resource(client: OAuthClient) -> dict[str, Any]:
    return {
        "id": client.id,
        "object": "oauth_client",
        "client_id": client.id,
        "name": client.name,
        "type": client.type,
        "redirect_uris": list(client.redirect_uris),
        "scopes": list(client.scopes),
        "created_at": rfc3339(client.created_at),
        "created_by": client.created_by,
    }


def _same_but_port(uri: str, registered: str) -> bool:
    try:
        a, b = urlsplit(uri), urlsplit(registered)
        a_host, b_host = a.hostname, b.hostname
        a.port, b.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return False
    if a.scheme != "http" or b.scheme != "http" or b_host not in LOOPBACK_HOSTS:
        return False
    same = (a.scheme, a_host, a.path, a.query) == (b.scheme, b_host, b.path, b.query)
    return same and not a.fragment and not a.username and not a.password
