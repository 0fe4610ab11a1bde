"""The pipeline: who the caller is, then what the request asks of them, in one order for all.

1. the forward-auth route's scopes, when the request came through a proxy;
2. the credential, by its form: an API key, a service token, a user's access token, or the
   session cookie when nothing else was presented; a credential that authenticates no one
   counts against the client's address (``failures_per_ip``);
3. the organization the request names (``X-Organization-ID``), and the same-site rule for the
   session cookie;
4. the workspace (SPEC section 5);
5. the credential's quota, charged once per request (``uses`` at once for the verification
   API);
6. the scopes.

Every step answers with data; the first refusal is the decision.

A request repeated with the same cached API key reuses the steps already taken for it while
the key's cache entry stands (:meth:`Authorizer._prepare`). The hot endpoints go one step
further: they name a request by a digest of what they read of it (its *ask*), and
:meth:`Authorizer.decide_again` answers a repeated ask with only the quota and the use counted
again, before the request is even parsed.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple, Protocol, TypeVar

from tessera.authz.decision import (
    KEY_REFUSALS,
    NOT_VALID,
    Allowed,
    Ask,
    Decision,
    Refused,
    RequestFacts,
    lacking,
    outside,
    over,
)
from tessera.authz.ports import (
    AccessTokens,
    Keys,
    Quotas,
    Routes,
    ServiceTokens,
    Sessions,
    WorkspaceOwners,
)
from tessera.authz.workspaces import resolve_workspace
from tessera.errors import WouldBlock
from tessera.ids import digest
from tessera.keys.cache import CacheHold
from tessera.keys.format import looks_like_key
from tessera.keys.records import KeyRecord
from tessera.keys.verify import KeyHold
from tessera.origins import DeploymentOrigins
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision
from tessera.ratelimit.policy import Meter

MAX_CREDENTIAL_LENGTH = 4096
MAX_KNOWN = 4096  # repeated requests whose steps are remembered (see Authorizer._prepare)
SERVICE_PREFIX = "svc_"
NO_CREDENTIAL = "This endpoint needs a credential."
MALFORMED = "The credential is malformed."
THROTTLED = "Too many failed authentications from this address."
# Refusals of the credential itself: they count against the client's address.
FAILURES = frozenset({"unauthorized", "malformed", "not_found", "expired", "revoked"})
STATE_CHANGING = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(slots=True)
class _Caller:  # who the credential is, between two steps of one decision
    principal: Principal
    key: KeyRecord | None = None  # when the credential is an API key
    renew_session: bool = False


class _Known(NamedTuple):  # what every step but the quota's found for a repeated request
    caller: _Caller
    charge: _Charge
    hold: KeyHold  # the cached key those steps read: the steps stand while it does


class _Repeat(NamedTuple):  # a request decide_again answers, with what it checks and counts
    principal: Principal
    hold: KeyHold  # the cached key the request's steps read
    service: CacheHold  # the service token that asked: the steps stand while both do
    meter: Meter | None  # the credential's quota, found once
    uses: int  # charged to the quota, then counted by ``count_uses``
    count_uses: Callable[[], None]


# The service of an ask no service token made: the application itself (the integration's
# local mode), which nothing revokes.
_ITSELF = CacheHold("", (math.inf, None))


class _Charge(NamedTuple):  # a decision that waits only on the credential's quota
    caller: _Caller
    principal: Principal  # acting in ``workspace``
    workspace: str | None
    required: tuple[str, ...]


T = TypeVar("T")
K = TypeVar("K")


class Offload(Protocol):
    """Runs a call where it may wait (a worker thread), for a caller on the event loop."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


