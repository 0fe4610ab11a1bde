"""Sign-up, login, refresh rotation, reuse detection and logout over HTTP."""

from __future__ import annotations

import threading

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tests.helpers import PASSWORD, assert_problem, log_in, sign_up


def test_signup_creates_owner_with_default_workspace(client: TestClient) -> None:
    """Sign-up makes the user the owner of a new organization with a Default workspace."""
    account = sign_up(client)
    me = client.get("/v1/me", headers=account.headers).json()
    assert me["user"]["email"] == "ada@example.com"
    assert me["memberships"][0]["role"] == "owner"
    workspaces = client.get("/v1/workspaces", headers=account.headers).json()["data"]
    assert [w["name"] for w in workspaces] == ["Default"]


@pytest.mark.postgres
def test_signup_twice_with_same_email_any_case_is_email_taken(client: TestClient) -> None:
    """Emails are unique case-insensitively."""
    sign_up(client, "ada@example.com")
    again = client.post(
        "/v1/auth/signup",
        json={"email": "ADA@Example.com", "password": PASSWORD, "organization_name": "Other"},
    )
    assert_problem(again, 409, "email_taken")


def test_short_password_is_refused(client: TestClient) -> None:
    """Passwords have at least 10 characters."""
    response = client.post(
        "/v1/auth/signup",
        json={"email": "b@example.com", "password": "short", "organization_name": "B"},
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "password"


def test_wrong_password_and_unknown_email_answer_the_same(client: TestClient) -> None:
    """Login does not reveal whether an email has an account."""
    sign_up(client)
    wrong = client.post("/v1/auth/token", json={"email": "ada@example.com", "password": "x" * 12})
    unknown = client.post(
        "/v1/auth/token", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    for response in (wrong, unknown):
        assert_problem(response, 401, "unauthorized")
    assert wrong.json()["detail"] == unknown.json()["detail"]


@pytest.mark.postgres
def test_refresh_rotates_and_spends_the_old_token(client: TestClient) -> None:
    """A refresh returns a new pair; the old refresh token no longer works."""
    account = sign_up(client)
    first = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert first.status_code == 200
    assert first.json()["refresh_token"] != account.refresh_token
    assert (
        client.get(
            "/v1/me", headers={"Authorization": "Bearer " + first.json()["access_token"]}
        ).status_code
        == 200
    )


@pytest.mark.postgres
def test_reuse_of_spent_refresh_token_revokes_the_whole_family(client: TestClient) -> None:
    """Presenting a spent refresh token ends every token of its login."""
    account = sign_up(client)
    rotated = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    ).json()
    replay = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert_problem(replay, 401, "unauthorized")
    descendant = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert_problem(descendant, 401, "unauthorized")
    me = client.get("/v1/me", headers={"Authorization": "Bearer " + rotated["access_token"]})
    assert_problem(me, 401, "unauthorized")


@pytest.mark.postgres
def test_two_racing_refreshes_have_exactly_one_winner(client: TestClient) -> None:
    """Of two concurrent refreshes with one token, exactly one succeeds."""
    account = sign_up(client)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def refresh() -> None:
        barrier.wait()
        response = client.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]


def test_access_token_expires_with_the_clock(client: TestClient, clock: ManualClock) -> None:
    """An access token stops working when its hour is up."""
    account = sign_up(client)
    clock.advance(3599)
    assert client.get("/v1/me", headers=account.headers).status_code == 200
    clock.advance(1)
    assert_problem(client.get("/v1/me", headers=account.headers), 401, "unauthorized")


@pytest.mark.postgres
def test_refresh_token_expires_after_its_absolute_lifetime(
    client: TestClient, clock: ManualClock
) -> None:
    """Refresh tokens die refresh_ttl_days after login, however often rotated."""
    account = sign_up(client)
    clock.advance(30 * 86400)
    response = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert_problem(response, 401, "unauthorized")


@pytest.mark.postgres
def test_logout_ends_the_refresh_family(client: TestClient) -> None:
    """After logout neither the refresh token nor its access token works."""
    account = sign_up(client)
    assert (
        client.post("/v1/auth/logout", json={"refresh_token": account.refresh_token}).status_code
        == 204
    )
    response = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert_problem(response, 401, "unauthorized")
    assert_problem(client.get("/v1/me", headers=account.headers), 401, "unauthorized")


def test_failed_logins_are_throttled_per_email(client: TestClient) -> None:
    """After too many failures for one email from an address, even the right password from
    that address waits (429)."""
    sign_up(client)
    for _ in range(10):
        client.post(
            "/v1/auth/token", json={"email": "ada@example.com", "password": "wrong password"}
        )
    throttled = client.post(
        "/v1/auth/token", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert_problem(throttled, 429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) > 0


@pytest.mark.parametrize("config_overrides", [{"signup": "closed"}])
def test_signup_closed_is_forbidden(client: TestClient) -> None:
    """With signup = "closed" nobody can sign up."""
    response = client.post(
        "/v1/auth/signup",
        json={"email": "c@example.com", "password": PASSWORD, "organization_name": "C"},
    )
    assert_problem(response, 403, "forbidden")


def test_login_works_after_signup(client: TestClient) -> None:
    """The tokens of a login carry the RFC 9068 fields."""
    sign_up(client)
    tokens = log_in(client, "ada@example.com")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["refresh_token"].startswith("rt_")
