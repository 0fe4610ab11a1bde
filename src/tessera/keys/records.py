"""API keys as the rest of Tessera sees them: the stored key, and what verification keeps of it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tessera.clock import rfc3339
from tessera.principal import Principal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ApiKey:
    """A stored key. Never the raw key: only its digest and its display prefix."""

    id: str
    organization_id: str
    name: str
    key_prefix: str
    digest: str = field(repr=False)
    environment: str
    scopes: tuple[str, ...] | None  # None: inherits the creator's permissions
    workspace_ids: tuple[str, ...] | None
    allowed_ips: tuple[str, ...] | None
    rate_limit: tuple[int, int] | None  # (requests, per_seconds)
    created_at: datetime
    created_by: str
    # The user whose permissions bound the key (the creator, or the user behind a creating key).
    owner_user_id: str | None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    rolled_from: str | None = None
    last_used_network: str | None = None  # coarse: a /24 or /48, never the address

    @property
    def inherits_creator_permissions(self) -> bool:
        return self.scopes is None


@dataclass(frozen=True)
class KeyRecord:
    """What the verification path keeps of a key, with its networks parsed once."""

    id: str
    organization_id: str
    environment: str
    scopes: frozenset[str] | None  # None: inherits the creator's permissions
    owner_user_id: str | None
    workspace_ids: tuple[str, ...] | None
    allowed_networks: tuple[Network, ...] | None
    rate_limit: tuple[int, int] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    # Built once for keys with their own scopes; inheriting keys resolve theirs per request.
    principal: Principal | None = field(default=None, compare=False)

    @classmethod
    def of(cls, key: ApiKey) -> KeyRecord:
        networks = (
            tuple(ipaddress.ip_network(c, strict=False) for c in key.allowed_ips)
            if key.allowed_ips is not None
            else None
        )
        record = cls(
            id=key.id,
            organization_id=key.organization_id,
            environment=key.environment,
            scopes=None if key.scopes is None else frozenset(key.scopes),
            owner_user_id=key.owner_user_id,
            workspace_ids=key.workspace_ids,
            allowed_networks=networks,
            rate_limit=key.rate_limit,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )
        if record.scopes is None:
            return record
        return replace(record, principal=key_principal(record, record.scopes, None))

    def allows_ip(self, address: str | None) -> bool:
        if self.allowed_networks is None:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allowed_networks)


def key_principal(record: KeyRecord, scopes: frozenset[str], role: str | None) -> Principal:
    return Principal(
        kind="api_key",
        id=record.id,
        organization_id=record.organization_id,
        scopes=scopes,
        environment=record.environment,
        workspace_ids=record.workspace_ids,
        user_id=record.owner_user_id,
        role=role,
        via="api_key",
        rate_limit=record.rate_limit,
        allowed_ips=(
            tuple(str(n) for n in record.allowed_networks)
            if record.allowed_networks is not None
            else None
        ),
        expires_at=record.expires_at,
    )


def is_active(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def key_resource(key: ApiKey, now: datetime) -> dict[str, Any]:
    """The API key resource of SPEC section 2 (never the raw key, never the digest)."""
    rate_limit = (
        {"requests": key.rate_limit[0], "per_seconds": key.rate_limit[1]}
        if key.rate_limit
        else None
    )
    return {
        "id": key.id,
        "object": "api_key",
        "name": key.name,
        "key_prefix": key.key_prefix,
        "environment": key.environment,
        "scopes": _listed(key.scopes),
        "inherits_creator_permissions": key.inherits_creator_permissions,
        "workspace_ids": _listed(key.workspace_ids),
        "allowed_ips": _listed(key.allowed_ips),
        "rate_limit": rate_limit,
        "created_at": rfc3339(key.created_at),
        "created_by": key.created_by,
        "expires_at": rfc3339(key.expires_at),
        "last_used_at": rfc3339(key.last_used_at),
        "revoked_at": rfc3339(key.revoked_at),
        "active": is_active(key, now),
    }


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