class Authorizer:
    def __init__(
        self,
        *,
        keys: Keys,
        workspaces: WorkspaceOwners,
        access_tokens: AccessTokens,
        service_tokens: ServiceTokens,
        sessions: Sessions,
        quotas: Quotas,
        routes: Routes,
        key_prefix: str,
        origins: DeploymentOrigins,
    ) -> None:
        self._keys = keys
        self._workspaces = workspaces
        self._access_tokens = access_tokens
        self._service_tokens = service_tokens
        self._sessions = sessions
        self._quotas = quotas
        self._routes = routes
        self._key_prefix = key_prefix
        self._origins = origins
        self._known: dict[tuple[object, ...], _Known] = {}
        self._asks: dict[bytes, _Repeat] = {}  # by Ask.digest: see decide_again

    def decide(
        self, facts: RequestFacts, *, allow_database: bool = True, ask: Ask | None = None
    ) -> Decision:
        """The decision on ``facts``. With ``allow_database=False`` only what is in memory is
        used, and :class:`WouldBlock` is raised when an answer would have to wait. ``ask``
        names the request for :meth:`decide_again`."""
        if not allow_database and not self._quotas.in_process:
            raise WouldBlock  # every decision may charge a quota
        caller, outcome = self._prepare(facts, allow_database, ask)
        if isinstance(outcome, _Charge):
            outcome = _charged(outcome, self._quotas.charge(outcome.principal, facts.uses))
        return self._used(caller, outcome, facts.uses, facts.client_ip)

    async def decide_on_loop(
        self, facts: RequestFacts, offload: Offload, *, ask: Ask | None = None
    ) -> Decision:
        """The decision on ``facts`` for a caller on the event loop: from memory, with
        ``offload`` (a worker thread) only when a look-up must wait, and a limiter shared
        through Redis awaited on the loop rather than in a thread."""
        if self._quotas.in_process:
            try:
                return self.decide(facts, allow_database=False, ask=ask)
            except WouldBlock:
                return await offload(partial(self.decide, facts, ask=ask))
        try:
            caller, outcome = self._prepare(facts, False, ask)
        except WouldBlock:
            caller, outcome = await offload(partial(self._prepare, facts, True, ask))
        if isinstance(outcome, _Charge):
            quota = await self._quotas.charge_async(outcome.principal, facts.uses)
            outcome = _charged(outcome, quota)
        return self._used(caller, outcome, facts.uses, facts.client_ip)

    def decide_again(self, ask: bytes) -> Allowed | None:
        """The decision on a request decided before, named by the digest of the :class:`Ask`
        its edge gave :meth:`decide` (the same digest means the same facts), for a deployment
        whose quotas are in this process (else :meth:`decide_again_on_loop`). It is answered
        while the cached key and service token those steps read stand (``holds``: not revoked
        here or elsewhere, not expired, under the lease), with the quota and the use counted
        again, each prepared when the request was first allowed (``Quotas.meter``,
        ``Keys.use_counter``).

        Only requests the key was allowed to make are remembered. None when the steps no
        longer stand or the quota refuses: nothing has been counted then (a refused request
        does not count against the quota), and the edge asks :meth:`decide` instead."""
        repeat = self._repeat(ask)
        if repeat is None:
            return None
        meter = repeat.meter
        return _allowed_again(repeat, None if meter is None else meter.hit(repeat.uses))

    async def decide_again_on_loop(self, ask: bytes) -> Allowed | None:
        """:meth:`decide_again` for a caller on the event loop: quotas in this process are
        charged at once, a limiter shared through Redis is awaited on the loop."""
        if self._quotas.in_process:
            return self.decide_again(ask)
        repeat = self._repeat(ask)
        if repeat is None:
            return None
        meter = repeat.meter
        return _allowed_again(repeat, None if meter is None else await meter.hit_async(repeat.uses))

    def _repeat(self, ask: bytes) -> _Repeat | None:
        repeat = self._asks.get(ask)
        if repeat is None or not self._keys.holds(repeat.hold):
            return None
        service = repeat.service
        if service is _ITSELF or self._service_tokens.holds(service):
            return repeat
        return None

    def _prepare(
        self, facts: RequestFacts, allow_database: bool, ask: Ask | None = None
    ) -> tuple[_Caller | Refused | None, Decision | _Charge]:
        """Every step but the quota's: the decision, or what is left once the quota is known.

        A request repeated with the same API key (the same credential, scopes, route,
        organization and workspace) is answered by the steps already taken for it, for as long
        as the key's cache entry they read stands: :meth:`Keys.holds` sees a revocation (here
        or, through the eviction channel, on another instance), an expiry and a lost lease."""
        credential = facts.credential
        if credential is not None and (
            facts.keys_only or looks_like_key(credential, self._key_prefix)
        ):
            key_digest = digest(credential)  # no raw key is kept past its request
            asked = (key_digest, *facts[1:6], facts.keys_only)
            known = self._known.get(asked)
            if known is not None:
                if self._keys.holds(known.hold):
                    if ask is not None:
                        self._remember_ask(ask, known, facts)
                    return known.caller, known.charge
                self._known.pop(asked, None)
        else:
            asked, key_digest = None, ""
        required = facts.required_scopes
        if facts.route is not None:
            scopes = self._routes.route_scopes(*facts.route)
            if isinstance(scopes, Refused):
                return None, scopes
            required = (*required, *scopes)
        caller = self._caller(facts, allow_database)
        if isinstance(caller, Refused):
            return caller, self._failed(caller, facts, allow_database)
        outcome = self._authorize(caller, facts, required, allow_database)
        if asked is not None and caller.key is not None and isinstance(outcome, _Charge):
            self._remember(asked, key_digest, caller, outcome, facts, ask)
        return caller, outcome

    def _remember(
        self,
        asked: tuple[object, ...],
        key_digest: str,
        caller: _Caller,
        charge: _Charge,
        facts: RequestFacts,
        ask: Ask | None,
    ) -> None:
        if charge.workspace is not None:
            return  # acting in a workspace: its ownership is looked up again each time
        hold = self._keys.hold(key_digest)
        if hold is None or hold.principal is not caller.principal:
            return  # not answered from memory alone, or the entry changed meanwhile
        known = _Known(caller, charge, hold)
        _bounded(self._known)[asked] = known
        if ask is not None:
            self._remember_ask(ask, known, facts)

    def _remember_ask(self, ask: Ask, known: _Known, facts: RequestFacts) -> None:
        """For :meth:`decide_again`: a request the key is allowed to make, from a service token
        known from memory or from the application itself."""
        charge = known.charge
        principal = charge.principal
        if not principal.scopes.issuperset(charge.required):
            return
        token = ask.service_token
        service = _ITSELF if token is None else self._service_tokens.hold(token)
        key = known.caller.key
        if service is not None and key is not None:
            uses, ip = facts.uses, facts.client_ip
            meter = self._quotas.meter(principal)
            count = self._keys.use_counter(key.id, count=uses, client_ip=ip)
            _bounded(self._asks)[ask.digest] = _Repeat(
                principal, known.hold, service, meter, uses, count
            )

    def _used(
        self,
        caller: _Caller | Refused | None,
        decision: Decision,
        uses: int,
        client_ip: str | None,
    ) -> Decision:
        if caller is not None and caller.key is not None:
            # Every decision about an existing key is a use of it.
            accepted = isinstance(decision, Allowed)
            self._keys.record_use(caller.key.id, accepted=accepted, count=uses, client_ip=client_ip)
        return decision

    def service(
        self, raw: str, caller_ip: Callable[[], str | None], *, allow_database: bool
    ) -> Principal | Refused:
        """A service token presented by a caller of the platform's own endpoints (the
        verification API, forward auth); a wrong one counts against the caller's address,
        which ``caller_ip`` reads only then."""
        found = (
            self._service_tokens.service_principal(raw, allow_database=allow_database)
            if raw.startswith(SERVICE_PREFIX)
            else Refused("unauthorized", "The service token is not valid.")
        )
        if isinstance(found, Refused):
            if not allow_database and not self._quotas.in_process:
                raise WouldBlock  # counting the failure waits on Redis
            return self._throttled(found, caller_ip())
        return found

    def _caller(self, facts: RequestFacts, allow_database: bool) -> _Caller | Refused:
        credential = facts.credential
        if credential is None:
            if facts.session is None or facts.keys_only:
                return Refused("unauthorized", NO_CREDENTIAL, credential_presented=False)
            return self._session(facts, facts.session, allow_database)
        if facts.keys_only or looks_like_key(credential, self._key_prefix):
            return self._key(credential, facts, allow_database)
        if not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
            return Refused("malformed", MALFORMED)
        if credential.startswith(SERVICE_PREFIX):
            found = self._service_tokens.service_principal(
                credential, allow_database=allow_database
            )
            return found if isinstance(found, Refused) else _Caller(found)
        if credential.count(".") == 2:
            if not allow_database:
                raise WouldBlock  # a user's token checks its family and membership
            user = self._access_tokens.token_principal(credential, facts.organization_id)
            return user if isinstance(user, Refused) else _Caller(user)
        return Refused("malformed", MALFORMED)

    def _key(self, raw: str, facts: RequestFacts, allow_database: bool) -> _Caller | Refused:
        identity = self._keys.identify(
            raw, client_ip=facts.client_ip, allow_database=allow_database
        )
        if identity.principal is None or identity.code != "valid":
            detail = KEY_REFUSALS.get(identity.code, NOT_VALID)
            code = "malformed" if identity.code == "valid" else identity.code
            return Refused(code, detail, key=identity.record)
        principal = identity.principal
        if facts.organization_id and facts.organization_id != principal.organization_id:
            # A credential bound to one organization answers 404 for any other (never 403).
            detail = f"No organization {facts.organization_id}."
            return Refused("unknown_organization", detail, key=identity.record)
        return _Caller(principal, identity.record)

    def _session(self, facts: RequestFacts, raw: str, allow_database: bool) -> _Caller | Refused:
        if not allow_database:
            raise WouldBlock
        found = self._sessions.session_identity(raw, facts.organization_id)
        if found is None:
            return Refused("unauthorized", NO_CREDENTIAL, credential_presented=False)
        refused = cross_site(facts.method, facts.origin, facts.fetch_site, self._origins)
        if refused is not None:
            return replace(refused, renew_session=found.renewed)
        return _Caller(found.principal, renew_session=found.renewed)

    def _failed(self, refused: Refused, facts: RequestFacts, allow_database: bool) -> Refused:
        presented = facts.credential is not None
        if facts.keys_only or not presented or refused.code not in FAILURES:
            return refused
        if not allow_database and not self._quotas.in_process:
            raise WouldBlock  # counting the failure waits on Redis
        return self._throttled(refused, facts.client_ip)

    def _throttled(self, refused: Refused, ip: str | None) -> Refused:
        """``refused``, or ``rate_limited`` once the address is past its failures."""
        failures = self._quotas.count_failure(ip)
        if failures is None:
            return refused
        return Refused("rate_limited", THROTTLED, retry_after=failures.retry_after, key=refused.key)

    def _authorize(
        self,
        caller: _Caller,
        facts: RequestFacts,
        required: tuple[str, ...],
        allow_database: bool,
    ) -> Decision | _Charge:
        principal = caller.principal
        workspace: str | None = None
        if principal.workspace_ids is not None or facts.workspace_id or facts.require_workspace:
            resolved = self._workspace(principal, facts, allow_database)
            if isinstance(resolved, Refused):
                return _of(caller, resolved, principal)
            if resolved is not None:
                workspace = resolved
                principal = replace(principal, workspace_id=workspace)
        return _Charge(caller, principal, workspace, required)

    def _workspace(
        self, principal: Principal, facts: RequestFacts, allow_database: bool
    ) -> str | Refused | None:
        """The workspace the request acts in (None: none in particular), or the refusal."""
        resolved = resolve_workspace(
            principal.workspace_ids, facts.workspace_id, required=facts.require_workspace
        )
        if isinstance(resolved, Refused):
            return resolved
        workspace = resolved.workspace_id
        if workspace is None or self._workspaces.in_organization(
            workspace, principal.organization_id, allow_database=allow_database
        ):
            return workspace
        return Refused("workspace_forbidden", outside(facts.workspace_id))


