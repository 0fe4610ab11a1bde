"""Service tokens: platform credentials for the product's own backends."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tessera import audit
from tessera.authz.decision import Refused
from tessera.clock import Clock
from tessera.errors import Unauthorized, WouldBlock
from tessera.ids import digest, new_id, new_secret
from tessera.principal import Principal

SERVICE_PREFIX = "svc"
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceToken:
    id: str
    name: str
    digest: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None


class ServiceTokenChanges(audit.AuditWriter, Protocol):
    def add(self, token: ServiceToken) -> None: ...


class ServiceTokenStore(Protocol):
    def by_digest(self, digest: str) -> ServiceToken | None: ...

    def transaction(self) -> AbstractContextManager[ServiceTokenChanges]: ...


class ServiceTokens:
    """Makes service tokens, and checks them, remembering good ones briefly: they sit on the
    verify hot path."""

    def __init__(self, store: ServiceTokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._known: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str) -> tuple[ServiceToken, str]:
        """A new token and its raw value, which exists only in what this returns."""
        now = self._clock.now()
        raw = new_secret(SERVICE_PREFIX)
        token = ServiceToken(new_id("svc"), name, digest(raw), now)
        with self._store.transaction() as tx:
            tx.add(token)
            tx.record(
                audit.event(
                    "service_token.created",
                    now=now,
                    organization_id=None,
                    actor=audit.SYSTEM,
                    target=("service_token", token.id),
                    details={"name": name},
                )
            )
        return token, raw

    def service_principal(self, raw: str, *, allow_database: bool) -> Principal | Refused:
        """The token's service, or the refusal; with ``allow_database=False`` only remembered
        tokens answer, and :class:`WouldBlock` is raised when a look-up would wait."""
        key = digest(raw)
        now = self._clock.timestamp()
        cached = self._known.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        if not allow_database:
            raise WouldBlock
        token = self._store.by_digest(key)
        if token is None or token.revoked_at is not None:
            return Refused("unauthorized", "The service token is not valid.")
        principal = _principal(token.id)
        with self._lock:
            if len(self._known) > 1000:
                self._known.clear()
            self._known[key] = (principal, now + CACHE_SECONDS)
        return principal

    def authenticate(self, raw: str) -> Principal:
        """The token's service; :class:`Unauthorized` when it is not a live token."""
        found = self.service_principal(raw, allow_database=True)
        if isinstance(found, Refused):
            raise Unauthorized(found.detail)
        return found


def _principal(token_id: str) -> Principal:
    return Principal(kind="service", id=token_id, organization_id=None, via="service_token")
