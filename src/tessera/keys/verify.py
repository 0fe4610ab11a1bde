"""The verification hot path: is this key allowed to do this, here, now?

A key is looked up by its digest once, then served from a bounded cache (``keys/cache.py``).
Deciding is pure: format, revocation, expiry, IP, scopes, workspace, then the rate limit.
Each decision about an existing key is counted as a use, in memory (``keys/usage.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from tessera.accounts.store import AccountStore
from tessera.clock import Clock
from tessera.errors import WouldBlock
from tessera.ids import digest, same_digest
from tessera.keys import format as key_format
from tessera.keys.cache import EvictionChannel, Subscribe, TtlCache
from tessera.keys.records import KeyRecord, key_principal
from tessera.keys.store import KeyStore
from tessera.keys.usage import UsageRecorder
from tessera.principal import Principal
from tessera.ratelimit import MemoryRateLimiter, Quota, RateLimitDecision, RateLimiter
from tessera.scopes import ScopeCatalog

Code = Literal[
    "valid",
    "malformed",
    "not_found",
    "expired",
    "revoked",
    "insufficient_scope",
    "workspace_forbidden",
    "workspace_required",
    "ip_forbidden",
    "rate_limited",
]
CACHE_TTL_SECONDS = 5.0
CACHE_MAX_ENTRIES = 50_000
_MISSING = "missing"


@dataclass(frozen=True)
class Verdict:
    code: Code
    record: KeyRecord | None = None
    principal: Principal | None = None
    rate_limit: RateLimitDecision | None = None
    missing_scopes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.code == "valid"


class KeyVerifier:
    def __init__(
        self,
        key_prefix: str,
        *,
        keys: KeyStore,
        accounts: AccountStore,
        clock: Clock,
        limiter: RateLimiter,
        default_quota: Quota,
        catalog: ScopeCatalog,
        usage: UsageRecorder,
        subscribe: Subscribe | None = None,
    ) -> None:
        """``subscribe`` connects this verifier's cache to the other instances' evictions."""
        self._prefix = key_prefix
        self._keys = keys
        self._accounts = accounts
        self._clock = clock
        self._limiter = limiter
        self._default_quota = default_quota
        self._catalog = catalog
        # A limiter in another process (Redis) is network I/O: never on the event loop.
        self._limiter_in_process = isinstance(limiter, MemoryRateLimiter)
        self._usage = usage
        self._cache: TtlCache[KeyRecord | str] = TtlCache(
            clock, ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._workspaces: TtlCache[str] = TtlCache(
            clock, ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES
        )
        self._bus: EvictionChannel | None = (
            subscribe(self._cache.evict, self._cache.clear) if subscribe else None
        )

    def forget(self, key_digest: str) -> None:
        """Evict a key everywhere: here at once, and on other instances through Redis."""
        self._cache.evict(key_digest)
        if self._bus is not None:
            self._bus.publish(key_digest)

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()

    def load(self, key_digest: str) -> KeyRecord | str:
        generation = self._cache.generation
        key = self._keys.by_digest(key_digest)
        matches = key is not None and same_digest(key.digest, key_digest)
        found: KeyRecord | str = KeyRecord.of(key) if key is not None and matches else _MISSING
        self._cache.put(key_digest, found, read_at_generation=generation)
        return found

    def verify(
        self,
        raw: str,
        *,
        required_scopes: tuple[str, ...] = (),
        workspace_id: str | None = None,
        require_workspace: bool = False,
        client_ip: str | None = None,
        count_rate: bool = True,
        allow_database: bool = True,
        uses: int = 1,
    ) -> Verdict:
        """The verdict on ``raw``; with ``allow_database=False`` it raises
        :class:`WouldBlock` rather than wait on the database or Redis."""
        key_digest = digest(raw)
        found = self._cache.get(key_digest)
        if found is None:  # only digests of well-formed keys are ever cached
            if key_format.parse(raw, self._prefix) is None:
                return Verdict("malformed")
            if not allow_database:
                raise WouldBlock
            found = self.load(key_digest)
        if isinstance(found, KeyRecord) and found.scopes is None and not allow_database:
            raise WouldBlock  # an inheriting key asks for its creator's role
        if not isinstance(found, KeyRecord):
            return Verdict("not_found")
        context = (workspace_id, require_workspace, client_ip, uses)
        verdict = self._decide(found, required_scopes, context, count_rate, allow_database)
        self._usage.record(found.id, accepted=verdict.valid, count=uses)
        return verdict

    def _decide(
        self,
        record: KeyRecord,
        required: tuple[str, ...],
        context: tuple[str | None, bool, str | None, int],
        count_rate: bool,
        allow_database: bool,
    ) -> Verdict:
        workspace_id, require_workspace, client_ip, uses = context
        now = self._clock.now()
        if record.revoked_at is not None:
            return Verdict("revoked", record)
        if record.expires_at is not None and record.expires_at <= now:
            return Verdict("expired", record)
        if not record.allows_ip(client_ip):
            return Verdict("ip_forbidden", record)
        principal = self._principal(record)
        if principal is None:
            return Verdict("revoked", record)  # the creator left: the inheriting key is dead
        if not principal.scopes.issuperset(required):
            missing = tuple(s for s in required if s not in principal.scopes)
            return Verdict("insufficient_scope", record, principal, missing_scopes=missing)
        workspace = resolve_workspace(
            record.workspace_ids, workspace_id, required=require_workspace
        )
        if workspace in ("workspace_forbidden", "workspace_required"):
            return Verdict(workspace, record, principal)  # type: ignore[arg-type]
        if workspace is not None and not self.in_organization(
            workspace, record.organization_id, allow_database=allow_database
        ):
            return Verdict("workspace_forbidden", record, principal)
        principal = _with_workspace(principal, workspace)
        if not count_rate:
            return Verdict("valid", record, principal)
        if not allow_database and not self._limiter_in_process:
            raise WouldBlock
        decision = self._limiter.hit(f"key:{record.id}", self.quota(record), uses)
        return Verdict("valid" if decision.allowed else "rate_limited", record, principal, decision)

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

    def quota(self, record: KeyRecord) -> Quota:
        if record.rate_limit is not None:
            return Quota(*record.rate_limit)
        return self._default_quota

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


def resolve_workspace(
    allowed: tuple[str, ...] | None, requested: str | None, *, required: bool = False
) -> str | None:
    """SPEC section 5: the requested workspace if allowed; the only one when exactly one is
    allowed and none was named. Returns a verification code on refusal."""
    if requested:
        if allowed is not None and requested not in allowed:
            return "workspace_forbidden"
        return requested
    if allowed is not None and len(allowed) == 1:
        return allowed[0]
    return "workspace_required" if required else None


def _with_workspace(principal: Principal, workspace_id: str | None) -> Principal:
    return principal if workspace_id is None else replace(principal, workspace_id=workspace_id)
