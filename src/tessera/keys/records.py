"""What the verification path knows about a key: an immutable snapshot of its row."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tessera.clock import rfc3339
from tessera.principal import Principal
from tessera.storage.models import ApiKey

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class KeyRecord:
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
    def of(cls, row: ApiKey) -> KeyRecord:
        networks = (
            tuple(ipaddress.ip_network(c, strict=False) for c in row.allowed_ips)
            if row.allowed_ips is not None
            else None
        )
        limit = (
            (row.rate_limit_requests, row.rate_limit_per_seconds)
            if row.rate_limit_requests and row.rate_limit_per_seconds
            else None
        )
        record = cls(
            id=row.id,
            organization_id=row.organization_id,
            environment=row.environment,
            scopes=None if row.inherits_creator_permissions else frozenset(row.scopes or ()),
            owner_user_id=row.owner_user_id,
            workspace_ids=tuple(row.workspace_ids) if row.workspace_ids is not None else None,
            allowed_networks=networks,
            rate_limit=limit,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
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


def is_active(row: ApiKey, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def key_resource(row: ApiKey, now: datetime) -> dict[str, Any]:
    """The API key resource of SPEC section 2 (never the raw key, never the digest)."""
    rate_limit = (
        {"requests": row.rate_limit_requests, "per_seconds": row.rate_limit_per_seconds}
        if row.rate_limit_requests
        else None
    )
    return {
        "id": row.id,
        "object": "api_key",
        "name": row.name,
        "key_prefix": row.key_prefix,
        "environment": row.environment,
        "scopes": None if row.inherits_creator_permissions else list(row.scopes or []),
        "inherits_creator_permissions": row.inherits_creator_permissions,
        "workspace_ids": row.workspace_ids,
        "allowed_ips": row.allowed_ips,
        "rate_limit": rate_limit,
        "created_at": rfc3339(row.created_at),
        "created_by": row.created_by,
        "expires_at": rfc3339(row.expires_at),
        "last_used_at": rfc3339(row.last_used_at),
        "revoked_at": rfc3339(row.revoked_at),
        "active": is_active(row, now),
    }
