"""Refresh tokens: stored as digests, rotated on use, a family revoked on reuse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from tessera.clock import as_utc
from tessera.ids import digest, new_id, new_secret
from tessera.storage.models import RefreshToken, RefreshTokenFamily

REFRESH_PREFIX = "rt"


@dataclass(frozen=True)
class Rotation:
    """The outcome of presenting a refresh token."""

    family: RefreshTokenFamily | None
    new_token: str | None
    reuse_detected: bool = False

    @property
    def ok(self) -> bool:
        return self.new_token is not None


def start_family(
    session: Session,
    *,
    user_id: str,
    organization_id: str | None,
    client_id: str,
    scope: str,
    now: datetime,
    ttl_days: int,
) -> tuple[RefreshTokenFamily, str]:
    family = RefreshTokenFamily(
        id=new_id("rtf"),
        user_id=user_id,
        organization_id=organization_id,
        client_id=client_id,
        scope=scope,
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
    )
    session.add(family)
    session.flush()
    return family, _issue(session, family.id, now)


def rotate(session: Session, raw_token: str, now: datetime) -> Rotation:
    """Spend ``raw_token`` and issue its successor.

    The spend is one conditional UPDATE, so of two requests racing with the same token exactly
    one sees a row change; the other is treated as reuse and ends the family.
    """
    token = session.query(RefreshToken).filter_by(digest=digest(raw_token)).one_or_none()
    if token is None:
        return Rotation(None, None)
    family = session.get(RefreshTokenFamily, token.family_id)
    if family is None or family.revoked_at is not None or as_utc(family.expires_at) <= now:
        return Rotation(family, None)
    spent = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.spent_at.is_(None))
        .values(spent_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, family.id, now)
        return Rotation(family, None, reuse_detected=True)
    return Rotation(family, _issue(session, family.id, now))


def revoke_family(session: Session, family_id: str, now: datetime) -> None:
    session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def end_families_in(session: Session, user_id: str, organization_id: str, now: datetime) -> None:
    """End every family of ``user_id`` bound to ``organization_id`` (they left it)."""
    session.execute(
        update(RefreshTokenFamily)
        .where(
            RefreshTokenFamily.user_id == user_id,
            RefreshTokenFamily.organization_id == organization_id,
            RefreshTokenFamily.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def family_of(session: Session, raw_token: str) -> RefreshTokenFamily | None:
    token = session.query(RefreshToken).filter_by(digest=digest(raw_token)).one_or_none()
    return session.get(RefreshTokenFamily, token.family_id) if token else None


def _issue(session: Session, family_id: str, now: datetime) -> str:
    raw = new_secret(REFRESH_PREFIX)
    session.add(
        RefreshToken(id=new_id("rtk"), digest=digest(raw), family_id=family_id, created_at=now)
    )
    return raw
