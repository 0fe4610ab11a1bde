"""The authorization pipeline on in-memory collaborators (the in-memory limiter under the
deployment's quotas) and a ManualClock: no HTTP, no SQL."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from tessera import errors
from tessera.authz import (
    Allowed,
    Ask,
    Authorizer,
    Refused,
    RequestFacts,
    Resolved,
    refusal_error,
    resolve_workspace,
)
from tessera.authz.decision import ERRORS
from tessera.authz.ports import SessionIdentity
from tessera.clock import ManualClock
from tessera.config import load_config
from tessera.ids import digest
from tessera.keys.format import generate
from tessera.keys.records import KeyRecord, key_principal
from tessera.keys.verify import KeyHold, KeyIdentity
from tessera.origins import deployment_origins
from tessera.principal import Principal
from tessera.ratelimit import MemoryRateLimiter, Quota
from tessera.ratelimit.policy import RateLimits, failure_key

ORIGIN = "https://portal.example"
ALICE = Principal("user", "usr_alice", "org_acme", frozenset({"contacts:read"}), user_id="usr_a")
SERVICE = Principal("service", "svc_1", None, via="service_token")
FAILURES_PER_IP = 3


@dataclass
class MemoryKeys:
    """Keys by their raw value, judged like the verifier judges them."""

    clock: ManualClock
    records: dict[str, KeyRecord] = field(default_factory=dict)
    uses: list[tuple[str, bool, int]] = field(default_factory=list)
    identified: int = 0  # look-ups the pipeline asked for

    def add(self, record: KeyRecord) -> str:
        raw = generate("tsr", record.environment)
        principal = key_principal(record, record.scopes or frozenset(), None)
        self.records[raw] = replace(record, principal=principal)
        return raw

    def identify(self, raw: str, *, client_ip: str | None, allow_database: bool) -> KeyIdentity:
        self.identified += 1
        record = self.records.get(raw)
        if record is None:
            return KeyIdentity("not_found" if raw.startswith("tsr_") else "malformed")
        if record.revoked_at is not None:
            return KeyIdentity("revoked", record)
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            return KeyIdentity("expired", record)
        if not record.allows_ip(client_ip):
            return KeyIdentity("ip_forbidden", record)
        return KeyIdentity("valid", record, record.principal)

    def hold(self, key_digest: str) -> KeyHold | None:
        record = self.records.get(self._raw_of(key_digest))
        if (
            record is None
            or record.principal is None
            or record.revoked_at is not None
            or record.allowed_networks is not None
        ):
            return None
        expires = record.expires_at.timestamp() if record.expires_at else math.inf
        return KeyHold(key_digest, (math.inf, record), expires, record.principal)

    def _raw_of(self, key_digest: str) -> str:
        return next((raw for raw in self.records if digest(raw) == key_digest), "")

    def holds(self, hold: KeyHold) -> bool:
        """Like the verifier's cache: the record it read is still the one stored."""
        return self.records.get(self._raw_of(hold.digest)) is hold.entry[1] and (
            hold.expires == math.inf or hold.expires > self.clock.timestamp()
        )

    def record_use(
        self, key_id: str, *, accepted: bool, count: int, client_ip: str | None = None
    ) -> None:
        self.uses.append((key_id, accepted, count))

    def use_counter(self, key_id: str, *, count: int, client_ip: str | None) -> Callable[[], None]:
        return partial(self.record_use, key_id, accepted=True, count=count, client_ip=client_ip)