def _allowed_again(repeat: _Repeat, quota: RateLimitDecision | None) -> Allowed | None:
    if quota is not None and not quota.allowed:
        return None
    repeat.count_uses()
    return _allowed((repeat.principal, None, quota, False))


# ``_allowed((principal, workspace, quota, renew_session))``, every field given: an Allowed built
# in C, without the Python-level ``__new__`` of a named tuple's class (half the time).
_allowed = partial(tuple.__new__, Allowed)


def cross_site(
    method: str, origin: str | None, fetch_site: str | None, origins: DeploymentOrigins
) -> Refused | None:
    """A state-changing request from another site may not ride on the session cookie (CSRF):
    an ``Origin`` that is not one of the deployment's, or a cross-site ``Sec-Fetch-Site``."""
    if method.upper() not in STATE_CHANGING:
        return None
    if origin is not None and not origins.allows(origin):
        return Refused("forbidden", "Cross-origin requests may not use the session cookie.")
    if fetch_site == "cross-site":
        return Refused("forbidden", "Cross-site requests may not use the session cookie.")
    return None


def _bounded(memo: dict[K, T]) -> dict[K, T]:
    """``memo``, emptied when it holds ``MAX_KNOWN`` requests (entries are cheap to learn again)."""
    if len(memo) >= MAX_KNOWN:
        memo.clear()
    return memo


def _charged(charge: _Charge, quota: RateLimitDecision | None) -> Decision:
    """The decision once the credential's quota has been charged: the last two steps."""
    caller, principal = charge.caller, charge.principal
    if quota is not None and not quota.allowed:
        return _of(caller, over(quota), principal, quota)
    if not principal.scopes.issuperset(charge.required):
        missing = tuple(principal.missing_scopes(charge.required))
        refused = Refused("insufficient_scope", lacking(missing), missing_scopes=missing)
        return _of(caller, refused, principal, quota)
    return Allowed(principal, charge.workspace, quota, caller.renew_session)


def _of(
    caller: _Caller,
    refused: Refused,
    principal: Principal,
    quota: RateLimitDecision | None = None,
) -> Refused:
    """``refused``, saying whom it refused and what their quota stands at."""
    return replace(
        refused,
        principal=principal,
        key=caller.key,
        quota=quota,
        renew_session=caller.renew_session,
    )
