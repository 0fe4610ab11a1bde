"""API key endpoints and their rules (SPEC section 2), through HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tessera.deployment import Tessera
from tessera.storage.models import Membership
from tests.helpers import Account, assert_problem, create_key, sign_up


def _key_headers(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['key']}"}


def _set_role(tessera: Tessera, account: Account, role: str) -> None:
    with tessera.db.session() as session:
        member = session.get(Membership, (account.user_id, account.organization_id))
        assert member is not None
        member.role = role


def test_create_returns_the_raw_key_once(client: TestClient) -> None:
    """The key is in the creation response and in no later read."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    assert created["key"].startswith("tsr_live_")
    assert created["key_prefix"] == created["key"][: len("tsr_live_") + 6]
    assert created["active"] is True and created["inherits_creator_permissions"] is False
    fetched = client.get(f"/v1/api-keys/{created['id']}", headers=account.headers).json()
    listed = client.get("/v1/api-keys", headers=account.headers).json()["data"]
    assert "key" not in fetched and all("key" not in k for k in listed)
    assert fetched["scopes"] == ["contacts:read"]


def test_key_works_in_either_header(client: TestClient) -> None:
    """Authorization: Bearer and X-API-Key both carry a key."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["workspaces:read"])
    assert client.get("/v1/workspaces", headers=_key_headers(created)).status_code == 200
    assert client.get("/v1/workspaces", headers={"X-API-Key": created["key"]}).status_code == 200


def test_missing_scope_is_403_with_required_scopes(client: TestClient) -> None:
    """A key without the route's scope gets 403, required_scopes and insufficient_scope."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    response = client.get("/v1/workspaces", headers=_key_headers(created))
    body = assert_problem(response, 403, "forbidden")
    assert body["required_scopes"] == ["workspaces:read"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_unknown_scope_is_422(client: TestClient) -> None:
    """Scopes outside the catalog are refused."""
    account = sign_up(client)
    response = client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["contacts:delete"]}, headers=account.headers
    )
    assert_problem(response, 422, "unknown_scope")


def test_admin_only_scope_needs_an_admin(client: TestClient, tessera: Tessera) -> None:
    """A member cannot grant an admin-only scope; an owner can."""
    account = sign_up(client)
    assert create_key(client, account, scopes=["admin:marketing"])["scopes"] == ["admin:marketing"]
    _set_role(tessera, account, "member")
    response = client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["admin:marketing"]}, headers=account.headers
    )
    assert_problem(response, 403, "forbidden")


def test_no_key_exceeds_its_creating_user(client: TestClient, tessera: Tessera) -> None:
    """A member cannot create a key with audit:read, which the member role lacks."""
    account = sign_up(client)
    _set_role(tessera, account, "member")
    response = client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["audit:read"]}, headers=account.headers
    )
    assert_problem(response, 403, "forbidden")


def test_a_key_manages_keys_only_with_api_keys_write_and_within_itself(client: TestClient) -> None:
    """Keys need api_keys:write to create keys, and cannot create wider ones."""
    account = sign_up(client)
    reader = create_key(client, account, scopes=["contacts:read"])
    refused = client.post(
        "/v1/api-keys",
        json={"name": "x", "scopes": ["contacts:read"]},
        headers=_key_headers(reader),
    )
    assert_problem(refused, 403, "forbidden")
    manager = create_key(client, account, scopes=["api_keys:write", "contacts:read"])
    wider = client.post(
        "/v1/api-keys",
        json={"name": "x", "scopes": ["contacts:write"]},
        headers=_key_headers(manager),
    )
    assert_problem(wider, 403, "forbidden")
    child = client.post("/v1/api-keys", json={"name": "child"}, headers=_key_headers(manager))
    assert child.status_code == 201
    assert child.json()["scopes"] == ["api_keys:write", "contacts:read"]


