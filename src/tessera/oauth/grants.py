"""Grants: what a person consented to, listed and revoked; whether a grant or client still
lives, remembered briefly in a cache that every revocation evicts on every instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from tessera import audit
from tessera.clock import Clock
from tessera.errors import NotFound
from tessera.ids import new_id
from tessera.keys.cache import EvictionChannel, Subscribe, TtlCache
from tessera.oauth.records import OAuthClient, OAuthGrant
from tessera.oauth.store import OAuthStore
from tessera.principal import ClientInfo
from tessera.text import is_clean

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000
EVICTION_TOPIC = "oauth"


# What the cache remembers of a grant or a client: the client it belongs to (for a grant) and
# the scopes it allows now. A revoked grant or a deleted client is not remembered.
Allowance = tuple[str, frozenset[str]]


class OAuthGrants:
    def __init__(self, store: OAuthStore, clock: Clock, *, subscribe: Subscribe | None) -> None:
        self._store = store
        self._clock = clock
        self._live: TtlCache[Allowance] = TtlCache(
            clock, ttl=CACHE_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._bus: EvictionChannel | None = (
            subscribe(EVICTION_TOPIC, self._live) if subscribe else None
        )

    def grant_scopes(self, grant_id: str) -> frozenset[str] | None:
        """What the grant allows now, within its client's scopes; None once the grant is
        revoked or its client deleted."""
        found = self._remembered(grant_id, self._grant_of)
        if found is None:
            return None
        client_id, scopes = found
        client = self.client_scopes(client_id)
        return None if client is None else scopes & client

    def client_scopes(self, client_id: str) -> frozenset[str] | None:
        """The client's scopes now; None once it is deleted."""
        found = self._remembered(client_id, self._client_of)
        return None if found is None else found[1]

    def is_live(self, grant_id: str) -> bool:
        """Whether the grant has not been revoked and its client not deleted."""
        return self.grant_scopes(grant_id) is not None

    def client_lives(self, client_id: str) -> bool:
        return self.client_scopes(client_id) is not None

    def forget(self, ids: list[str]) -> None:
        """Evict grants or clients that have just changed or ended, here and on every other
        instance."""
        for key in ids:
            self._live.evict(key)
        if self._bus is not None:
            self._bus.publish(*ids)  # announced together, acknowledged within one lease

    def consent(
        self,
        client: OAuthClient,
        user_id: str,
        organization_id: str,
        scopes: frozenset[str],
        info: ClientInfo,
    ) -> OAuthGrant:
        """The person's live grant to the client, created or widened to cover ``scopes``."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            grant = tx.live_grant(client.id, user_id, organization_id)
            if grant is not None and grant.scopes >= scopes:
                return grant
            widened = grant is not None
            if grant is None:
                grant = OAuthGrant(new_id("grt"), client.id, user_id, organization_id, "", now)
            grant = replace(grant, scope=" ".join(sorted(grant.scopes | scopes)))
            tx.save_grant(grant)
            tx.record(_event("oauth_grant.created", grant, user_id, now, info))
        if widened:  # what is remembered of it is now too narrow; a new grant is in no cache
            self.forget([grant.id])
        return grant

    def remembered(
        self, client_id: str, user_id: str, organization_id: str, scopes: frozenset[str]
    ) -> bool:
        """Whether the person already allowed this client every one of ``scopes``."""
        with self._store.transaction() as tx:
            grant = tx.live_grant(client_id, user_id, organization_id)
        return grant is not None and grant.scopes >= scopes

    def of_person(self, user_id: str) -> list[OAuthGrant]:
        return self._store.grants_of(user_id)

    def revoke(self, user_id: str, grant_id: str, info: ClientInfo) -> OAuthGrant:
        """End the person's grant and every token issued under it, on every instance.

        Repeating it for an ended grant changes nothing but tells every instance again, so
        that a revocation answered ``503`` (saved, not yet acknowledged) is confirmed by
        repeating the request, as for keys."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            grant = tx.grant(grant_id) if is_clean(grant_id) else None
            if grant is None or grant.user_id != user_id:
                raise NotFound(f"No grant {grant_id}.")
            if grant.revoked_at is None:
                grant = replace(grant, revoked_at=now)
                tx.save_grant(grant)
                tx.end_families_of([grant.id], now)
                tx.record(_event("oauth_grant.revoked", grant, user_id, now, info))
        self.forget([grant.id])
        return grant

    def touch(self, grant_id: str) -> None:
        self._store.touch_grant(grant_id, self._clock.now())

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()

    def _remembered(self, key: str, look_up: Callable[[str], Allowance | None]) -> Allowance | None:
        cached = self._live.get(key)
        if cached is not None:
            return cached
        self._live.lease.check_fallback()  # without a lease: the database, or 503 when told
        generation = self._live.generation
        found = look_up(key)
        if found is not None:
            self._live.put(key, found, read_at_generation=generation)
        return found

    def _grant_of(self, grant_id: str) -> Allowance | None:
        grant = self._store.grant(grant_id)
        if grant is None or grant.revoked_at is not None:
            return None
        return grant.client_id, grant.scopes

    def _client_of(self, client_id: str) -> Allowance | None:
        client = self._store.client(client_id)
        if client is None or client.deleted_at is not None:
            return None
        return client.id, frozenset(client.scopes)


def _event(
    action: audit.Action, grant: OAuthGrant, user_id: str, now: datetime, info: ClientInfo
) -> audit.AuditEvent:
    return audit.event(
        action,
        now=now,
        organization_id=grant.organization_id,
        actor=("user", user_id),
        target=("oauth_grant", grant.id),
        client=info,
        details={"client_id": grant.client_id, "scope": grant.scope},
    )
