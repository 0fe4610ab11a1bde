"""Refresh-token families and signing keys in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, update

from tessera.storage import models
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database
from tessera.tokens.store import KeyInfo, RefreshToken, RefreshTokenFamily


class SqlTokenChanges(SqlChanges):
    def token(self, digest: str) -> RefreshToken | None:
        query = select(models.RefreshToken).where(models.RefreshToken.digest == digest)
        row = self.session.scalars(query).first()
        return _token_of(row) if row else None

    def family(self, family_id: str) -> RefreshTokenFamily | None:
        row = self.session.get(models.RefreshTokenFamily, family_id)
        return _family_of(row) if row else None

    def add_family(self, family: RefreshTokenFamily) -> None:
        self.session.add(models.RefreshTokenFamily(**_fields(family)))
        self.session.flush()

    def add_token(self, token: RefreshToken) -> None:
        self.session.add(models.RefreshToken(**_fields(token)))
        self.session.flush()

    def spend(self, token_id: str, at: datetime) -> bool:
        # One conditional UPDATE: of two racing spends exactly one sees a row change.
        spent = self.session.execute(
            update(models.RefreshToken)
            .where(models.RefreshToken.id == token_id, models.RefreshToken.spent_at.is_(None))
            .values(spent_at=at)
        )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    def revoke_family(self, family_id: str, at: datetime) -> None:
        self._revoke(models.RefreshTokenFamily.id == family_id, at)

    def revoke_families_of(self, user_id: str, at: datetime) -> None:
        self._revoke(models.RefreshTokenFamily.user_id == user_id, at)

    def revoke_families_in(self, user_id: str, organization_id: str, at: datetime) -> None:
        table = models.RefreshTokenFamily
        self._revoke(and_(table.user_id == user_id, table.organization_id == organization_id), at)

    def _revoke(self, which: Any, at: datetime) -> None:
        table = models.RefreshTokenFamily
        self.session.execute(
            update(table).where(which, table.revoked_at.is_(None)).values(revoked_at=at)
        )


class SqlTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlTokenChanges]:
        with self._db.session() as session:
            yield SqlTokenChanges(session)

    def family(self, family_id: str) -> RefreshTokenFamily | None:
        row = self._db.first(_FAMILY, {"id": family_id})
        return _family_of(row) if row is not None else None


class SqlSigningKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[KeyInfo]:
        table = models.SigningKey
        columns = (table.kid, table.algorithm, table.public_jwk, table.created_at, table.retired_at)
        with self._db.read() as session:
            # NULL (never retired) last, in both dialects: retired_at IS NULL sorts false first.
            order = (table.created_at, table.retired_at.is_(None), table.retired_at, table.kid)
            rows = session.execute(select(*columns).order_by(*order))
            return [
                KeyInfo(kid, alg, dict(jwk), created, retired)
                for kid, alg, jwk, created, retired in rows
            ]

    def encrypted_private_key(self, kid: str) -> str | None:
        query = select(models.SigningKey.private_key).where(models.SigningKey.kid == kid)
        with self._db.read() as session:
            return session.scalar(query)

    def add_current(self, key: KeyInfo, encrypted_private_key: str) -> None:
        table = models.SigningKey
        with self._db.session() as session:
            session.execute(
                update(table).where(table.retired_at.is_(None)).values(retired_at=key.created_at)
            )
            session.add(
                table(
                    kid=key.kid,
                    algorithm=key.algorithm,
                    private_key=encrypted_private_key,
                    public_jwk=key.public_jwk,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                )
            )


def _fields(record: RefreshToken | RefreshTokenFamily) -> dict[str, Any]:
    return asdict(record)


def _token_of(row: models.RefreshToken) -> RefreshToken:
    return RefreshToken(row.id, row.digest, row.family_id, row.created_at, row.spent_at)


# Read on every request with a user token (is its family revoked?): a Core statement on a
# connection of its own, as a key-cache miss's look-up (``storage/keys.py``).
_FAMILIES = models.RefreshTokenFamily.__table__
_FAMILY = select(_FAMILIES).where(_FAMILIES.c.id == bindparam("id"))


def _family_of(row: models.RefreshTokenFamily | Row[Any]) -> RefreshTokenFamily:
    return RefreshTokenFamily(
        id=row.id,
        user_id=row.user_id,
        organization_id=row.organization_id,
        client_id=row.client_id,
        scope=row.scope,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        grant_id=row.grant_id,
    )