@dataclass
class World:
    clock: ManualClock
    keys: MemoryKeys
    quotas: RateLimits
    owners: dict[str, str] = field(default_factory=dict)  # workspace -> organization
    tokens: dict[str, Principal | Refused] = field(default_factory=dict)
    services: dict[str, Principal] = field(default_factory=dict)
    sessions: dict[str, SessionIdentity] = field(default_factory=dict)
    limiter: MemoryRateLimiter | None = None
    routes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def in_organization(
        self, workspace_id: str, organization_id: str | None, *, allow_database: bool
    ) -> bool:
        return self.owners.get(workspace_id) == organization_id

    def token_principal(self, token: str, organization_id: str | None) -> Principal | Refused:
        return self.tokens.get(token, Refused("unauthorized", "The access token is not valid."))

    def service_principal(self, raw: str, *, allow_database: bool) -> Principal | Refused:
        found = self.services.get(raw)
        return found or Refused("unauthorized", "The service token is not valid.")

    def session_identity(self, raw: str, organization_id: str | None) -> SessionIdentity | None:
        return self.sessions.get(raw)

    def route_scopes(self, method: str, uri: str) -> tuple[str, ...] | Refused:
        found = self.routes.get((method, uri))
        return found if found is not None else Refused("forbidden", f"No route allows {uri}.")

    def authorizer(self) -> Authorizer:
        return Authorizer(
            keys=self.keys,
            workspaces=self,
            access_tokens=self,
            service_tokens=self,
            sessions=self,
            quotas=self.quotas,
            routes=self,
            key_prefix="tsr",
            origins=deployment_origins(ORIGIN, ()),
        )


def _record(**changes: Any) -> KeyRecord:
    fields: dict[str, Any] = {
        "id": "key_1",
        "organization_id": "org_acme",
        "environment": "live",
        "scopes": frozenset({"contacts:read"}),
        "owner_user_id": "usr_a",
        "workspace_ids": None,
        "allowed_networks": None,
        "rate_limit": None,
        "expires_at": None,
        "revoked_at": None,
    }
    return KeyRecord(**{**fields, **changes})


@pytest.fixture
def world(clock: ManualClock) -> World:
    limits = {"requests": 100, "per_seconds": 60, "failures_per_ip": FAILURES_PER_IP}
    config = load_config(environ={}, overrides={"rate_limit": limits})
    limiter = MemoryRateLimiter(clock)
    return World(clock, MemoryKeys(clock), RateLimits(config, limiter), limiter=limiter)


def _code(decision: object) -> str:
    return decision.code if isinstance(decision, Refused) else "allowed"


def _failures_counted(world: World) -> int:
    """Failures counted against the client's address (a peek tells what would remain after
    one more)."""
    assert world.limiter is not None
    failures = Quota(FAILURES_PER_IP, 300)
    decision = world.limiter.peek(failure_key("203.0.113.7"), failures)
    return FAILURES_PER_IP - 1 - decision.remaining


def _facts(credential: str | None, **changes: Any) -> RequestFacts:
    return RequestFacts(credential, client_ip="203.0.113.7", **changes)


def test_a_key_holding_the_scopes_is_allowed_with_its_quota(world: World) -> None:
    """Allowed: the key's principal, and the figures of its quota after this request."""
    raw = world.keys.add(_record())
    decision = world.authorizer().decide(_facts(raw, required_scopes=("contacts:read",)))
    assert isinstance(decision, Allowed)
    assert decision.principal.id == "key_1" and decision.workspace is None
    assert decision.quota is not None and (decision.quota.limit, decision.quota.remaining) == (
        100,
        99,
    )
    assert world.keys.uses == [("key_1", True, 1)]


def test_no_credential_is_unauthorized_without_a_challenge_for_a_token(world: World) -> None:
    """Nothing presented: unauthorized, credential_presented False, nothing counted."""
    decision = world.authorizer().decide(_facts(None))
    assert decision == Refused(
        "unauthorized", "This endpoint needs a credential.", credential_presented=False
    )
    assert _failures_counted(world) == 0


def test_a_missing_scope_is_refused_after_the_quota_is_charged(world: World) -> None:
    """insufficient_scope names the scopes lacking; the request counted, as a refused use."""
    raw = world.keys.add(_record())
    decision = world.authorizer().decide(_facts(raw, required_scopes=("contacts:write",)))
    assert isinstance(decision, Refused) and decision.code == "insufficient_scope"
    assert decision.missing_scopes == ("contacts:write",)
    assert decision.detail == "This credential lacks the scope contacts:write."
    assert decision.quota is not None and decision.quota.remaining == 99
    assert decision.principal is not None and decision.principal.id == "key_1"
    assert world.keys.uses == [("key_1", False, 1)]


