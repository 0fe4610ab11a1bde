"""API keys and their usage in SQL. The usage upsert is the one place SQLite and PostgreSQL
are told apart: each has its own ``INSERT … ON CONFLICT`` construct."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tessera.keys.records import ApiKey
from tessera.keys.store import KeyUse
from tessera.pagination import Page
from tessera.storage import models
from tessera.storage.accounts import existing_workspaces
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database
from tessera.storage.pagination import newest_first


class SqlKeyChanges(SqlChanges):
    def get(self, key_id: str) -> ApiKey | None:
        row = self.session.get(models.ApiKey, key_id)
        return key_of(row) if row else None

    def existing_workspaces(self, organization_id: str, workspace_ids: list[str]) -> set[str]:
        return existing_workspaces(self.session, organization_id, workspace_ids)

    def add(self, key: ApiKey) -> None:
        self.session.add(row_of(key))
        self.session.flush()

    def rename(self, key_id: str, name: str) -> None:
        self._set(key_id, name=name)

    def revoke(self, key_id: str, at: datetime) -> None:
        self._set(key_id, revoked_at=at)

    def set_expiry(self, key_id: str, expires_at: datetime) -> None:
        self._set(key_id, expires_at=expires_at)

    def _set(self, key_id: str, **values: object) -> None:
        self.session.execute(
            update(models.ApiKey).where(models.ApiKey.id == key_id).values(**values)
        )


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlKeyChanges]:
        with self._db.session() as session:
            yield SqlKeyChanges(session)

    def by_digest(self, digest: str) -> ApiKey | None:
        row = self._db.first(_BY_DIGEST, {"digest": digest})
        return key_of(row) if row is not None else None

    def get(self, key_id: str) -> ApiKey | None:
        with self._db.read() as session:
            return SqlKeyChanges(session).get(key_id)

    def page(
        self, organization_id: str, *, limit: int, cursor: str | None, include_revoked: bool
    ) -> Page[ApiKey]:
        table = models.ApiKey
        query = select(table).where(table.organization_id == organization_id)
        if not include_revoked:
            query = query.where(table.revoked_at.is_(None))
        columns = (table.created_at, table.id)
        with self._db.read() as session:
            rows, next_cursor = newest_first(session, query, columns, limit=limit, cursor=cursor)
            return Page(tuple(key_of(row) for row in rows), next_cursor)


class SqlUsageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, uses: Sequence[KeyUse]) -> None:
        if not uses:
            return
        with self._db.session() as session:
            for use in uses:
                for day, (requests, rejected) in use.days.items():
                    _add_day(session, self._db.is_sqlite, use.key_id, day, requests, rejected)
                if use.last_used_at is not None:
                    last: dict[str, object] = {"last_used_at": use.last_used_at}
                    if use.last_used_network is not None:
                        last["last_used_network"] = use.last_used_network
                    session.execute(
                        update(models.ApiKey).where(models.ApiKey.id == use.key_id).values(**last)
                    )

    def days(self, key_id: str, since: date) -> dict[date, tuple[int, int]]:
        table = models.ApiKeyUsage
        query = select(table).where(table.key_id == key_id, table.day >= since)
        with self._db.read() as session:
            return {u.day: (u.requests, u.rejected) for u in session.scalars(query)}


def _add_day(
    session: Session, is_sqlite: bool, key_id: str, day: date, requests: int, rejected: int
) -> None:
    insert = sqlite_insert if is_sqlite else pg_insert
    table = models.ApiKeyUsage
    statement = insert(table).values(key_id=key_id, day=day, requests=requests, rejected=rejected)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key_id", "day"],
            set_={"requests": table.requests + requests, "rejected": table.rejected + rejected},
        )
    )


# A key-cache miss's look-up (every verification of a key not cached yet, every guessed key):
# a Core statement on a connection of its own, without a Session or an ORM object, which
# halves what a miss costs on both databases (``bench.scale``).
_TABLE = models.ApiKey.__table__
_BY_DIGEST = select(_TABLE).where(_TABLE.c.digest == bindparam("digest"))


def key_of(row: models.ApiKey | Row[Any]) -> ApiKey:
    limit = (
        (row.rate_limit_requests, row.rate_limit_per_seconds)
        if row.rate_limit_requests and row.rate_limit_per_seconds
        else None
    )
    return ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        key_prefix=row.key_prefix,
        digest=row.digest,
        environment=row.environment,
        scopes=None if row.inherits_creator_permissions else tuple(row.scopes or ()),
        workspace_ids=_tuple(row.workspace_ids),
        allowed_ips=_tuple(row.allowed_ips),
        rate_limit=limit,
        created_at=row.created_at,
        created_by=row.created_by,
        owner_user_id=row.owner_user_id,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        last_used_network=row.last_used_network,
        revoked_at=row.revoked_at,
        rolled_from=row.rolled_from,
    )


def row_of(key: ApiKey) -> models.ApiKey:
    return models.ApiKey(
        id=key.id,
        organization_id=key.organization_id,
        name=key.name,
        key_prefix=key.key_prefix,
        digest=key.digest,
        environment=key.environment,
        scopes=_list(key.scopes),
        inherits_creator_permissions=key.inherits_creator_permissions,
        workspace_ids=_list(key.workspace_ids),
        allowed_ips=_list(key.allowed_ips),
        rate_limit_requests=key.rate_limit[0] if key.rate_limit else None,
        rate_limit_per_seconds=key.rate_limit[1] if key.rate_limit else None,
        created_at=key.created_at,
        created_by=key.created_by,
        owner_user_id=key.owner_user_id,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        last_used_network=key.last_used_network,
        revoked_at=key.revoked_at,
        rolled_from=key.rolled_from,
    )


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
