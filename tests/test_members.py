"""Members and roles: who may change what, and an organization never without an owner."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.helpers import Account, assert_problem, log_in, sign_up


def _team(client: TestClient) -> tuple[Account, Account]:
    """Ada owns Acme; Bob (own org elsewhere) is added to Acme as a member."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Bobco")
    added = client.post("/v1/members", json={"email": "bob@example.com"}, headers=ada.headers)
    assert added.status_code == 201 and added.json()["role"] == "member"
    return ada, bob


def _in_acme(account: Account, ada: Account) -> dict[str, str]:
    return {**account.headers, "X-Organization-ID": ada.organization_id}


def test_owner_lists_adds_and_changes_roles(client: TestClient) -> None:
    """An owner adds a member and promotes them; the change is audited."""
    ada, bob = _team(client)
    listed = client.get("/v1/members", headers=ada.headers).json()["data"]
    assert {(m["user"]["email"], m["role"]) for m in listed} == {
        ("ada@example.com", "owner"),
        ("bob@example.com", "member"),
    }
    promoted = client.patch(
        f"/v1/members/{bob.user_id}", json={"role": "admin"}, headers=ada.headers
    )
    assert promoted.json()["role"] == "admin"
    bob_in_acme = client.get("/v1/workspaces", headers=_in_acme(bob, ada))
    assert bob_in_acme.status_code == 200


def test_member_cannot_manage_members(client: TestClient) -> None:
    """A plain member lacks members:write."""
    ada, bob = _team(client)
    response = client.patch(
        f"/v1/members/{ada.user_id}", json={"role": "member"}, headers=_in_acme(bob, ada)
    )
    assert_problem(response, 403, "forbidden")


def test_admin_cannot_touch_an_owner_or_make_owners(client: TestClient) -> None:
    """Only an owner changes owners or grants owner."""
    ada, bob = _team(client)
    client.patch(f"/v1/members/{bob.user_id}", json={"role": "admin"}, headers=ada.headers)
    as_bob = _in_acme(bob, ada)
    demote = client.patch(f"/v1/members/{ada.user_id}", json={"role": "member"}, headers=as_bob)
    assert_problem(demote, 403, "forbidden")
    crown = client.patch(f"/v1/members/{bob.user_id}", json={"role": "owner"}, headers=as_bob)
    assert_problem(crown, 403, "forbidden")


@pytest.mark.postgres
def test_last_owner_cannot_leave_or_be_demoted(client: TestClient) -> None:
    """An organization always keeps an owner."""
    ada, _ = _team(client)
    demote = client.patch(f"/v1/members/{ada.user_id}", json={"role": "admin"}, headers=ada.headers)
    assert_problem(demote, 409, "conflict")
    leave = client.delete(f"/v1/members/{ada.user_id}", headers=ada.headers)
    assert_problem(leave, 409, "conflict")


def test_removed_member_loses_access(client: TestClient) -> None:
    """After removal, the organization answers 404 to the former member."""
    ada, bob = _team(client)
    assert client.delete(f"/v1/members/{bob.user_id}", headers=ada.headers).status_code == 200
    fresh = log_in(client, "bob@example.com")["access_token"]
    headers = {"Authorization": f"Bearer {fresh}", "X-Organization-ID": ada.organization_id}
    assert_problem(client.get("/v1/workspaces", headers=headers), 404, "not_found")


def test_unknown_role_and_unknown_user(client: TestClient) -> None:
    """Roles come from the config; members of other organizations are 404."""
    ada, bob = _team(client)
    bad = client.patch(f"/v1/members/{bob.user_id}", json={"role": "emperor"}, headers=ada.headers)
    assert_problem(bad, 422, "validation_error")
    stranger = sign_up(client, "eve@example.com", "Evil")
    other = client.patch(
        f"/v1/members/{stranger.user_id}", json={"role": "admin"}, headers=ada.headers
    )
    assert_problem(other, 404, "not_found")
