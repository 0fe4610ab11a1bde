"""OAuth clients, grants and authorization codes in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from tessera.oauth.records import AuthorizationCode, OAuthClient, OAuthGrant
from tessera.storage import models
from tessera.storage.audit import SqlChanges
from tessera.storage.db import Database


class SqlOAuthChanges(SqlChanges):
    def client(self, client_id: str) -> OAuthClient | None:
        row = self.session.get(models.OAuthClient, client_id)
        return client_of(row) if row else None

    def save_client(self, client: OAuthClient) -> None:
        fields: dict[str, Any] = asdict(client)
        fields["redirect_uris"] = list(client.redirect_uris)
        fields["scopes"] = list(client.scopes)
        self.session.merge(models.OAuthClient(**fields))
        self.session.flush()

    def grant(self, grant_id: str) -> OAuthGrant | None:
        row = self.session.get(models.OAuthGrant, grant_id)
        return grant_of(row) if row else None

    def live_grant(self, client_id: str, user_id: str, organization_id: str) -> OAuthGrant | None:
        table = models.OAuthGrant
        query = select(table).where(
            table.client_id == client_id,
            table.user_id == user_id,
            table.organization_id == organization_id,
            table.revoked_at.is_(None),
        )
        row = self.session.scalars(query.order_by(table.created_at.desc())).first()
        return grant_of(row) if row else None

    def save_grant(self, grant: OAuthGrant) -> None:
        self.session.merge(models.OAuthGrant(**asdict(grant)))
        self.session.flush()

    def revoke_grants_of_client(self, client_id: str, at: datetime) -> list[str]:
        table = models.OAuthGrant
        live = (table.client_id == client_id, table.revoked_at.is_(None))
        ids = list(self.session.scalars(select(table.id).where(*live)))
        self.session.execute(update(table).where(*live).values(revoked_at=at))
        return ids

    def end_families_of(self, grant_ids: list[str], at: datetime) -> None:
        if not grant_ids:
            return
        table = models.RefreshTokenFamily
        self.session.execute(
            update(table)
            .where(table.grant_id.in_(grant_ids), table.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    def add_code(self, code: AuthorizationCode) -> None:
        self.session.add(models.OAuthCode(**asdict(code)))
        self.session.flush()

    def code(self, digest: str) -> AuthorizationCode | None:
        query = select(models.OAuthCode).where(models.OAuthCode.digest == digest)
        row = self.session.scalars(query).first()
        return code_of(row) if row else None

    def spend_code(self, code_id: str, at: datetime) -> bool:
        # One conditional UPDATE: of two racing exchanges exactly one sees a row change.
        table = models.OAuthCode
        spent = self.session.execute(
            update(table).where(table.id == code_id, table.used_at.is_(None)).values(used_at=at)
        )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    def set_code_family(self, code_id: str, family_id: str) -> None:
        table = models.OAuthCode
        self.session.execute(update(table).where(table.id == code_id).values(family_id=family_id))


class SqlOAuthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[SqlOAuthChanges]:
        with self._db.session() as session:
            yield SqlOAuthChanges(session)

    def client(self, client_id: str) -> OAuthClient | None:
        with self._db.read() as session:
            return SqlOAuthChanges(session).client(client_id)

    def clients(self, organization_id: str) -> list[OAuthClient]:
        table = models.OAuthClient
        query = select(table).where(
            table.organization_id == organization_id, table.deleted_at.is_(None)
        )
        with self._db.read() as session:
            rows = session.scalars(query.order_by(table.created_at, table.id))
            return [client_of(row) for row in rows]

    def grant(self, grant_id: str) -> OAuthGrant | None:
        with self._db.read() as session:
            return SqlOAuthChanges(session).grant(grant_id)

    def grants_of(self, user_id: str) -> list[OAuthGrant]:
        table = models.OAuthGrant
        query = select(table).where(table.user_id == user_id, table.revoked_at.is_(None))
        with self._db.read() as session:
            rows = session.scalars(query.order_by(table.created_at.desc(), table.id))
            return [grant_of(row) for row in rows]

    def touch_grant(self, grant_id: str, at: datetime) -> None:
        table = models.OAuthGrant
        with self._db.session() as session:
            session.execute(update(table).where(table.id == grant_id).values(last_used_at=at))


def client_of(row: models.OAuthClient) -> OAuthClient:
    return OAuthClient(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        type="public" if row.type == "public" else "confidential",
        redirect_uris=tuple(row.redirect_uris),
        scopes=tuple(row.scopes),
        secret_digest=row.secret_digest,
        created_at=row.created_at,
        created_by=row.created_by,
        deleted_at=row.deleted_at,
    )


def grant_of(row: models.OAuthGrant) -> OAuthGrant:
    return OAuthGrant(
        id=row.id,
        client_id=row.client_id,
        user_id=row.user_id,
        organization_id=row.organization_id,
        scope=row.scope,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def code_of(row: models.OAuthCode) -> AuthorizationCode:
    return AuthorizationCode(
        id=row.id,
        digest=row.digest,
        grant_id=row.grant_id,
        client_id=row.client_id,
        user_id=row.user_id,
        organization_id=row.organization_id,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        nonce=row.nonce,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        auth_time=row.auth_time,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        family_id=row.family_id,
    )
