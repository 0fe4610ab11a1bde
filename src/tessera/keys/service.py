"""The lifecycle of API keys: create, list, read, rename, revoke, roll, usage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from tessera import audit
from tessera.clock import Clock
from tessera.config import Config
from tessera.errors import (
    Conflict,
    FieldError,
    Forbidden,
    ImmutableField,
    NotFound,
    ValidationFailed,
)
from tessera.ids import digest, new_id
from tessera.keys import format as key_format
from tessera.keys import rules
from tessera.keys.records import ApiKey
from tessera.keys.rules import KeySpec
from tessera.keys.store import KeyChanges, KeyStore
from tessera.keys.usage import UsageRecorder
from tessera.pagination import Page
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ScopeCatalog

IMMUTABLE_FIELDS = ("scopes", "workspace_ids", "environment", "allowed_ips", "rate_limit")
MAX_GRACE_SECONDS = 604_800


@dataclass(frozen=True)
class NewKey:
    """A created key and its raw value, which exists only in this object."""

    key: ApiKey
    raw: str


class _Finds(Protocol):
    def get(self, key_id: str) -> ApiKey | None: ...


class ApiKeys:
    def __init__(
        self,
        config: Config,
        store: KeyStore,
        clock: Clock,
        catalog: ScopeCatalog,
        usage: UsageRecorder,
        on_change: Callable[[str], None],
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._usage = usage
        self._on_change = on_change  # evicts a digest from every verification cache

    def create(self, actor: Principal, spec: KeySpec, client: ClientInfo) -> NewKey:
        organization_id = actor.organization()
        now = self._clock.now()
        with self._store.transaction() as tx:
            new = self._new_key(tx, actor, organization_id, spec, now)
            tx.add(new.key)
            tx.record(self._event("api_key.created", actor, new.key, client, _summary(new.key)))
        return new

    def page(
        self,
        organization_id: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        include_revoked: bool = False,
    ) -> Page[ApiKey]:
        page = self._store.page(
            organization_id, limit=limit, cursor=cursor, include_revoked=include_revoked
        )
        return Page(tuple(self._with_pending_use(k) for k in page.items), page.next_cursor)

    def get(self, organization_id: str, key_id: str) -> ApiKey:
        return self._with_pending_use(_find(self._store, organization_id, key_id))

    def update(
        self, actor: Principal, key_id: str, changes: dict[str, Any], client: ClientInfo
    ) -> ApiKey:
        touched = [f for f in IMMUTABLE_FIELDS if f in changes]
        if touched:
            raise ImmutableField(
                f"{', '.join(touched)} cannot change; revoke this key and create a new one.",
                errors=[FieldError(f, "immutable: revoke and create a new key") for f in touched],
            )
        with self._store.transaction() as tx:
            key = _find(tx, actor.organization(), key_id)
            if "name" in changes:
                name = rules.check_name(str(changes["name"] or ""))
                details = {"name": [key.name, name]}
                key = replace(key, name=name)
                tx.rename(key.id, name)
                tx.record(self._event("api_key.updated", actor, key, client, details))
        return self._with_pending_use(key)

    def revoke(self, actor: Principal, key_id: str, client: ClientInfo) -> ApiKey:
        with self._store.transaction() as tx:
            key = _find(tx, actor.organization(), key_id)
            if key.revoked_at is None:
                now = self._clock.now()
                key = replace(key, revoked_at=now)
                tx.revoke(key.id, now)
                tx.record(self._event("api_key.revoked", actor, key, client, _summary(key)))
        self._on_change(key.digest)
        return key

    def roll(
        self, actor: Principal, key_id: str, expires_old_in_seconds: int, client: ClientInfo
    ) -> NewKey:
        if not 0 <= expires_old_in_seconds <= MAX_GRACE_SECONDS:
            raise ValidationFailed(
                f"expires_old_in_seconds must be 0 to {MAX_GRACE_SECONDS}.",
                errors=[FieldError("expires_old_in_seconds", f"0 to {MAX_GRACE_SECONDS}")],
            )
        now = self._clock.now()
        with self._store.transaction() as tx:
            old = _find(tx, actor.organization(), key_id)
            if old.revoked_at is not None:
                raise Conflict("A revoked key cannot be rolled.")
            new = self._successor(tx, old, actor, now)
            tx.add(new.key)
            grace_end = now + timedelta(seconds=expires_old_in_seconds)
            if old.expires_at is None or grace_end < old.expires_at:
                tx.set_expiry(old.id, grace_end)
            details = {"new_key_id": new.key.id, "old_expires_at": grace_end.isoformat()}
            tx.record(self._event("api_key.rolled", actor, old, client, details))
        self._on_change(old.digest)
        return new

    def usage(self, organization_id: str, key_id: str, days: int) -> list[dict[str, Any]]:
        if not 1 <= days <= 366:
            raise ValidationFailed(
                "days must be 1 to 366.", errors=[FieldError("days", "1 to 366")]
            )
        _find(self._store, organization_id, key_id)
        today = self._clock.now().date()
        first = today - timedelta(days=days - 1)
        counts = self._usage.counts(key_id, first)
        series = (first + timedelta(days=i) for i in range(days))
        return [_usage_day(d, *counts.get(d, (0, 0))) for d in series]

    def _new_key(
        self,
        tx: KeyChanges,
        actor: Principal,
        organization_id: str,
        spec: KeySpec,
        now: datetime,
        rolled_from: str | None = None,
    ) -> NewKey:
        """Every key, created or rolled, passes the same rules with the caller as creator."""
        # The checks run in this order so that a request breaking several rules always gets
        # the same refusal.
        scopes = rules.granted_scopes(self._catalog, actor, spec.scopes)
        environment = rules.checked_environment(actor, spec.environment)
        default_limit = (self._config.rate_limit.requests, self._config.rate_limit.per_seconds)
        limit = rules.checked_rate_limit(actor, spec.rate_limit, default_limit)
        name = rules.check_name(spec.name)
        workspaces = rules.checked_workspaces(
            tx.existing_workspaces, actor, organization_id, spec.workspace_ids
        )
        networks = rules.checked_networks(actor, spec.allowed_ips)
        expires_at = rules.checked_expiry(self._config, actor, spec.expires_at, now)
        raw = key_format.generate(self._config.key_prefix, environment)
        key = ApiKey(
            id=new_id("key"),
            organization_id=organization_id,
            name=name,
            key_prefix=_display_prefix(raw),
            digest=digest(raw),
            environment=environment,
            scopes=None if scopes is None else tuple(scopes),
            workspace_ids=None if workspaces is None else tuple(workspaces),
            allowed_ips=None if networks is None else tuple(networks),
            rate_limit=limit,
            created_at=now,
            created_by=actor.id,
            owner_user_id=actor.user_id,
            expires_at=expires_at,
            rolled_from=rolled_from,
        )
        return NewKey(key, raw)

    def _successor(self, tx: KeyChanges, old: ApiKey, actor: Principal, now: datetime) -> NewKey:
        """A roll is a creation by the caller with the old key's settings (SPEC section 2)."""
        if old.inherits_creator_permissions and actor.kind != "user":
            raise Forbidden(
                "This key inherits its creator's permissions; only a person can roll it."
            )
        spec = KeySpec(
            name=old.name,
            scopes=None if old.scopes is None else list(old.scopes),
            workspace_ids=None if old.workspace_ids is None else list(old.workspace_ids),
            environment=old.environment,
            expires_at=old.expires_at,
            allowed_ips=None if old.allowed_ips is None else list(old.allowed_ips),
            rate_limit=old.rate_limit,
        )
        new = self._new_key(tx, actor, old.organization_id, spec, now, rolled_from=old.id)
        if _settings(new.key) != _settings(old):
            # The rules filled an unbounded setting with the caller's narrower own bound.
            raise Forbidden("The caller cannot create a key with this key's settings.")
        return new

    def _with_pending_use(self, key: ApiKey) -> ApiKey:
        """Show a use that is counted in memory but not yet written."""
        pending = self._usage.pending_last_used(key.id)
        if pending is None:
            return key
        network = self._usage.pending_last_network(key.id) or key.last_used_network
        return replace(key, last_used_at=pending, last_used_network=network)

    def _event(
        self,
        action: audit.Action,
        actor: Principal,
        key: ApiKey,
        client: ClientInfo,
        details: dict[str, Any],
    ) -> audit.AuditEvent:
        # The caller's organization is the key's: _find refuses keys of any other.
        target = ("api_key", key.id)
        return audit.by_principal(
            action, actor, target, now=self._clock.now(), client=client, details=details
        )


