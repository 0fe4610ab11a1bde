"""Service tokens: platform credentials for the product's own backends."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.clock import Clock
from tessera.errors import Unauthorized, WouldBlock
from tessera.ids import digest, new_id, new_secret
from tessera.principal import Principal
from tessera.storage.db import Database
from tessera.storage.models import ServiceToken

SERVICE_PREFIX = "svc"
CACHE_SECONDS = 30.0


def create(session: Session, name: str, now: datetime) -> tuple[ServiceToken, str]:
    raw = new_secret(SERVICE_PREFIX)
    token = ServiceToken(id=new_id("svc"), name=name, digest=digest(raw), created_at=now)
    session.add(token)
    session.flush()
    return token, raw


class ServiceTokens:
    """Checks service tokens, remembering good ones briefly: they sit on the verify hot path."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._known: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, raw: str, *, allow_database: bool = True) -> Principal:
        key = digest(raw)
        now = self._clock.timestamp()
        cached = self._known.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        if not allow_database:
            raise WouldBlock
        with self._db.read() as session:
            row = session.scalars(select(ServiceToken).where(ServiceToken.digest == key)).first()
            token_id = row.id if row is not None and row.revoked_at is None else None
        if token_id is None:
            raise Unauthorized("The service token is not valid.")
        principal = _principal(token_id)
        with self._lock:
            if len(self._known) > 1000:
                self._known.clear()
            self._known[key] = (principal, now + CACHE_SECONDS)
        return principal


def _principal(token_id: str) -> Principal:
    return Principal(kind="service", id=token_id, organization_id=None, via="service_token")
