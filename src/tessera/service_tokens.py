"""Service tokens: platform credentials for the product's own backends.

Only the operator makes, lists and revokes them, with the CLI: a service token sees every
organization. They are stored as digests, remembered briefly (they sit on the verify hot
path) in a cache that a revocation evicts on every instance, like an API key's.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from tessera import audit
from tessera.authz.decision import Refused
from tessera.clock import Clock
from tessera.errors import NotFound, Unauthorized, WouldBlock
from tessera.ids import digest, new_id, new_secret
from tessera.keys.cache import CacheHold, EvictionChannel, Subscribe, TtlCache
from tessera.principal import Principal

SERVICE_PREFIX = "svc"
CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 1000
EVICTION_TOPIC = "service_token"
NOT_VALID = "The service token is not valid."


@dataclass(frozen=True)
class ServiceToken:
    id: str
    name: str
    digest: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None


class ServiceTokenChanges(audit.AuditWriter, Protocol):
    def add(self, token: ServiceToken) -> None: ...

    def get(self, token_id: str) -> ServiceToken | None: ...

    def revoke(self, token_id: str, now: datetime) -> None: ...


class ServiceTokenStore(Protocol):
    def by_digest(self, digest: str) -> ServiceToken | None: ...

    def every(self) -> list[ServiceToken]:
        """Every token, revoked ones too, oldest first."""
        ...

    def transaction(self) -> AbstractContextManager[ServiceTokenChanges]: ...


class ServiceTokens:
    """Makes, lists, revokes and checks service tokens."""

    def __init__(
        self, store: ServiceTokenStore, clock: Clock, *, subscribe: Subscribe | None = None
    ) -> None:
        """``subscribe`` connects the cache to the other instances' evictions."""
        self._store = store
        self._clock = clock
        self._known: TtlCache[Principal] = TtlCache(
            clock, ttl=CACHE_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._bus: EvictionChannel | None = (
            subscribe(EVICTION_TOPIC, self._known) if subscribe else None
        )

    def create(self, name: str) -> tuple[ServiceToken, str]:
        """A new token and its raw value, which exists only in what this returns."""
        now = self._clock.now()
        raw = new_secret(SERVICE_PREFIX)
        token = ServiceToken(new_id("svc"), name, digest(raw), now)
        with self._store.transaction() as tx:
            tx.add(token)
            tx.record(_event("service_token.created", token, now, {"name": name}))
        return token, raw

    def list(self) -> list[ServiceToken]:
        return self._store.every()

    def revoke(self, token_id: str) -> ServiceToken:
        """End a token on every instance; returns once none of them accepts it any more."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            token = tx.get(token_id)
            if token is None:
                raise NotFound(f"No service token {token_id}.")
            if token.revoked_at is None:
                token = replace(token, revoked_at=now)
                tx.revoke(token_id, now)
                tx.record(_event("service_token.revoked", token, now, {"name": token.name}))
        self._known.evict(token.digest)
        if self._bus is not None:
            self._bus.publish(token.digest)
        return token

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()

    def service_principal(self, raw: str, *, allow_database: bool) -> Principal | Refused:
        """The token's service, or the refusal; with ``allow_database=False`` only remembered
        tokens answer, and :class:`WouldBlock` is raised when a look-up would wait."""
        key = digest(raw)
        cached = self._known.get(key)
        if cached is not None:
            return cached
        if not allow_database:
            raise WouldBlock
        self._known.lease.check_fallback()
        generation = self._known.generation
        token = self._store.by_digest(key)
        if token is None or token.revoked_at is not None:
            return Refused("unauthorized", NOT_VALID)
        principal = _principal(token.id)
        self._known.put(key, principal, read_at_generation=generation)
        return principal

    def hold(self, raw: str) -> CacheHold | None:
        """The cache entry that says ``raw`` is a live token, when there is one: :meth:`holds`
        says later, in a dictionary look-up and two comparisons, whether it still stands (a
        revocation, here or on another instance, evicts it)."""
        key = digest(raw)
        entry = self._known.entry(key)
        return None if entry is None else CacheHold(key, entry)

    def holds(self, hold: CacheHold) -> bool:
        return self._known.still_holds(hold.key, hold.entry)

    def authenticate(self, raw: str) -> Principal:
        """The token's service; :class:`Unauthorized` when it is not a live token."""
        found = self.service_principal(raw, allow_database=True)
        if isinstance(found, Refused):
            raise Unauthorized(found.detail)
        return found


def _principal(token_id: str) -> Principal:
    return Principal(kind="service", id=token_id, organization_id=None, via="service_token")


def _event(
    action: audit.Action, token: ServiceToken, now: datetime, details: dict[str, str]
) -> audit.AuditEvent:
    return audit.event(
        action,
        now=now,
        organization_id=None,
        actor=audit.SYSTEM,
        target=("service_token", token.id),
        details=details,
    )