@pytest.mark.parametrize(
    ("changes", "code", "detail"),
    [
        ({"revoked_at": "now"}, "revoked", "The API key has been revoked."),
        ({"expires_at": "now"}, "expired", "The API key has expired."),
    ],
)
def test_dead_keys_are_refused_with_their_code(
    world: World, clock: ManualClock, changes: dict[str, str], code: str, detail: str
) -> None:
    """Revoked and expired keys: their code and detail, the key named, a refused use."""
    raw = world.keys.add(_record(**{name: clock.now() for name in changes}))
    decision = world.authorizer().decide(_facts(raw))
    assert isinstance(decision, Refused)
    assert (decision.code, decision.detail) == (code, detail)
    assert decision.key is not None and decision.key.id == "key_1"
    assert world.keys.uses == [("key_1", False, 1)]


def test_failures_past_the_address_limit_are_rate_limited(world: World) -> None:
    """A bad credential counts against the client's address; past the limit: rate_limited."""
    authorizer = world.authorizer()
    unknown = generate("tsr", "live")
    authorizer.decide(_facts(unknown))
    assert _failures_counted(world) == 1
    codes = [authorizer.decide(_facts(unknown)) for _ in range(FAILURES_PER_IP)]
    assert [_code(d) for d in codes] == ["not_found"] * 2 + ["rate_limited"]
    last = codes[-1]
    assert isinstance(last, Refused) and last.retry_after > 0
    assert last.detail == "Too many failed authentications from this address."


def test_a_valid_key_is_served_from_an_address_past_its_failures(world: World) -> None:
    """Only failures are throttled: a valid key from the same address is allowed."""
    authorizer = world.authorizer()
    for _ in range(FAILURES_PER_IP + 1):
        authorizer.decide(_facts("nonsense"))
    raw = world.keys.add(_record())
    assert isinstance(authorizer.decide(_facts(raw)), Allowed)


def test_the_verification_api_judges_keys_only_and_throttles_nothing(world: World) -> None:
    """keys_only: a token-shaped string is a malformed key, and failures are not counted."""
    authorizer = world.authorizer()
    world.tokens["a.b.c"] = ALICE
    assert _code(authorizer.decide(_facts("a.b.c", keys_only=True))) == "malformed"
    for _ in range(FAILURES_PER_IP + 2):
        refused = authorizer.decide(_facts(generate("tsr", "live"), keys_only=True))
        assert isinstance(refused, Refused) and refused.code == "not_found"


def test_an_address_outside_the_keys_networks_is_forbidden_not_a_failure(world: World) -> None:
    """ip_forbidden is not an authentication failure: the address is not throttled for it."""
    import ipaddress

    raw = world.keys.add(_record(allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),)))
    authorizer = world.authorizer()
    for _ in range(FAILURES_PER_IP + 1):
        decision = authorizer.decide(_facts(raw))
        assert isinstance(decision, Refused) and decision.code == "ip_forbidden"
    assert isinstance(refusal_error(decision), errors.Forbidden)


def test_another_organization_is_not_found(world: World) -> None:
    """X-Organization-ID naming another organization: unknown_organization, a 404."""
    raw = world.keys.add(_record())
    decision = world.authorizer().decide(_facts(raw, organization_id="org_globex"))
    assert isinstance(decision, Refused) and decision.code == "unknown_organization"
    assert isinstance(refusal_error(decision), errors.NotFound)


def test_workspaces_resolve_as_the_spec_says(world: World) -> None:
    """One allowed workspace is implied; several need a name; others are forbidden."""
    world.owners.update(ws_a="org_acme", ws_b="org_acme", ws_x="org_globex")
    authorizer = world.authorizer()
    one = world.keys.add(_record(id="key_one", workspace_ids=("ws_a",)))
    two = world.keys.add(_record(id="key_two", workspace_ids=("ws_a", "ws_b")))
    anywhere = world.keys.add(_record(id="key_any"))
    implied = authorizer.decide(_facts(one, require_workspace=True))
    assert isinstance(implied, Allowed) and implied.workspace == "ws_a"
    assert implied.principal.workspace_id == "ws_a"
    assert _code(authorizer.decide(_facts(two, require_workspace=True))) == "workspace_required"
    assert _code(authorizer.decide(_facts(one, workspace_id="ws_b"))) == "workspace_forbidden"
    assert _code(authorizer.decide(_facts(anywhere, workspace_id="ws_x"))) == "workspace_forbidden"
    named = authorizer.decide(_facts(two, workspace_id="ws_b", require_workspace=True))
    assert isinstance(named, Allowed) and named.workspace == "ws_b"


