"""The lifecycle of API keys: create, list, read, rename, revoke, roll, usage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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
from tessera.keys.rules import KeySpec
from tessera.keys.usage import UsageRecorder
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ScopeCatalog
from tessera.storage.accounts import existing_workspaces
from tessera.storage.db import Database
from tessera.storage.models import ApiKey, ApiKeyUsage
from tessera.storage.pagination import newest_first

IMMUTABLE_FIELDS = ("scopes", "workspace_ids", "environment", "allowed_ips", "rate_limit")
MAX_GRACE_SECONDS = 604_800


@dataclass(frozen=True)
class NewKey:
    """A created key and its raw value, which exists only in this object."""

    row: ApiKey
    raw: str


@dataclass(frozen=True)
class KeyPage:
    rows: list[ApiKey]
    next_cursor: str | None


class ApiKeys:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        catalog: ScopeCatalog,
        usage: UsageRecorder,
        on_change: Callable[[str], None],
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._catalog = catalog
        self._usage = usage
        self._on_change = on_change  # evicts a digest from every verification cache

    def create(self, actor: Principal, spec: KeySpec, client: ClientInfo) -> NewKey:
        organization_id = actor.organization()
        now = self._clock.now()
        with self._db.session() as session:
            new = self._insert(session, actor, organization_id, spec, now)
            self._audit(session, "api_key.created", actor, new.row, client, _summary(new.row))
        return new

    def page(
        self,
        organization_id: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        include_revoked: bool = False,
    ) -> KeyPage:
        query = select(ApiKey).where(ApiKey.organization_id == organization_id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        columns = (ApiKey.created_at, ApiKey.id)
        with self._db.read() as session:
            rows, next_cursor = newest_first(session, query, columns, limit=limit, cursor=cursor)
        return KeyPage([self._with_pending_use(r) for r in rows], next_cursor)

    def get(self, organization_id: str, key_id: str) -> ApiKey:
        with self._db.read() as session:
            return self._with_pending_use(_find(session, organization_id, key_id))

    def update(
        self, actor: Principal, key_id: str, changes: dict[str, Any], client: ClientInfo
    ) -> ApiKey:
        touched = [f for f in IMMUTABLE_FIELDS if f in changes]
        if touched:
            raise ImmutableField(
                f"{', '.join(touched)} cannot change; revoke this key and create a new one.",
                errors=[FieldError(f, "immutable: revoke and create a new key") for f in touched],
            )
        with self._db.session() as session:
            row = _find(session, actor.organization(), key_id)
            if "name" in changes:
                before = row.name
                row.name = rules.check_name(str(changes["name"] or ""))
                self._audit(
                    session, "api_key.updated", actor, row, client, {"name": [before, row.name]}
                )
        return self._with_pending_use(row)

    def revoke(self, actor: Principal, key_id: str, client: ClientInfo) -> ApiKey:
        with self._db.session() as session:
            row = _find(session, actor.organization(), key_id)
            if row.revoked_at is None:
                row.revoked_at = self._clock.now()
                self._audit(session, "api_key.revoked", actor, row, client, _summary(row))
        self._on_change(row.digest)
        return row

    def roll(
        self, actor: Principal, key_id: str, expires_old_in_seconds: int, client: ClientInfo
    ) -> NewKey:
        if not 0 <= expires_old_in_seconds <= MAX_GRACE_SECONDS:
            raise ValidationFailed(
                f"expires_old_in_seconds must be 0 to {MAX_GRACE_SECONDS}.",
                errors=[FieldError("expires_old_in_seconds", f"0 to {MAX_GRACE_SECONDS}")],
            )
        now = self._clock.now()
        with self._db.session() as session:
            old = _find(session, actor.organization(), key_id)
            if old.revoked_at is not None:
                raise Conflict("A revoked key cannot be rolled.")
            new = self._successor(session, old, actor, now)
            grace_end = now + timedelta(seconds=expires_old_in_seconds)
            if old.expires_at is None or grace_end < old.expires_at:
                old.expires_at = grace_end
            details = {"new_key_id": new.row.id, "old_expires_at": grace_end.isoformat()}
            self._audit(session, "api_key.rolled", actor, old, client, details)
        self._on_change(old.digest)
        return new

    def usage(self, organization_id: str, key_id: str, days: int) -> list[dict[str, Any]]:
        if not 1 <= days <= 366:
            raise ValidationFailed(
                "days must be 1 to 366.", errors=[FieldError("days", "1 to 366")]
            )
        today = self._clock.now().date()
        first = today - timedelta(days=days - 1)
        with self._db.read() as session:
            _find(session, organization_id, key_id)
            stored = session.scalars(
                select(ApiKeyUsage).where(ApiKeyUsage.key_id == key_id, ApiKeyUsage.day >= first)
            )
            counts: dict[date, list[int]] = {u.day: [u.requests, u.rejected] for u in stored}
        for day, (requests, rejected) in self._usage.pending(key_id).items():
            entry = counts.setdefault(day, [0, 0])
            entry[0] += requests
            entry[1] += rejected
        series = (first + timedelta(days=i) for i in range(days))
        return [
            {
                "date": d.isoformat(),
                "requests": counts.get(d, [0, 0])[0],
                "rejected": counts.get(d, [0, 0])[1],
            }
            for d in series
        ]

    def _insert(
        self,
        session: Session,
        actor: Principal,
        organization_id: str,
        spec: KeySpec,
        now: datetime,
        rolled_from: str | None = None,
    ) -> NewKey:
        """Every key, created or rolled, passes the same rules with the caller as creator."""
        scopes = rules.granted_scopes(self._catalog, actor, spec.scopes)
        environment = rules.checked_environment(actor, spec.environment)
        default_limit = (self._config.rate_limit.requests, self._config.rate_limit.per_seconds)
        limit = rules.checked_rate_limit(actor, spec.rate_limit, default_limit)
        raw = key_format.generate(self._config.key_prefix, environment)
        row = ApiKey(
            id=new_id("key"),
            organization_id=organization_id,
            name=rules.check_name(spec.name),
            key_prefix=_display_prefix(raw),
            digest=digest(raw),
            environment=environment,
            scopes=scopes,
            inherits_creator_permissions=scopes is None,
            workspace_ids=rules.checked_workspaces(
                partial(existing_workspaces, session), actor, organization_id, spec.workspace_ids
            ),
            allowed_ips=rules.checked_networks(actor, spec.allowed_ips),
            rate_limit_requests=limit[0] if limit else None,
            rate_limit_per_seconds=limit[1] if limit else None,
            created_at=now,
            created_by=actor.id,
            owner_user_id=actor.user_id,
            expires_at=rules.checked_expiry(self._config, actor, spec.expires_at, now),
            rolled_from=rolled_from,
        )
        session.add(row)
        session.flush()
        return NewKey(row, raw)

    def _successor(self, session: Session, old: ApiKey, actor: Principal, now: datetime) -> NewKey:
        """A roll is a creation by the caller with the old key's settings (SPEC section 2)."""
        if old.inherits_creator_permissions and actor.kind != "user":
            raise Forbidden(
                "This key inherits its creator's permissions; only a person can roll it."
            )
        spec = KeySpec(
            name=old.name,
            scopes=None if old.inherits_creator_permissions else list(old.scopes or ()),
            workspace_ids=old.workspace_ids,
            environment=old.environment,
            expires_at=old.expires_at,
            allowed_ips=old.allowed_ips,
            rate_limit=(
                (old.rate_limit_requests, old.rate_limit_per_seconds)
                if old.rate_limit_requests and old.rate_limit_per_seconds
                else None
            ),
        )
        new = self._insert(session, actor, old.organization_id, spec, now, rolled_from=old.id)
        if _settings(new.row) != _settings(old):
            # The rules filled an unbounded setting with the caller's narrower own bound.
            raise Forbidden("The caller cannot create a key with this key's settings.")
        return new

    def _with_pending_use(self, row: ApiKey) -> ApiKey:
        """Show a use that is counted in memory but not yet written."""
        pending = self._usage.pending_last_used(row.id)
        if pending is not None:
            row.last_used_at = pending
        return row

    def _audit(
        self,
        session: Session,
        action: str,
        actor: Principal,
        row: ApiKey,
        client: ClientInfo,
        details: dict[str, Any],
    ) -> None:
        audit.record(
            session,
            action,
            now=self._clock.now(),
            organization_id=row.organization_id,
            actor=audit.actor_of(actor),
            target=("api_key", row.id),
            client=client,
            details=details,
        )


def _find(session: Session, organization_id: str, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound(f"No API key {key_id} in this organization.")
    return row


def _settings(row: ApiKey) -> tuple[Any, ...]:
    """What a roll must carry over unchanged."""
    return (
        row.environment,
        row.inherits_creator_permissions,
        sorted(row.scopes or ()),
        row.workspace_ids,
        row.allowed_ips,
        (row.rate_limit_requests, row.rate_limit_per_seconds),
        row.expires_at,
    )


def _display_prefix(raw: str) -> str:
    parsed = key_format.parse(raw)
    assert parsed is not None  # generate() makes only well-formed keys
    return parsed.display_prefix


def _summary(row: ApiKey) -> dict[str, Any]:
    """What the audit log keeps of a key: never the raw key or its digest."""
    return {
        "name": row.name,
        "key_prefix": row.key_prefix,
        "environment": row.environment,
        "scopes": row.scopes,
        "workspace_ids": row.workspace_ids,
    }
