"""Refresh tokens: stored as digests, rotated on use, a family revoked on reuse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera.ids import digest, new_id, new_secret
from tessera.tokens.store import RefreshToken, RefreshTokenFamily, TokenChanges

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
    tx: TokenChanges,
    *,
    user_id: str,
    organization_id: str | None,
    client_id: str,
    scope: str,
    now: datetime,
    ttl_days: int,
    grant_id: str | None = None,
) -> tuple[RefreshTokenFamily, str]:
    family = RefreshTokenFamily(
        id=new_id("rtf"),
        user_id=user_id,
        organization_id=organization_id,
        client_id=client_id,
        scope=scope,
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
        grant_id=grant_id,
    )
    tx.add_family(family)
    return family, _issue(tx, family.id, now)


def rotate(tx: TokenChanges, raw_token: str, now: datetime) -> Rotation:
    """Spend ``raw_token`` and issue its successor.

    Of two requests racing with the same token exactly one spends it (``TokenChanges.spend``);
    the other is treated as reuse and ends the family.
    """
    token = tx.token(digest(raw_token))
    if token is None:
        return Rotation(None, None)
    family = tx.family(token.family_id)
    if family is None or family.revoked_at is not None or family.expires_at <= now:
        return Rotation(family, None)
    if not tx.spend(token.id, now):
        tx.revoke_family(family.id, now)
        return Rotation(family, None, reuse_detected=True)
    return Rotation(family, _issue(tx, family.id, now))


def family_of(tx: TokenChanges, raw_token: str) -> RefreshTokenFamily | None:
    token = tx.token(digest(raw_token))
    return tx.family(token.family_id) if token else None


def _issue(tx: TokenChanges, family_id: str, now: datetime) -> str:
    raw = new_secret(REFRESH_PREFIX)
    tx.add_token(RefreshToken(new_id("rtk"), digest(raw), family_id, now))
    return raw
