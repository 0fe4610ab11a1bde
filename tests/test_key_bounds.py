"""No key exceeds its creator on any dimension, created or rolled (SPEC section 2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tests.helpers import Account, assert_problem, create_key, sign_up


def _bearer(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['key']}"}


def _member_of(client: TestClient, owner: Account, email: str, role: str) -> dict[str, str]:
    """Headers of a second person who is ``role`` in ``owner``'s organization."""
    other = sign_up(client, email, "Elsewhere")
    added = client.post("/v1/members", json={"email": email, "role": role}, headers=owner.headers)
    assert added.status_code == 201, added.text
    return {**other.headers, "X-Organization-ID": owner.organization_id}


def _roll(client: TestClient, key_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/v1/api-keys/{key_id}/roll", headers=headers)


def test_a_member_cannot_roll_the_owners_inheriting_key_into_owner_rights(
    client: TestClient,
) -> None:
    """Rolling an owner's inheriting key as a member yields a key with the member's rights."""
    owner = sign_up(client)
    member = _member_of(client, owner, "mallory@example.com", "member")
    owners_key = client.post("/v1/api-keys", json={"name": "inherit"}, headers=owner.headers)
    rolled = _roll(client, owners_key.json()["id"], member)
    assert rolled.status_code == 201, rolled.text
    new_key = rolled.json()
    assert new_key["created_by"] != owner.user_id
    promote = client.patch(
        f"/v1/members/{owner.user_id}", json={"role": "member"}, headers=_bearer(new_key)
    )
    assert_problem(promote, 403, "forbidden")
    assert_problem(client.get("/v1/audit-events", headers=_bearer(new_key)), 403, "forbidden")


def test_a_member_cannot_roll_a_key_holding_scopes_the_member_lacks(client: TestClient) -> None:
    """A roll is a creation by the caller: scopes beyond the caller's role are refused."""
    owner = sign_up(client)
    member = _member_of(client, owner, "mallory@example.com", "member")
    audit_key = create_key(client, owner, scopes=["audit:read", "members:write"])
    assert_problem(_roll(client, audit_key["id"], member), 403, "forbidden")
    assert client.get("/v1/audit-events", headers=_bearer(audit_key)).status_code == 200


def test_a_narrow_key_cannot_roll_a_broader_key(client: TestClient) -> None:
    """A key with only api_keys:write cannot roll a key with more scopes than it has."""
    owner = sign_up(client)
    manager = create_key(client, owner, scopes=["api_keys:write"])
    broad = create_key(client, owner, scopes=["api_keys:write", "audit:read"])
    assert_problem(_roll(client, broad["id"], _bearer(manager)), 403, "forbidden")


def test_a_key_cannot_roll_an_inheriting_key(client: TestClient) -> None:
    """Only a person can roll a key that inherits a person's permissions."""
    owner = sign_up(client)
    manager = create_key(client, owner, scopes=["api_keys:write", "api_keys:read"])
    inheriting = client.post("/v1/api-keys", json={"name": "i"}, headers=owner.headers).json()
    assert_problem(_roll(client, inheriting["id"], _bearer(manager)), 403, "forbidden")


def test_a_rolled_key_is_created_by_whoever_rolled_it(client: TestClient) -> None:
    """The new key's created_by is the caller, not the old key's creator."""
    owner = sign_up(client)
    admin = _member_of(client, owner, "grace@example.com", "admin")
    old = create_key(client, owner, scopes=["workspaces:read"])
    rolled = _roll(client, old["id"], admin)
    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["created_by"] != owner.user_id
    assert rolled.json()["scopes"] == ["workspaces:read"]


def test_a_key_cannot_roll_a_key_wider_than_itself_on_any_dimension(client: TestClient) -> None:
    """A key restricted to a network cannot roll an unrestricted key (it would widen it)."""
    owner = sign_up(client)
    manager = create_key(
        client, owner, scopes=["api_keys:write", "workspaces:read"], allowed_ips=["10.0.0.0/8"]
    )
    unrestricted = create_key(client, owner, scopes=["workspaces:read"])
    restricted = create_key(client, owner, scopes=["workspaces:read"], allowed_ips=["10.9.0.0/16"])
    with TestClient(client.app, base_url=str(client.base_url), client=("10.1.2.3", 5000)) as near:
        assert_problem(_roll(near, unrestricted["id"], _bearer(manager)), 403, "forbidden")
        assert _roll(near, restricted["id"], _bearer(manager)).status_code == 201


@pytest.mark.postgres
@pytest.mark.parametrize("expires_in_days", [None, 10])
def test_roll_keeps_the_expiry_on_every_database(
    client: TestClient, clock: ManualClock, expires_in_days: int | None
) -> None:
    """Rolling a key with or without an expiry works, and the new key keeps it."""
    owner = sign_up(client)
    expires_at = rfc3339(clock.now() + timedelta(days=expires_in_days)) if expires_in_days else None
    old = create_key(client, owner, scopes=["workspaces:read"], expires_at=expires_at)
    rolled = client.post(
        f"/v1/api-keys/{old['id']}/roll",
        json={"expires_old_in_seconds": 60},
        headers=owner.headers,
    )
    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["expires_at"] == expires_at
    old_now = client.get(f"/v1/api-keys/{old['id']}", headers=owner.headers).json()
    assert old_now["expires_at"] == rfc3339(clock.now() + timedelta(seconds=60))


@pytest.mark.postgres
@pytest.mark.parametrize("config_overrides", [{"max_key_lifetime_days": 30}])
def test_roll_works_with_a_maximum_key_lifetime(client: TestClient, clock: ManualClock) -> None:
    """With max_key_lifetime_days set every key has an expiry, and rolling one still works."""
    owner = sign_up(client)
    old = create_key(client, owner, expires_at=rfc3339(clock.now() + timedelta(days=20)))
    assert _roll(client, old["id"], owner.headers).status_code == 201


def _child(client: TestClient, parent: dict[str, Any], **body: Any) -> Any:
    return client.post("/v1/api-keys", json={"name": "child", **body}, headers=_bearer(parent))


def test_an_ip_restricted_key_cannot_create_an_unrestricted_or_wider_one(
    client: TestClient,
) -> None:
    """A child key's networks lie inside its parent's; left out, it takes the parent's."""
    owner = sign_up(client)
    parent = create_key(client, owner, scopes=["api_keys:write"], allowed_ips=["10.0.0.0/8"])
    with TestClient(client.app, base_url=str(client.base_url), client=("10.1.2.3", 5000)) as near:
        assert _child(near, parent).json()["allowed_ips"] == ["10.0.0.0/8"]
        assert_problem(_child(near, parent, allowed_ips=["0.0.0.0/0"]), 403, "forbidden")
        assert_problem(_child(near, parent, allowed_ips=["11.0.0.0/8"]), 403, "forbidden")
        assert_problem(_child(near, parent, allowed_ips=["::/0"]), 403, "forbidden")
        inside = _child(near, parent, allowed_ips=["10.1.0.0/16"])
        assert inside.status_code == 201, inside.text
        assert inside.json()["allowed_ips"] == ["10.1.0.0/16"]


def test_an_expiring_key_cannot_create_a_longer_lived_one(
    client: TestClient, clock: ManualClock
) -> None:
    """A child expires no later than its parent; left out, it takes the parent's expiry."""
    owner = sign_up(client)
    ten_minutes = rfc3339(clock.now() + timedelta(minutes=10))
    parent = create_key(client, owner, scopes=["api_keys:write"], expires_at=ten_minutes)
    assert _child(client, parent).json()["expires_at"] == ten_minutes
    later = rfc3339(clock.now() + timedelta(days=1))
    assert_problem(_child(client, parent, expires_at=later), 403, "forbidden")
    sooner = rfc3339(clock.now() + timedelta(minutes=5))
    assert _child(client, parent, expires_at=sooner).status_code == 201


def test_a_test_key_creates_only_test_keys(client: TestClient) -> None:
    """A test key asking for a live key is refused; it may make test keys."""
    owner = sign_up(client)
    parent = create_key(client, owner, scopes=["api_keys:write"], environment="test")
    assert_problem(_child(client, parent, environment="live"), 403, "forbidden")
    assert _child(client, parent, environment="test").json()["environment"] == "test"


def test_a_rate_limited_key_cannot_create_a_faster_one(client: TestClient) -> None:
    """A child's limit is no burstier and no faster than its parent's own limit."""
    owner = sign_up(client)
    parent = create_key(
        client, owner, scopes=["api_keys:write"], rate_limit={"requests": 100, "per_seconds": 86400}
    )
    fast = {"requests": 10_000_000, "per_seconds": 1}
    assert_problem(_child(client, parent, rate_limit=fast), 403, "forbidden")
    same_burst_faster = {"requests": 100, "per_seconds": 60}
    assert_problem(_child(client, parent, rate_limit=same_burst_faster), 403, "forbidden")
    assert _child(client, parent).json()["rate_limit"] == {"requests": 100, "per_seconds": 86400}


def test_a_key_on_the_default_limit_is_bounded_by_the_default(client: TestClient) -> None:
    """A key with no own limit has the deployment default, and its children cannot exceed it."""
    owner = sign_up(client)
    parent = create_key(client, owner, scopes=["api_keys:write"])
    assert_problem(
        _child(client, parent, rate_limit={"requests": 1_000_000, "per_seconds": 60}),
        403,
        "forbidden",
    )
    slower = _child(client, parent, rate_limit={"requests": 10, "per_seconds": 60})
    assert slower.status_code == 201, slower.text
