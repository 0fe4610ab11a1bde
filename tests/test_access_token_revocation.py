"""An access token ends with its refresh-token family, and follows the person's current role
(SPEC section 3): refused at once, not at its ``exp``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.helpers import PASSWORD, Account, assert_problem, log_in, sign_up

pytestmark = pytest.mark.postgres  # families ended in the database

REFRESH = "refresh_token"


def _joined_only(client: TestClient, tessera: Tessera, owner: Account, role: str) -> Account:
    """A person whose only organization is ``owner``'s (as `tessera user create` makes one),
    logged in: their tokens belong to that organization."""
    organization = tessera.accounts.organization(owner.organization_id)
    assert organization is not None
    account = tessera.accounts.create_user(
        email="bob@example.com",
        password=PASSWORD,
        name="",
        organization_name=organization.name,
        role=role,
        join=True,
    )
    user_id = account.user.id
    tokens = log_in(client, "bob@example.com")
    return Account(
        "bob@example.com",
        user_id,
        owner.organization_id,
        tokens["access_token"],
        tokens[REFRESH],
    )


def _refresh(client: TestClient, raw: str) -> int:
    body = {"grant_type": REFRESH, REFRESH: raw}
    return client.post("/v1/auth/token", json=body).status_code


def _logout(client: TestClient, person: Account, _owner: Account) -> None:
    assert client.post("/v1/auth/logout", json={REFRESH: person.refresh_token}).status_code == 204


def _reuse(client: TestClient, person: Account, _owner: Account) -> None:
    assert _refresh(client, person.refresh_token) == 200
    assert _refresh(client, person.refresh_token) == 401  # the family ends here


def _sign_out_everywhere(client: TestClient, person: Account, _owner: Account) -> None:
    assert client.delete("/v1/sessions", headers=person.headers).status_code == 204


def _removal(client: TestClient, person: Account, owner: Account) -> None:
    removed = client.delete(f"/v1/members/{person.user_id}", headers=owner.headers)
    assert removed.status_code == 200, removed.text


Trigger = Callable[[TestClient, Account, Account], None]


@pytest.mark.parametrize(
    "end", [_logout, _reuse, _sign_out_everywhere, _removal], ids=lambda f: f.__name__[1:]
)
def test_an_access_token_is_refused_as_soon_as_its_family_ends(
    client: TestClient, tessera: Tessera, end: Trigger
) -> None:
    """Logout, reuse detection, sign out everywhere, removal from the organization: the
    access token of the family is refused on the next request, long before its exp."""
    owner = sign_up(client, "ada@example.com", "Acme")
    person = _joined_only(client, tessera, owner, "admin")
    assert client.get("/v1/workspaces", headers=person.headers).status_code == 200
    end(client, person, owner)
    for path in ("/v1/me", "/v1/workspaces"):
        assert_problem(client.get(path, headers=person.headers), 401, "unauthorized")
    assert _refresh(client, person.refresh_token) == 401


def test_removal_ends_only_the_families_of_that_organization(client: TestClient) -> None:
    """Leaving one organization keeps the person's tokens for their own organization."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Bobco")
    client.post("/v1/members", json={"email": bob.email, "role": "admin"}, headers=ada.headers)
    assert client.delete(f"/v1/members/{bob.user_id}", headers=ada.headers).status_code == 200
    assert client.get("/v1/workspaces", headers=bob.headers).status_code == 200
    in_acme = {**bob.headers, "X-Organization-ID": ada.organization_id}
    assert_problem(client.get("/v1/workspaces", headers=in_acme), 404, "not_found")


def test_a_demotion_takes_effect_on_the_next_request(client: TestClient, tessera: Tessera) -> None:
    """An admin made member loses audit:read with the token they already hold."""
    owner = sign_up(client, "ada@example.com", "Acme")
    person = _joined_only(client, tessera, owner, "admin")
    assert client.get("/v1/audit-events", headers=person.headers).status_code == 200
    demoted = client.patch(
        f"/v1/members/{person.user_id}", json={"role": "member"}, headers=owner.headers
    )
    assert demoted.status_code == 200
    assert_problem(client.get("/v1/audit-events", headers=person.headers), 403, "forbidden")


def test_a_promotion_never_widens_a_token_beyond_its_scope_claim(
    client: TestClient, tessera: Tessera
) -> None:
    """Permissions are the token's scope claim intersected with the current role: a member
    made admin gains audit:read only with a token issued after the change."""
    owner = sign_up(client, "ada@example.com", "Acme")
    person = _joined_only(client, tessera, owner, "member")
    promoted = client.patch(
        f"/v1/members/{person.user_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert promoted.status_code == 200
    assert_problem(client.get("/v1/audit-events", headers=person.headers), 403, "forbidden")
    fresh = log_in(client, person.email)["access_token"]
    after = client.get("/v1/audit-events", headers={"Authorization": f"Bearer {fresh}"})
    assert after.status_code == 200