def test_workspace_of_another_organization_is_unknown(client: TestClient) -> None:
    """workspace_ids must name workspaces of the caller's organization."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    theirs = client.get("/v1/workspaces", headers=bob.headers).json()["data"][0]["id"]
    response = client.post(
        "/v1/api-keys", json={"name": "x", "workspace_ids": [theirs]}, headers=ada.headers
    )
    assert_problem(response, 422, "unknown_workspace")


def test_expiry_in_the_past_is_invalid(client: TestClient, clock: ManualClock) -> None:
    """expires_at must lie in the future."""
    account = sign_up(client)
    past = rfc3339(clock.now() - timedelta(seconds=1))
    response = client.post(
        "/v1/api-keys", json={"name": "x", "expires_at": past}, headers=account.headers
    )
    assert_problem(response, 422, "invalid_expiry")


@pytest.mark.postgres
@pytest.mark.parametrize("config_overrides", [{"max_key_lifetime_days": 90}])
def test_max_key_lifetime_requires_and_bounds_expiry(
    client: TestClient, clock: ManualClock
) -> None:
    """With max_key_lifetime_days set, expires_at is required and bounded."""
    account = sign_up(client)
    missing = client.post("/v1/api-keys", json={"name": "x"}, headers=account.headers)
    assert_problem(missing, 422, "invalid_expiry")
    too_far = rfc3339(clock.now() + timedelta(days=91))
    beyond = client.post(
        "/v1/api-keys", json={"name": "x", "expires_at": too_far}, headers=account.headers
    )
    assert_problem(beyond, 422, "invalid_expiry")
    create_key(client, account, expires_at=rfc3339(clock.now() + timedelta(days=89)))


@pytest.mark.parametrize(
    "field", ["scopes", "workspace_ids", "environment", "allowed_ips", "rate_limit"]
)
def test_immutable_fields_cannot_be_patched(client: TestClient, field: str) -> None:
    """Only the name may change; anything else says to revoke and create a new key."""
    account = sign_up(client)
    created = create_key(client, account)
    response = client.patch(
        f"/v1/api-keys/{created['id']}", json={field: None}, headers=account.headers
    )
    body = assert_problem(response, 422, "immutable_field")
    assert "revoke" in body["detail"]


def test_rename(client: TestClient) -> None:
    """PATCH name renames the key."""
    account = sign_up(client)
    created = create_key(client, account)
    renamed = client.patch(
        f"/v1/api-keys/{created['id']}", json={"name": "Billing"}, headers=account.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Billing"


def test_inheriting_key_follows_the_creator_and_dies_when_they_leave(
    client: TestClient, tessera: Tessera
) -> None:
    """scopes null: the creator's role at each request; nothing once the creator is gone."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Bobco")
    client.post(
        "/v1/members", json={"email": "bob@example.com", "role": "admin"}, headers=ada.headers
    )
    bob_in_acme = Account(
        bob.email, bob.user_id, ada.organization_id, bob.access_token, bob.refresh_token
    )
    headers = {**bob.headers, "X-Organization-ID": ada.organization_id}
    created = client.post("/v1/api-keys", json={"name": "inherit"}, headers=headers).json()
    assert created["scopes"] is None and created["inherits_creator_permissions"] is True
    key = _key_headers(created)
    assert client.get("/v1/audit-events", headers=key).status_code == 200
    _set_role(tessera, bob_in_acme, "member")
    assert_problem(client.get("/v1/audit-events", headers=key), 403, "forbidden")
    client.delete(f"/v1/members/{bob.user_id}", headers=ada.headers)
    assert_problem(client.get("/v1/workspaces", headers=key), 401, "unauthorized")


def test_ip_allowlist_refuses_other_addresses(client: TestClient) -> None:
    """A key limited to a network is refused from elsewhere."""
    account = sign_up(client)
    created = create_key(
        client, account, scopes=["workspaces:read"], allowed_ips=["203.0.113.0/24"]
    )
    assert created["allowed_ips"] == ["203.0.113.0/24"]
    assert_problem(client.get("/v1/workspaces", headers=_key_headers(created)), 403, "forbidden")


def test_bad_cidr_is_a_validation_error(client: TestClient) -> None:
    """allowed_ips must be addresses or CIDR networks."""
    account = sign_up(client)
    response = client.post(
        "/v1/api-keys", json={"name": "x", "allowed_ips": ["10.0.0.0/33"]}, headers=account.headers
    )
    assert_problem(response, 422, "validation_error")


def test_rate_limit_setting_is_stored(client: TestClient) -> None:
    """A key's own rate limit is kept and shown."""
    account = sign_up(client)
    created = create_key(client, account, rate_limit={"requests": 100, "per_seconds": 60})
    assert created["rate_limit"] == {"requests": 100, "per_seconds": 60}


