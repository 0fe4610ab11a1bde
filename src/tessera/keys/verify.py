"""What a presented API key is: the key authenticator of the authorization pipeline.

A key is looked up by its digest once, then served from a bounded cache (``keys/cache.py``).
Judging it is pure: format, revocation, expiry, the client's address, its creator's role for a
key that inherits it. What the request then asks of the key (workspace, quota, scopes) is the
pipeline's (``authz/``); each decision about an existing key is counted as a use, in memory
(``keys/usage.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

from tessera.accounts.store import AccountStore
from tessera.clock import Clock, as_utc
from tessera.errors import WouldBlock
from tessera.ids import digest, same_digest
from tessera.keys import format as key_format
from tessera.keys.cache import EvictionChannel, Subscribe, TtlCache
from tessera.keys.records import KeyRecord, key_principal
from tessera.keys.store import KeyStore
from tessera.keys.usage import UsageRecorder
from tessera.principal import Principal
from tessera.scopes import ScopeCatalog

KeyCode = Literal["valid", "malformed", "not_found", "expired", "revoked", "ip_forbidden"]
CACHE_TTL_SECONDS = 5.0
CACHE_MAX_ENTRIES = 50_000
_MISSING = "missing"
EVICTION_TOPIC = "api_key"


@dataclass(frozen=True)
class KeyIdentity:
    """What a presented API key is: its record when it exists, its principal when it may act."""

    code: KeyCode
    record: KeyRecord | None = None
    principal: Principal | None = None


class KeyHold(NamedTuple):
    """A valid key's cache entry as :meth:`KeyVerifier.hold` read it."""

    digest: str
    entry: tuple[float, Any]
    expires: float  # the key's expiry (POSIX seconds), or infinity
    principal: Principal  # the answer it gave


class _Cached(NamedTuple):
    """A cached key: its record, and the answer for it until it expires, built once for a key
    judged from memory alone (its own scopes, so its principal never changes while it is
    cached; not revoked; no networks to check the client's address against)."""

    record: KeyRecord
    valid: KeyIdentity | None


MALFORMED = KeyIdentity("malformed")
NOT_FOUND = KeyIdentity("not_found")