def test_a_workspace_refusal_is_not_charged(world: World) -> None:
    """Refused before the quota: nothing is charged and no figures are given."""
    raw = world.keys.add(_record(workspace_ids=("ws_a", "ws_b"), rate_limit=(1, 60)))
    authorizer = world.authorizer()
    refused = authorizer.decide(_facts(raw, require_workspace=True))
    assert isinstance(refused, Refused) and refused.quota is None
    assert isinstance(authorizer.decide(_facts(raw)), Allowed)


def test_the_keys_own_limit_refuses_then_recovers(world: World, clock: ManualClock) -> None:
    """Past its own quota a key is rate_limited with its figures; time restores it."""
    raw = world.keys.add(_record(rate_limit=(2, 60)))
    authorizer = world.authorizer()
    decisions = [authorizer.decide(_facts(raw)) for _ in range(3)]
    assert [type(d).__name__ for d in decisions] == ["Allowed", "Allowed", "Refused"]
    refused = decisions[-1]
    assert isinstance(refused, Refused) and refused.code == "rate_limited"
    assert refused.quota is not None and refused.quota.remaining == 0
    assert refused.retry_after == 30
    assert refused.detail == "Rate limit of 2 requests per 60 s exceeded."
    clock.advance(30)
    assert isinstance(authorizer.decide(_facts(raw)), Allowed)


def test_uses_are_charged_all_at_once_or_not_at_all(world: World) -> None:
    """The verification API's uses: all counted, or the request refused and none counted."""
    raw = world.keys.add(_record(rate_limit=(5, 60)))
    authorizer = world.authorizer()
    first = authorizer.decide(_facts(raw, uses=4, keys_only=True))
    assert isinstance(first, Allowed) and first.quota is not None and first.quota.remaining == 1
    assert _code(authorizer.decide(_facts(raw, uses=2, keys_only=True))) == "rate_limited"
    assert isinstance(authorizer.decide(_facts(raw, keys_only=True)), Allowed)
    assert world.keys.uses == [("key_1", True, 4), ("key_1", False, 2), ("key_1", True, 1)]


def test_a_route_is_resolved_before_the_credential(world: World) -> None:
    """Forward auth: the route's scopes are required, and no route is forbidden for anyone."""
    world.routes[("POST", "/v1/contacts")] = ("contacts:write",)
    raw = world.keys.add(_record())
    authorizer = world.authorizer()
    needs_write = authorizer.decide(_facts(raw, route=("POST", "/v1/contacts")))
    assert isinstance(needs_write, Refused) and needs_write.missing_scopes == ("contacts:write",)
    nowhere = authorizer.decide(_facts("nonsense", route=("GET", "/v1/invoices")))
    assert isinstance(nowhere, Refused) and nowhere.code == "forbidden"
    assert _failures_counted(world) == 0


def test_user_tokens_and_service_tokens_are_told_apart_by_form(world: World) -> None:
    """A three-part token is a user's; svc_… a service's; anything else is malformed."""
    world.tokens["h.p.s"] = ALICE
    world.services["svc_good"] = SERVICE
    authorizer = world.authorizer()
    user = authorizer.decide(_facts("h.p.s"))
    assert isinstance(user, Allowed) and user.principal == ALICE
    service = authorizer.decide(_facts("svc_good"))
    assert isinstance(service, Allowed) and service.quota is None  # services are not limited
    assert _code(authorizer.decide(_facts("svc_bad"))) == "unauthorized"
    assert _code(authorizer.decide(_facts("plain"))) == "malformed"
    assert _code(authorizer.decide(_facts("x" * 5000))) == "malformed"