def test_revoked_key_is_refused_on_the_very_next_request(client: TestClient) -> None:
    """Revocation is immediate, even though the key was cached by a use just before."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["workspaces:read"])
    assert client.get("/v1/workspaces", headers=_key_headers(created)).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{created['id']}", headers=account.headers).json()
    assert revoked["revoked_at"] is not None and revoked["active"] is False
    assert_problem(client.get("/v1/workspaces", headers=_key_headers(created)), 401, "unauthorized")


@pytest.mark.postgres
def test_expired_key_is_refused_the_moment_it_expires(
    client: TestClient, clock: ManualClock
) -> None:
    """A key is valid until expires_at and refused from that instant."""
    account = sign_up(client)
    created = create_key(
        client,
        account,
        scopes=["workspaces:read"],
        expires_at=rfc3339(clock.now() + timedelta(minutes=30)),
    )
    clock.advance(1799)
    assert client.get("/v1/workspaces", headers=_key_headers(created)).status_code == 200
    clock.advance(1)
    assert_problem(client.get("/v1/workspaces", headers=_key_headers(created)), 401, "unauthorized")
    assert (
        client.get(f"/v1/api-keys/{created['id']}", headers=account.headers).json()["active"]
        is False
    )


@pytest.mark.postgres
def test_rolled_key_predecessor_works_until_grace_ends(
    client: TestClient, clock: ManualClock
) -> None:
    """Roll gives a new key with the same settings; the old one lives out its grace period."""
    account = sign_up(client)
    old = create_key(client, account, scopes=["workspaces:read"])
    client.get("/v1/workspaces", headers=_key_headers(old))
    rolled = client.post(
        f"/v1/api-keys/{old['id']}/roll",
        json={"expires_old_in_seconds": 600},
        headers=account.headers,
    )
    assert rolled.status_code == 201
    new = rolled.json()
    assert new["key"] != old["key"] and new["scopes"] == old["scopes"]
    clock.advance(599)
    assert client.get("/v1/workspaces", headers=_key_headers(old)).status_code == 200
    clock.advance(1)
    assert_problem(client.get("/v1/workspaces", headers=_key_headers(old)), 401, "unauthorized")
    assert client.get("/v1/workspaces", headers=_key_headers(new)).status_code == 200


def test_roll_without_grace_kills_the_old_key_now(client: TestClient) -> None:
    """The default grace period is zero."""
    account = sign_up(client)
    old = create_key(client, account, scopes=["workspaces:read"])
    client.post(f"/v1/api-keys/{old['id']}/roll", headers=account.headers)
    assert_problem(client.get("/v1/workspaces", headers=_key_headers(old)), 401, "unauthorized")


@pytest.mark.postgres
def test_list_paginates_and_hides_revoked_unless_asked(
    client: TestClient, clock: ManualClock
) -> None:
    """Cursor pagination walks every key once; include_revoked shows revoked ones."""
    account = sign_up(client)
    ids = []
    for index in range(5):
        clock.advance(1)
        ids.append(create_key(client, account, name=f"k{index}")["id"])
    client.delete(f"/v1/api-keys/{ids[0]}", headers=account.headers)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/api-keys", params=params, headers=account.headers).json()
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids[1:]))
    everything = client.get(
        "/v1/api-keys", params={"include_revoked": "true"}, headers=account.headers
    )
    assert len(everything.json()["data"]) == 5


def test_keys_of_another_organization_are_404(client: TestClient) -> None:
    """Another organization's key ids answer 404, never 403."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    theirs = create_key(client, bob)
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/v1/api-keys/{theirs['id']}", headers=ada.headers)
        assert_problem(response, 404, "not_found")
    assert_problem(
        client.post(f"/v1/api-keys/{theirs['id']}/roll", headers=ada.headers), 404, "not_found"
    )


def test_a_key_naming_another_organization_is_404(client: TestClient) -> None:
    """A key sent with X-Organization-ID of another organization answers 404, never 403."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    key = _key_headers(create_key(client, ada, scopes=["workspaces:read"]))
    assert client.get("/v1/workspaces", headers=key).status_code == 200
    elsewhere = {**key, "X-Organization-ID": bob.organization_id}
    assert_problem(client.get("/v1/workspaces", headers=elsewhere), 404, "not_found")
    own = {**key, "X-Organization-ID": ada.organization_id}
    assert client.get("/v1/workspaces", headers=own).status_code == 200


def test_workspace_context_from_header_and_single_workspace_keys(client: TestClient) -> None:
    """A key limited to one workspace refuses X-Workspace-ID naming another (403)."""
    account = sign_up(client)
    default = client.get("/v1/workspaces", headers=account.headers).json()["data"][0]["id"]
    other = client.post("/v1/workspaces", json={"name": "B"}, headers=account.headers).json()["id"]
    created = create_key(client, account, scopes=["workspaces:read"], workspace_ids=[default])
    headers = _key_headers(created)
    listed = client.get("/v1/workspaces", headers=headers).json()["data"]
    assert [w["id"] for w in listed] == [default]
    ok = client.get("/v1/workspaces", headers={**headers, "X-Workspace-ID": default})
    assert ok.status_code == 200
    refused = client.get("/v1/workspaces", headers={**headers, "X-Workspace-ID": other})
    assert_problem(refused, 403, "forbidden")


def test_a_key_is_not_its_creator_on_v1_me(client: TestClient) -> None:
    """/v1/me describes users; a key, even one acting with its creator's role, gets 403."""
    account = sign_up(client)
    key = create_key(client, account)
    assert_problem(client.get("/v1/me", headers=_key_headers(key)), 403, "forbidden")
