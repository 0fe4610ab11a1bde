"""Service tokens in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select, update

from tessera.service_tokens import ServiceToken
from tessera.storage import models
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database


class SqlServiceTokenChanges(SqlChanges):
    def add(self, token: ServiceToken) -> None:
        self.session.add(
            models.ServiceToken(
                id=token.id,
                name=token.name,
                digest=token.digest,
                created_at=token.created_at,
                revoked_at=token.revoked_at,
            )
        )
        self.session.flush()

    def get(self, token_id: str) -> ServiceToken | None:
        query = select(models.ServiceToken).where(models.ServiceToken.id == token_id)
        row = self.session.scalars(query.with_for_update()).first()
        return _token(row) if row is not None else None

    def revoke(self, token_id: str, now: datetime) -> None:
        self.session.execute(
            update(models.ServiceToken)
            .where(models.ServiceToken.id == token_id, models.ServiceToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class SqlServiceTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlServiceTokenChanges]:
        with self._db.session() as session:
            yield SqlServiceTokenChanges(session)

    def by_digest(self, digest: str) -> ServiceToken | None:
        query = select(models.ServiceToken).where(models.ServiceToken.digest == digest)
        with self._db.read() as session:
            row = session.scalars(query).first()
            return _token(row) if row is not None else None

    def every(self) -> list[ServiceToken]:
        query = select(models.ServiceToken).order_by(
            models.ServiceToken.created_at, models.ServiceToken.id
        )
        with self._db.read() as session:
            return [_token(row) for row in session.scalars(query)]


def _token(row: models.ServiceToken) -> ServiceToken:
    return ServiceToken(row.id, row.name, row.digest, row.created_at, row.revoked_at)