def test_the_session_cookie_stands_in_for_a_credential(world: World) -> None:
    """A live session authenticates; a renewed one asks for its cookie to be sent again."""
    world.sessions["cookie"] = SessionIdentity(ALICE, renewed=True)
    authorizer = world.authorizer()
    allowed = authorizer.decide(_facts(None, session="cookie"))
    assert isinstance(allowed, Allowed) and allowed.renew_session
    dead = authorizer.decide(_facts(None, session="stale"))
    assert isinstance(dead, Refused) and not dead.credential_presented


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"method": "POST", "origin": ORIGIN}, True),
        ({"method": "POST", "origin": "https://evil.example"}, False),
        ({"method": "DELETE", "fetch_site": "cross-site"}, False),
        ({"method": "GET", "origin": "https://evil.example"}, True),
    ],
)
def test_the_cookie_does_not_carry_a_write_from_another_site(
    world: World, headers: dict[str, str], allowed: bool
) -> None:
    """CSRF: a state-changing request on the cookie must come from the deployment's origin."""
    world.sessions["cookie"] = SessionIdentity(ALICE, renewed=False)
    decision = world.authorizer().decide(_facts(None, session="cookie", **headers))
    assert isinstance(decision, Allowed) is allowed
    if not allowed:
        assert isinstance(decision, Refused) and decision.code == "forbidden"


def test_a_callers_service_token_is_throttled_per_caller_address(world: World) -> None:
    """The platform's callers: a bad service token counts against the caller's address."""
    world.services["svc_good"] = SERVICE
    authorizer = world.authorizer()
    good = authorizer.service("svc_good", lambda: "10.0.0.1", allow_database=True)
    assert good == SERVICE
    codes = [
        _code(authorizer.service("svc_bad", lambda: "10.0.0.1", allow_database=True))
        for _ in range(FAILURES_PER_IP + 1)
    ]
    assert codes == ["unauthorized"] * 3 + ["rate_limited"]


def test_from_memory_alone_it_says_when_it_would_wait(world: World) -> None:
    """allow_database=False: a token, a session or a limiter outside this process would wait."""
    from tessera.errors import WouldBlock

    world.tokens["h.p.s"] = ALICE
    authorizer = world.authorizer()
    with pytest.raises(WouldBlock):
        authorizer.decide(_facts("h.p.s"), allow_database=False)
    with pytest.raises(WouldBlock):
        authorizer.decide(_facts(None, session="cookie"), allow_database=False)
    world.quotas.in_process = False
    raw = world.keys.add(_record())
    with pytest.raises(WouldBlock):
        authorizer.decide(_facts(raw), allow_database=False)


def test_every_refusal_code_has_its_error() -> None:
    """The one table from a refusal to the error the edge answers, code by code."""
    expected = {
        "unauthorized": "unauthorized",
        "malformed": "unauthorized",
        "not_found": "unauthorized",
        "expired": "unauthorized",
        "revoked": "unauthorized",
        "ip_forbidden": "forbidden",
        "insufficient_scope": "forbidden",
        "workspace_forbidden": "forbidden",
        "workspace_required": "workspace_required",
        "rate_limited": "rate_limited",
        "unknown_organization": "not_found",
        "forbidden": "forbidden",
        "invalid_request": "invalid_request",
    }
    assert set(ERRORS) == set(expected)
    for code, error_code in expected.items():
        refused = Refused(code, "Because.", missing_scopes=("a:b",), retry_after=9)  # type: ignore[arg-type]
        error = refusal_error(refused)
        assert (error.code, error.detail) == (error_code, "Because."), code
    scope = refusal_error(Refused("insufficient_scope", "Lacks.", missing_scopes=("a:b",)))
    assert isinstance(scope, errors.InsufficientScope) and scope.required_scopes == ["a:b"]
    throttled = refusal_error(Refused("rate_limited", "Slow.", retry_after=9))
    assert isinstance(throttled, errors.RateLimited) and throttled.retry_after == 9
    anonymous = refusal_error(Refused("unauthorized", "Who?", credential_presented=False))
    assert isinstance(anonymous, errors.Unauthorized) and not anonymous.credential_presented