def _find(keys: _Finds, organization_id: str, key_id: str) -> ApiKey:
    key = keys.get(key_id)
    if key is None or key.organization_id != organization_id:
        raise NotFound(f"No API key {key_id} in this organization.")
    return key


def _settings(key: ApiKey) -> tuple[Any, ...]:
    """What a roll must carry over unchanged."""
    return (
        key.environment,
        key.inherits_creator_permissions,
        sorted(key.scopes or ()),
        key.workspace_ids,
        key.allowed_ips,
        key.rate_limit,
        key.expires_at,
    )


def _display_prefix(raw: str) -> str:
    parsed = key_format.parse(raw)
    assert parsed is not None  # generate() makes only well-formed keys
    return parsed.display_prefix


def _summary(key: ApiKey) -> dict[str, Any]:
    """What the audit log keeps of a key: never the raw key or its digest."""
    return {
        "name": key.name,
        "key_prefix": key.key_prefix,
        "environment": key.environment,
        "scopes": None if key.scopes is None else list(key.scopes),
        "workspace_ids": None if key.workspace_ids is None else list(key.workspace_ids),
    }


def _usage_day(day: date, accepted: int, rejected: int) -> dict[str, Any]:
    """``requests`` is every use of the key, ``rejected`` the part of them refused."""
    return {"date": day.isoformat(), "requests": accepted + rejected, "rejected": rejected}
