"""Authorization invariants under random organizations, people, roles and keys (Hypothesis).

A state machine creates organizations, adds people with random roles, makes keys (by people and
by keys, inheriting or not, bounded on every dimension or not), rolls, revokes, demotes, removes
and lets time pass. After every step, each credential is tried against the API and must never:
act outside its organization, hold more than its creator could give it, or be served beyond
its scopes, workspaces, allowed networks and expiry.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)
from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tessera.deployment import Tessera
from tessera.scopes import BUILTIN_SCOPES, MEMBER_BUILTINS
from tests.helpers import PASSWORD

CLIENT_ADDRESS = "10.1.2.3"
CATALOG = ("contacts:read", "contacts:write", "admin:marketing")
BUILTINS = tuple(BUILTIN_SCOPES)
EVERY_SCOPE = frozenset(CATALOG + BUILTINS)
MEMBER_SCOPES = frozenset({"contacts:read", "contacts:write", *MEMBER_BUILTINS})
# Endpoints a credential can be tried on without changing anything, with the scope each needs.
PROBES = {"/v1/workspaces": "workspaces:read", "/v1/audit-events": "audit:read"}
NETWORKS = (None, ["10.0.0.0/8"], ["10.1.0.0/16"], ["192.168.0.0/16"], ["10.1.2.3/32"])
RATE_LIMITS = (None, (50_000, 60), (100_000, 60), (1_000_000, 60), (100_000, 1))
DEFAULT_LIMIT = (100_000, 60)
MAX_KEYS = 12
MAX_CLIENTS = 4
_emails = itertools.count()


def _role_scopes(role: str | None) -> frozenset[str]:
    if role in ("owner", "admin"):
        return EVERY_SCOPE
    return MEMBER_SCOPES if role == "member" else frozenset()


@dataclass
class Person:
    user_id: str
    email: str
    token: str
    issued_at: datetime
    roles: dict[str, str] = field(default_factory=dict)  # organization id -> role


@dataclass
class Key:
    id: str
    raw: str
    organization_id: str
    resource: dict[str, Any]
    creator: str  # usr_… or key_…
    revoked: bool = False

    @property
    def inherits(self) -> bool:
        return bool(self.resource["inherits_creator_permissions"])


@dataclass
class OAuthApp:
    """An OAuth client with its secret: its client_credentials tokens act as it."""

    id: str
    secret: str
    organization_id: str
    registrant: str  # usr_…
    scopes: frozenset[str]
    deleted: bool = False


@dataclass(frozen=True)
class Bounds:
    """What a creator may put into a key, as the model sees it."""

    scopes: frozenset[str]
    workspaces: frozenset[str] | None
    networks: list[str] | None
    expires_at: datetime | None
    environment: str | None
    rate_limit: tuple[int, int] | None


class Authorization(RuleBasedStateMachine):
    client: TestClient
    clock: ManualClock

    people = Bundle("people")
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.persons: dict[str, Person] = {}
        self.all_keys: dict[str, Key] = {}
        self.apps: dict[str, OAuthApp] = {}
        self.workspaces: dict[str, list[str]] = {}  # organization id -> workspace ids
        self.organization_ids: list[str] = []

    # -- helpers --------------------------------------------------------------------------

    def _call(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
        response = self.client.request(method, path, headers=headers, **kw)
        assert response.status_code < 500, response.text
        return response

    def _person_headers(self, person: Person, organization_id: str) -> dict[str, str]:
        if self.clock.now() - person.issued_at > timedelta(minutes=50):
            person.token, person.issued_at = self._log_in(person.email), self.clock.now()
        return {"Authorization": f"Bearer {person.token}", "X-Organization-ID": organization_id}

    def _log_in(self, email: str) -> str:
        response = self._call(
            "POST", "/v1/auth/token", {}, json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def _key_headers(self, key: Key) -> dict[str, str]:
        return {"X-API-Key": key.raw}

    def _alive(self, key: Key) -> bool:
        resource = key.resource
        if key.revoked or resource["revoked_at"] is not None:
            return False
        expires = resource["expires_at"]
        if expires is not None and datetime.fromisoformat(expires) <= self.clock.now():
            return False
        if key.inherits:
            creator = self.persons.get(key.creator)
            return creator is not None and key.organization_id in creator.roles
        return True

    def _effective_scopes(self, key: Key) -> frozenset[str]:
        if key.inherits:
            creator = self.persons[key.creator]
            return _role_scopes(creator.roles.get(key.organization_id))
        return frozenset(key.resource["scopes"])

    def _ip_allowed(self, key: Key) -> bool:
        networks = key.resource["allowed_ips"]
        return networks is None or any(
            n in ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32") for n in networks
        )

    def _bounds_of_person(self, person: Person, organization_id: str) -> Bounds:
        return Bounds(_role_scopes(person.roles.get(organization_id)), None, None, None, None, None)

    def _bounds_of_key(self, key: Key) -> Bounds:
        resource = key.resource
        workspaces = resource["workspace_ids"]
        expires = resource["expires_at"]
        limit = resource["rate_limit"]
        return Bounds(
            self._effective_scopes(key),
            frozenset(workspaces) if workspaces is not None else None,
            resource["allowed_ips"],
            datetime.fromisoformat(expires) if expires else None,
            resource["environment"],
            (limit["requests"], limit["per_seconds"]) if limit else DEFAULT_LIMIT,
        )

    def _assert_within(self, created: dict[str, Any], bounds: Bounds, organization_id: str) -> None:
        """The key a creator just made holds nothing the creator could not give."""
        scopes = created["scopes"]
        if scopes is None:
            assert bounds.environment is None, "only a person makes an inheriting key"
        else:
            assert set(scopes) <= bounds.scopes
        workspaces = created["workspace_ids"]
        if workspaces is not None:
            assert set(workspaces) <= set(self.workspaces[organization_id])
        if bounds.workspaces is not None:
            assert workspaces is not None and set(workspaces) <= bounds.workspaces
        if bounds.networks is not None:
            assert created["allowed_ips"] is not None
            assert _networks_inside(created["allowed_ips"], bounds.networks)
        if bounds.expires_at is not None:
            assert created["expires_at"] is not None
            assert datetime.fromisoformat(created["expires_at"]) <= bounds.expires_at
        if bounds.environment == "test":
            assert created["environment"] == "test"
        if bounds.rate_limit is not None:
            limit = created["rate_limit"]
            requests, per = (limit["requests"], limit["per_seconds"]) if limit else DEFAULT_LIMIT
            most, most_per = bounds.rate_limit
            assert requests <= most and requests * most_per <= most * per

    def _room_for_keys(self) -> bool:
        """Every key is tried after every step: a cap keeps a run's cost linear."""
        return len(self.all_keys) < MAX_KEYS

    def _remember(self, created: dict[str, Any], organization_id: str, creator: str) -> Key:
        key = Key(created["id"], created["key"], organization_id, created, creator)
        self.all_keys[key.id] = key
        return key

    def _spec(self, data: st.DataObject, organization_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "k"}
        # Each dimension is left out more often than set, so that most attempts can succeed.
        if data.draw(st.booleans()):
            body["scopes"] = sorted(
                data.draw(st.sets(st.sampled_from(sorted(EVERY_SCOPE)), max_size=4))
                | {"api_keys:write", "workspaces:read"}
            )
        if data.draw(st.integers(0, 2)) == 0:
            own = self.workspaces[organization_id]
            foreign = [w for o, ws in self.workspaces.items() if o != organization_id for w in ws]
            pool = own + foreign[:1] if data.draw(st.integers(0, 4)) == 0 else own
            body["workspace_ids"] = sorted(data.draw(st.sets(st.sampled_from(pool), max_size=2)))
        if data.draw(st.integers(0, 2)) == 0:
            body["allowed_ips"] = data.draw(st.sampled_from(NETWORKS[1:]))
        if data.draw(st.integers(0, 2)) == 0:
            minutes = data.draw(st.integers(min_value=1, max_value=600))
            body["expires_at"] = rfc3339(self.clock.now() + timedelta(minutes=minutes))
        body["environment"] = data.draw(st.sampled_from(["live", "live", "test"]))
        if data.draw(st.integers(0, 2)) == 0:
            limit = data.draw(st.sampled_from(RATE_LIMITS[1:]))
            body["rate_limit"] = {"requests": limit[0], "per_seconds": limit[1]}
        return body

    # -- rules ----------------------------------------------------------------------------

    @initialize(target=people)
    def two_organizations_with_people(self) -> Any:
        """Every run starts with two organizations, each with an owner, an admin and a member."""
        entries = []
        for _ in range(2):
            organization = self.sign_up()
            self.organization_ids.append(organization)
            entries.append(self.owner(organization))
            entries.append(self.add_person(organization, "admin"))
            entries.append(self.add_person(organization, "member"))
        return multiple(*entries)

    def _new_person(self) -> tuple[Person, str]:
        """A person who signed up, owner of an organization of their own."""
        email = f"person{next(_emails)}@example.com"
        signed = self._call(
            "POST",
            "/v1/auth/signup",
            {},
            json={"email": email, "password": PASSWORD, "name": "P", "organization_name": "Org"},
        )
        assert signed.status_code == 201, signed.text
        body = signed.json()
        organization_id: str = body["organization"]["id"]
        person = Person(
            body["user"]["id"],
            email,
            self._log_in(email),
            self.clock.now(),
            {organization_id: "owner"},
        )
        self.persons[person.user_id] = person
        headers = self._person_headers(person, organization_id)
        listed = self._call("GET", "/v1/workspaces", headers).json()["data"]
        self.workspaces[organization_id] = [w["id"] for w in listed]
        return person, organization_id

    def sign_up(self) -> str:
        return self._new_person()[1]

    def owner(self, organization: str) -> str:
        return f"{self._owner_of(organization).user_id}|{organization}"

    def add_person(self, organization: str, role: str) -> str:
        person, _ = self._new_person()
        owner = self._owner_of(organization)
        added = self._call(
            "POST",
            "/v1/members",
            self._person_headers(owner, organization),
            json={"email": person.email, "role": role},
        )
        assert added.status_code == 201, added.text
        person.roles[organization] = role
        return f"{person.user_id}|{organization}"

    @rule(data=st.data())
    def add_workspace(self, data: st.DataObject) -> None:
        organization = data.draw(st.sampled_from(self.organization_ids))
        owner = self._owner_of(organization)
        created = self._call(
            "POST",
            "/v1/workspaces",
            self._person_headers(owner, organization),
            json={"name": "More"},
        )
        assert created.status_code == 201, created.text
        self.workspaces[organization].append(created.json()["id"])

    @rule(target=keys, who=people, data=st.data())
    def person_creates_key(self, who: str, data: st.DataObject) -> str:
        user_id, organization = who.split("|")
        person = self.persons[user_id]
        if organization not in person.roles or not self._room_for_keys():
            return ""
        bounds = self._bounds_of_person(person, organization)
        response = self._call(
            "POST",
            "/v1/api-keys",
            self._person_headers(person, organization),
            json=self._spec(data, organization),
        )
        if response.status_code != 201:
            assert response.status_code in (403, 422), response.text
            return ""
        self._assert_within(response.json(), bounds, organization)
        return self._remember(response.json(), organization, user_id).id

    @rule(target=keys, who=people, data=st.data())
    def another_person_creates_key(self, who: str, data: st.DataObject) -> Any:
        return self.person_creates_key(who, data)

    @rule(target=keys, parent=keys, data=st.data())
    def another_key_creates_key(self, parent: str, data: st.DataObject) -> Any:
        return self.key_creates_key(parent, data)

    @rule(target=keys, parent=keys, data=st.data())
    def key_creates_key(self, parent: str, data: st.DataObject) -> str:
        key = self.all_keys.get(parent)
        if key is None or not self._room_for_keys():
            return ""
        bounds = self._bounds_of_key(key)
        response = self._call(
            "POST",
            "/v1/api-keys",
            self._key_headers(key),
            json=self._spec(data, key.organization_id),
        )
        if response.status_code != 201:
            assert response.status_code in (401, 403, 422, 429), response.text
            return ""
        assert self._alive(key) and "api_keys:write" in bounds.scopes
        self._assert_within(response.json(), bounds, key.organization_id)
        return self._remember(response.json(), key.organization_id, key.id).id

    @rule(target=keys, old=keys, by_key=keys, who=people, use_key=st.booleans())
    def roll(self, old: str, by_key: str, who: str, use_key: bool) -> str:
        rolled = self.all_keys.get(old)
        if rolled is None or not self._room_for_keys():
            return ""
        if use_key:
            roller = self.all_keys.get(by_key)
            if roller is None:
                return ""
            headers, bounds, roller_id = (
                self._key_headers(roller),
                self._bounds_of_key(roller),
                roller.id,
            )
            roller_alive = self._alive(roller)
        else:
            user_id, organization = who.split("|")
            person = self.persons[user_id]
            headers = self._person_headers(person, organization)
            bounds = self._bounds_of_person(person, organization)
            roller_id, roller_alive = user_id, organization in person.roles
        response = self._call("POST", f"/v1/api-keys/{rolled.id}/roll", headers)
        if response.status_code != 201:
            assert response.status_code in (401, 403, 404, 409, 422, 429), response.text
            return ""
        new = response.json()
        assert roller_alive and new["created_by"] == roller_id
        assert "api_keys:write" in (
            bounds.scopes
            if use_key
            else _role_scopes(self.persons[roller_id].roles.get(rolled.organization_id))
        )
        for setting in ("scopes", "workspace_ids", "allowed_ips", "environment", "rate_limit"):
            assert new[setting] == rolled.resource[setting]
        self._assert_within(new, bounds, rolled.organization_id)
        rolled.resource = {**rolled.resource, "expires_at": rfc3339(self.clock.now())}
        return self._remember(new, rolled.organization_id, roller_id).id

    @rule(who=people, data=st.data())
    def person_registers_oauth_client(self, who: str, data: st.DataObject) -> None:
        """No client exceeds its registrant: its scopes within the registrant's role."""
        user_id, organization = who.split("|")
        person = self.persons[user_id]
        if organization not in person.roles or len(self.apps) >= MAX_CLIENTS:
            return
        held = _role_scopes(person.roles[organization])
        scopes = sorted(data.draw(st.sets(st.sampled_from(sorted(EVERY_SCOPE)), max_size=4)))
        response = self._call(
            "POST",
            "/v1/oauth-clients",
            self._person_headers(person, organization),
            json={"name": "app", "redirect_uris": ["https://app.example/cb"], "scopes": scopes},
        )
        if response.status_code != 201:
            assert response.status_code == 403, response.text
            assert "oauth_clients:write" not in held or not set(scopes) <= held
            return
        assert "oauth_clients:write" in held and set(scopes) <= held
        created = response.json()
        app = OAuthApp(
            created["id"], created["client_secret"], organization, user_id, frozenset(scopes)
        )
        self.apps[app.id] = app

    @rule(data=st.data())
    def delete_oauth_client(self, data: st.DataObject) -> None:
        live = sorted(a for a, app in self.apps.items() if not app.deleted)
        if not live:
            return
        app = self.apps[data.draw(st.sampled_from(live))]
        owner = self._owner_of(app.organization_id)
        response = self._call(
            "DELETE",
            f"/v1/oauth-clients/{app.id}",
            self._person_headers(owner, app.organization_id),
        )
        assert response.status_code == 200, response.text
        app.deleted = True

    @rule(key=consumes(keys))
    def revoke(self, key: str) -> None:
        target = self.all_keys.get(key)
        if target is None:
            return
        owner = self._owner_of(target.organization_id)
        response = self._call(
            "DELETE", f"/v1/api-keys/{key}", self._person_headers(owner, target.organization_id)
        )
        assert response.status_code == 200, response.text
        target.revoked = True

    @rule(who=people, role=st.sampled_from(["member", "admin"]))
    def change_role(self, who: str, role: str) -> None:
        user_id, organization = who.split("|")
        if self.persons[user_id].roles.get(organization) in (None, "owner"):
            return
        owner = self._owner_of(organization)
        response = self._call(
            "PATCH",
            f"/v1/members/{user_id}",
            self._person_headers(owner, organization),
            json={"role": role},
        )
        assert response.status_code == 200, response.text
        self.persons[user_id].roles[organization] = role

    @rule(who=people)
    def remove(self, who: str) -> None:
        user_id, organization = who.split("|")
        if self.persons[user_id].roles.get(organization) in (None, "owner"):
            return
        owner = self._owner_of(organization)
        response = self._call(
            "DELETE", f"/v1/members/{user_id}", self._person_headers(owner, organization)
        )
        assert response.status_code in (200, 204), response.text
        del self.persons[user_id].roles[organization]

    @rule(minutes=st.sampled_from([0, 0, 0, 1, 5, 30, 240]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes * 60)

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def every_key_is_served_exactly_within_its_bounds(self) -> None:
        for key in self.all_keys.values():
            headers = self._key_headers(key)
            for path, scope in PROBES.items():
                response = self._call("GET", path, headers)
                allowed = (
                    self._alive(key)
                    and self._ip_allowed(key)
                    and scope in self._effective_scopes(key)
                )
                if response.status_code == 200:
                    assert allowed, (path, key.resource)
                    self._assert_own_organization(response.json(), path, key)
                else:
                    assert not allowed, (path, response.text)
                    # 429: refused credentials from this address are throttled as failures.
                    assert response.status_code in (401, 403, 429), response.text

    @invariant()
    def no_key_reaches_another_organization(self) -> None:
        others = list(self.workspaces)
        for key in self.all_keys.values():
            for organization in others:
                if organization == key.organization_id:
                    continue
                headers = {**self._key_headers(key), "X-Organization-ID": organization}
                response = self._call("GET", "/v1/workspaces", headers)
                assert response.status_code in (401, 403, 404, 429), response.text
                break

    @invariant()
    def every_client_token_holds_at_most_what_its_registrant_still_holds(self) -> None:
        for app in self.apps.values():
            issued = self._call(
                "POST",
                "/oauth2/token",
                {},
                data={"grant_type": "client_credentials"},
                auth=(app.id, app.secret),
            )
            if app.deleted:
                assert issued.status_code == 401, issued.text
                continue
            assert issued.status_code == 200, issued.text
            headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
            registrant = self.persons[app.registrant].roles.get(app.organization_id)
            for path, scope in PROBES.items():
                response = self._call("GET", path, headers)
                allowed = scope in app.scopes and scope in _role_scopes(registrant)
                assert (response.status_code == 200) == allowed, (path, app, response.text)
            other = next(o for o in self.workspaces if o != app.organization_id)
            elsewhere = self._call("GET", "/v1/workspaces", {**headers, "X-Organization-ID": other})
            assert elsewhere.status_code in (401, 403, 404), elsewhere.text

    def _assert_own_organization(self, body: dict[str, Any], path: str, key: Key) -> None:
        if path == "/v1/workspaces":
            ids = {w["id"] for w in body["data"]}
            assert ids <= set(self.workspaces[key.organization_id])
            restricted = key.resource["workspace_ids"]
            if restricted is not None:
                assert ids <= set(restricted)
        if path == "/v1/api-keys":
            assert {k["id"] for k in body["data"]} <= {
                k.id for k in self.all_keys.values() if k.organization_id == key.organization_id
            }

    def _owner_of(self, organization_id: str) -> Person:
        return next(p for p in self.persons.values() if p.roles.get(organization_id) == "owner")


def _networks_inside(inner: list[str], outer: list[str]) -> bool:
    import ipaddress

    bounds = [ipaddress.ip_network(n) for n in outer]
    return all(
        any(
            ipaddress.ip_network(n).version == b.version and ipaddress.ip_network(n).subnet_of(b)  # type: ignore[arg-type]
            for b in bounds
        )
        for n in inner
    )


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "rate_limit": {
                "requests": DEFAULT_LIMIT[0],
                "per_seconds": DEFAULT_LIMIT[1],
            }
        }
    ],
)
def test_no_credential_ever_exceeds_its_organization_creator_or_bounds(
    tessera: Tessera, clock: ManualClock
) -> None:
    """Random organizations, people, roles and keys never break the authorization rules."""
    from tessera.web.app import create_app

    with TestClient(
        create_app(tessera), base_url="http://127.0.0.1:8000", client=(CLIENT_ADDRESS, 5000)
    ) as client:
        Authorization.client = client
        Authorization.clock = clock
        machine = Authorization.TestCase
        machine.settings = settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            # Shrinking replays whole API sessions; the printed steps are enough to debug.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        machine().runTest()