def test_resolve_workspace_answers_a_workspace_or_a_refusal() -> None:
    """A result type, not a bare string that is sometimes an error code."""
    assert resolve_workspace(None, "ws_a") == Resolved("ws_a")
    assert resolve_workspace(("ws_a",), None) == Resolved("ws_a")
    assert resolve_workspace(None, None) == Resolved(None)
    required = resolve_workspace(("ws_a", "ws_b"), None, required=True)
    assert isinstance(required, Refused) and required.code == "workspace_required"
    outside = resolve_workspace(("ws_a",), "ws_b")
    assert isinstance(outside, Refused) and outside.code == "workspace_forbidden"


def test_missing_scopes_names_what_is_lacking() -> None:
    """Principal.missing_scopes: the required scopes the principal does not hold."""
    assert ALICE.missing_scopes(("contacts:read", "contacts:write")) == ["contacts:write"]
    assert ALICE.missing_scopes(()) == []


def test_an_expiry_is_judged_on_the_injected_clock(world: World, clock: ManualClock) -> None:
    """A key valid for a minute is allowed until then, expired after."""
    raw = world.keys.add(_record(expires_at=clock.now() + timedelta(seconds=60)))
    authorizer = world.authorizer()
    assert isinstance(authorizer.decide(_facts(raw)), Allowed)
    clock.advance(60)
    assert _code(authorizer.decide(_facts(raw))) == "expired"


def test_a_repeated_request_reuses_its_steps_until_the_key_changes(world: World) -> None:
    """The same request again is answered without judging the key again, charged and counted
    each time; once the key's record changes (revoked), it is judged afresh."""
    raw = world.keys.add(_record())
    authorizer = world.authorizer()
    facts = _facts(raw, required_scopes=("contacts:read",))
    first, second = authorizer.decide(facts), authorizer.decide(facts)
    assert isinstance(first, Allowed) and isinstance(second, Allowed)
    assert world.keys.identified == 1
    assert first.quota is not None and second.quota is not None
    assert (first.quota.remaining, second.quota.remaining) == (99, 98)
    assert world.keys.uses == [("key_1", True, 1)] * 2
    world.keys.records[raw] = replace(world.keys.records[raw], revoked_at=world.clock.now())
    assert _code(authorizer.decide(facts)) == "revoked"
    assert world.keys.identified == 2


def test_a_remembered_ask_is_decided_again_as_decide_decides_it(world: World) -> None:
    """``decide_again`` and ``decide_again_on_loop`` answer a request ``decide`` allowed under
    an ask with every field ``decide`` gives (the caller, no workspace, the quota charged once
    more, no session to renew), and count a use each time."""
    raw = world.keys.add(_record())
    authorizer = world.authorizer()
    ask = Ask(b"\x01" * 32, None)
    first = authorizer.decide(_facts(raw, required_scopes=("contacts:read",)), ask=ask)
    again = authorizer.decide_again(ask.digest)
    on_loop = asyncio.run(authorizer.decide_again_on_loop(ask.digest))
    assert isinstance(first, Allowed)
    for answer, remaining in ((first, 99), (again, 98), (on_loop, 97)):
        assert answer is not None and answer.quota is not None
        assert answer == Allowed(first.principal, None, answer.quota, renew_session=False)
        assert answer.quota.remaining == remaining
    assert world.keys.uses == [("key_1", True, 1)] * 3
    assert authorizer.decide_again(b"\x02" * 32) is None  # an ask never made


def test_remembered_steps_still_check_the_scopes_and_organization(world: World) -> None:
    """What differs between two requests with one key (scopes, organization) is judged for
    each: a remembered allowance is never another request's."""
    raw = world.keys.add(_record())
    authorizer = world.authorizer()
    assert isinstance(authorizer.decide(_facts(raw, required_scopes=("contacts:read",))), Allowed)
    lacking = authorizer.decide(_facts(raw, required_scopes=("contacts:write",)))
    assert _code(lacking) == "insufficient_scope"
    elsewhere = authorizer.decide(_facts(raw, organization_id="org_other"))
    assert _code(elsewhere) == "unknown_organization"
