"""Service tokens in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

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
            if row is None:
                return None
            return ServiceToken(row.id, row.name, row.digest, row.created_at, row.revoked_at)
