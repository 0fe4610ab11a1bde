"""The rules a new key must pass (SPEC section 2): no key exceeds its creator.

A person is bounded by their role's scopes. A key that creates a key is bounded on every
dimension it has: scopes, workspaces, allowed networks, expiry, environment and rate limit.
Where the caller leaves a dimension out, the new key takes the creating key's own bound.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.clock import as_utc
from tessera.config import Config
from tessera.errors import (
    FieldError,
    Forbidden,
    InvalidExpiry,
    UnknownScope,
    UnknownWorkspace,
    ValidationFailed,
)
from tessera.keys.format import ENVIRONMENTS
from tessera.principal import Principal
from tessera.scopes import ADMIN_ROLES, ScopeCatalog
from tessera.text import checked_name, is_clean

MAX_ALLOWED_IPS = 100
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Which of these workspace ids are workspaces of this organization.
ExistingWorkspaces = Callable[[str, list[str]], set[str]]


@dataclass(frozen=True)
class KeySpec:
    """What a caller asks for when creating a key."""

    name: str
    scopes: list[str] | None = None
    workspace_ids: list[str] | None = None
    environment: str = "live"
    expires_at: datetime | None = None
    allowed_ips: list[str] | None = None
    rate_limit: tuple[int, int] | None = None


def check_name(name: str) -> str:
    return checked_name(name)


def granted_scopes(
    catalog: ScopeCatalog, creator: Principal, scopes: list[str] | None
) -> list[str] | None:
    """The scopes the key will hold (``None``: inherit), after the creator's bounds are checked."""
    if scopes is None:
        # A key (or an OAuth token) that creates a key passes on what it holds now, never
        # its user's wider role.
        bounded = creator.kind != "user" or creator.client_id is not None
        return sorted(creator.scopes) if bounded else None
    unknown = catalog.unknown(scopes)
    if unknown:
        raise UnknownScope(
            f"Unknown scope: {', '.join(unknown)}.",
            errors=[FieldError("scopes", f"unknown scope {s}") for s in unknown],
        )
    admin_only = catalog.admin_only(scopes)
    # A key holds an admin-only scope only if an admin gave it; the check below bounds it.
    if admin_only and creator.kind != "api_key" and creator.role not in ADMIN_ROLES:
        raise Forbidden(f"Only owners and admins can grant {', '.join(admin_only)}.")
    beyond = sorted(set(scopes) - creator.scopes)
    if beyond:
        raise Forbidden(f"A key cannot hold scopes its creator lacks: {', '.join(beyond)}.")
    return sorted(set(scopes))


def checked_workspaces(
    existing: ExistingWorkspaces,
    creator: Principal,
    organization_id: str,
    workspace_ids: list[str] | None,
) -> list[str] | None:
    if workspace_ids is None:
        if creator.workspace_ids is not None:
            return list(creator.workspace_ids)  # never wider than the creating key
        return None
    wanted = list(dict.fromkeys(workspace_ids))
    askable = [w for w in wanted if is_clean(w)]  # no workspace id holds a NUL
    found = existing(organization_id, askable) if askable else set()
    missing = [w for w in wanted if w not in found]
    if missing:
        raise UnknownWorkspace(
            f"Unknown workspace: {', '.join(missing)}.",
            errors=[FieldError("workspace_ids", f"unknown workspace {w}") for w in missing],
        )
    if creator.workspace_ids is not None and not set(wanted) <= set(creator.workspace_ids):
        raise Forbidden("A key cannot reach workspaces its creator cannot.")
    return wanted


def checked_expiry(
    config: Config, creator: Principal, expires_at: datetime | None, now: datetime
) -> datetime | None:
    if creator.expires_at is not None:
        if expires_at is None:
            expires_at = creator.expires_at
        elif as_utc(expires_at) > creator.expires_at:
            raise Forbidden("A key cannot outlive the key that creates it.")
    limit_days = config.max_key_lifetime_days
    if expires_at is None:
        if limit_days:
            raise InvalidExpiry(
                f"expires_at is required: keys live at most {limit_days} days here.",
                errors=[FieldError("expires_at", "required")],
            )
        return None
    expires_at = as_utc(expires_at)
    if expires_at <= now:
        raise InvalidExpiry(
            "expires_at must be in the future.", errors=[FieldError("expires_at", "in the past")]
        )
    if limit_days and expires_at > now + timedelta(days=limit_days):
        raise InvalidExpiry(
            f"Keys live at most {limit_days} days here.",
            errors=[FieldError("expires_at", f"at most {limit_days} days ahead")],
        )
    return expires_at


def checked_environment(creator: Principal, environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValidationFailed(
            "environment must be live or test.",
            errors=[FieldError("environment", "live or test")],
        )
    if creator.kind == "api_key" and creator.environment == "test" and environment != "test":
        raise Forbidden("A test key can create only test keys.")
    return environment


def checked_networks(creator: Principal, allowed_ips: list[str] | None) -> list[str] | None:
    if allowed_ips is None:
        return list(creator.allowed_ips) if creator.allowed_ips is not None else None
    networks = _parsed_networks(allowed_ips)
    if creator.allowed_ips is not None:
        bounds = [ipaddress.ip_network(n) for n in creator.allowed_ips]
        if not all(_inside(network, bounds) for network in networks):
            raise Forbidden("A key cannot be used from networks its creator cannot.")
    return [str(network) for network in networks]


def _inside(network: Network, bounds: list[Network]) -> bool:
    return any(
        network.version == bound.version and network.subnet_of(bound)  # type: ignore[arg-type]
        for bound in bounds
    )


def _parsed_networks(allowed_ips: list[str]) -> list[Network]:
    if len(allowed_ips) > MAX_ALLOWED_IPS:
        raise ValidationFailed(
            f"At most {MAX_ALLOWED_IPS} networks.", errors=[FieldError("allowed_ips", "too many")]
        )
    networks: list[Network] = []
    for value in allowed_ips:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValidationFailed(
                f"{value!r} is not an IP address or CIDR network.",
                errors=[FieldError("allowed_ips", f"not a CIDR network: {value}")],
            ) from None
    return networks


def checked_rate_limit(
    creator: Principal, rate_limit: tuple[int, int] | None, default: tuple[int, int]
) -> tuple[int, int] | None:
    """The key's own limit; a creating key's limit (its own, or the default) bounds it."""
    if rate_limit is None:
        return creator.rate_limit if creator.kind == "api_key" else None
    requests, per_seconds = rate_limit
    if not (1 <= requests <= 10_000_000 and 1 <= per_seconds <= 86_400):
        raise ValidationFailed(
            "rate_limit needs requests 1-10000000 and per_seconds 1-86400.",
            errors=[FieldError("rate_limit", "out of range")],
        )
    if creator.kind == "api_key" and not _within_rate(rate_limit, creator.rate_limit or default):
        raise Forbidden("A key cannot have a higher rate limit than the key that creates it.")
    return rate_limit


def _within_rate(limit: tuple[int, int], bound: tuple[int, int]) -> bool:
    """No larger burst and no faster sustained rate (compared without division)."""
    requests, per_seconds = limit
    most, per = bound
    return requests <= most and requests * per <= most * per_seconds