class KeyVerifier:
    def __init__(
        self,
        key_prefix: str,
        *,
        keys: KeyStore,
        accounts: AccountStore,
        clock: Clock,
        catalog: ScopeCatalog,
        usage: UsageRecorder,
        subscribe: Subscribe | None = None,
    ) -> None:
        """``subscribe`` connects this verifier's cache to the other instances' evictions."""
        self._prefix = key_prefix
        self._keys = keys
        self._accounts = accounts
        self._clock = clock
        self._catalog = catalog
        self._usage = usage
        self._cache: TtlCache[_Cached | str] = TtlCache(
            clock, ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._workspaces: TtlCache[str] = TtlCache(
            clock, ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._bus: EvictionChannel | None = (
            subscribe(EVICTION_TOPIC, self._cache) if subscribe else None
        )

    def forget(self, key_digest: str) -> None:
        """Evict a key everywhere: here at once, and on other instances through Redis."""
        self._cache.evict(key_digest)
        if self._bus is not None:
            self._bus.publish(key_digest)

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()

    def load(self, key_digest: str) -> KeyRecord | None:
        self._cache.lease.check_fallback()
        generation = self._cache.generation
        key = self._keys.by_digest(key_digest)
        matches = key is not None and same_digest(key.digest, key_digest)
        if key is None or not matches:
            self._cache.put(key_digest, _MISSING, read_at_generation=generation)
            return None
        record = KeyRecord.of(key)
        from_memory = (
            record.principal is not None
            and record.revoked_at is None
            and record.allowed_networks is None
        )
        valid = KeyIdentity("valid", record, record.principal) if from_memory else None
        self._cache.put(key_digest, _Cached(record, valid), read_at_generation=generation)
        return record

    def identify(self, raw: str, *, client_ip: str | None, allow_database: bool) -> KeyIdentity:
        """What ``raw`` is, from the client at ``client_ip``; with ``allow_database=False`` it
        raises :class:`WouldBlock` rather than wait on the database."""
        key_digest = digest(raw)
        found = self._cache.get(key_digest)
        if found is None:  # only digests of well-formed keys are ever cached
            if key_format.parse(raw, self._prefix) is None:
                return MALFORMED
            if not allow_database:
                raise WouldBlock
            record = self.load(key_digest)
            return NOT_FOUND if record is None else self._judge(record, client_ip)
        if found.__class__ is str:
            return NOT_FOUND
        assert isinstance(found, _Cached)
        record, valid = found
        if valid is not None and (
            record.expires_at is None or record.expires_at > self._clock.now()
        ):
            return valid
        if record.scopes is None and not allow_database:
            raise WouldBlock  # an inheriting key asks for its creator's role
        return self._judge(record, client_ip)

    def hold(self, key_digest: str) -> KeyHold | None:
        """What :meth:`identify` read to call the key of this digest valid from memory alone,
        when it did (a key with its own scopes and no networks): :meth:`holds` says later, in a
        dictionary look-up and two comparisons, whether that answer still stands."""
        entry = self._cache.entry(key_digest)
        if entry is None or entry[1].__class__ is not _Cached:
            return None
        record, valid = entry[1]
        if valid is None or valid.principal is None:
            return None
        expires = as_utc(record.expires_at).timestamp() if record.expires_at else math.inf
        return KeyHold(key_digest, entry, expires, valid.principal)

    def holds(self, hold: KeyHold) -> bool:
        """Whether the key's cached answer is still the one :meth:`hold` saw (not evicted by a
        revocation here or on another instance, not expired, under the lease) and the key has
        not expired since."""
        return self._cache.still_holds(hold.digest, hold.entry) and (
            hold.expires == math.inf or hold.expires > self._clock.timestamp()
        )

    def record_use(
        self, key_id: str, *, accepted: bool, count: int, client_ip: str | None = None
    ) -> None:
        """Count uses of a key in its usage figures (written in the background)."""
        self._usage.record(key_id, accepted=accepted, count=count, client_ip=client_ip)

    def use_counter(self, key_id: str, *, count: int, client_ip: str | None) -> Callable[[], None]:
        """:meth:`record_use` of ``count`` accepted uses, bound once: each call counts them."""
        return partial(self._usage.record, key_id, True, count, client_ip)  # no keywords to merge

    def _judge(self, record: KeyRecord, client_ip: str | None) -> KeyIdentity:
        if record.revoked_at is not None:
            return KeyIdentity("revoked", record)
        if record.expires_at is not None and record.expires_at <= self._clock.now():
            return KeyIdentity("expired", record)
        if not record.allows_ip(client_ip):
            return KeyIdentity("ip_forbidden", record)
        principal = self._principal(record)
        if principal is None:  # the creator left: the inheriting key is dead
            return KeyIdentity("revoked", record)
        return KeyIdentity("valid", record, principal)

    def in_organization(
        self, workspace_id: str, organization_id: str | None, *, allow_database: bool = True
    ) -> bool:
        owner = self._workspaces.get(workspace_id)
        if owner is None:
            if not allow_database:
                raise WouldBlock
            workspace = self._accounts.workspace(workspace_id)
            owner = workspace.organization_id if workspace else _MISSING
            self._workspaces.put(workspace_id, owner)
        return owner == organization_id

    def _principal(self, record: KeyRecord) -> Principal | None:
        if record.principal is not None:
            return record.principal
        scopes, role = self._creator_grants(record)
        if scopes is None:
            return None
        return key_principal(record, scopes, role)

    def _creator_grants(self, record: KeyRecord) -> tuple[frozenset[str] | None, str | None]:
        """What the creator's role grants now; None once the creator has left."""
        if record.owner_user_id is None:
            return None, None
        role = self._accounts.role(record.owner_user_id, record.organization_id)
        if role is None:
            return None, None
        return self._catalog.granted_by_role(role), role
