"""Invitations (SPEC section 3): emailed through a real SMTP server or shown once to the
inviter, accepted by signing up or signing in, single use, seven days, stored as a digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.storage import models
from tessera.storage.db import engine_url
from tests.helpers import PASSWORD, Account, assert_problem, log_in, sign_up
from tests.mailbox import Mailbox, link_in, smtp_server, token_of
from tests.servers import free_port

SENDER = "Acme <no-reply@acme.example>"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """With SMTP unless the test is marked ``no_smtp`` by its name."""
    if "without_smtp" in request.node.name:
        return {}
    if "smtp_down" in request.node.name:
        return {"smtp": {"url": f"smtp://127.0.0.1:{free_port()}", "sender": SENDER}}
    box: Mailbox = request.getfixturevalue("mailbox")
    return {"smtp": {"url": box.url, "sender": SENDER}}


def _invite(client: TestClient, inviter: Account, email: str, role: str = "member") -> Any:
    return client.post(
        "/v1/invitations", json={"email": email, "role": role}, headers=inviter.headers
    )


@pytest.mark.postgres
def test_invitation_is_emailed_and_accepted_by_signing_up(
    client: TestClient, mailbox: Mailbox
) -> None:
    """The link arrives by mail, never in the answer; following it makes an account in the
    inviter's organization with the invited role and a verified email."""
    ada = sign_up(client)
    created = _invite(client, ada, "Bob@Example.com", "admin")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["emailed"] is True and body["url"] is None and body["status"] == "pending"
    message = mailbox.wait_for("bob@example.com", "invited")
    assert "Acme" in str(message["Subject"]) and str(message["From"]) == SENDER
    link = link_in(message)
    assert link.startswith("http://127.0.0.1:8000/invitations/accept?token=")

    accepted = client.post(
        "/v1/auth/accept-invitation",
        json={"token": token_of(link), "password": PASSWORD, "name": "Bob"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "admin"
    assert accepted.json()["user"]["email_verified"] is True
    bob = log_in(client, "Bob@Example.com")
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {bob['access_token']}"})
    assert [m["organization"]["id"] for m in me.json()["memberships"]] == [ada.organization_id]
    assert client.get("/v1/invitations", headers=ada.headers).json()["data"] == []


def test_invitation_without_smtp_shows_the_link_once(client: TestClient) -> None:
    """No mail server: the answer carries the link, and the list never shows it again."""
    ada = sign_up(client)
    created = _invite(client, ada, "bob@example.com").json()
    assert created["emailed"] is False
    assert created["url"].startswith("http://127.0.0.1:8000/invitations/accept?token=")
    listed = client.get("/v1/invitations", headers=ada.headers).json()["data"]
    assert [i["id"] for i in listed] == [created["id"]] and "url" not in listed[0]
    accepted = client.post(
        "/v1/auth/accept-invitation",
        json={"token": token_of(created["url"]), "password": PASSWORD},
    )
    assert accepted.status_code == 200
    assert accepted.json()["user"]["email_verified"] is False  # the link went to the inviter


@pytest.mark.parametrize("config_overrides", [{"signup": "closed"}])
def test_invitation_signs_up_when_signup_is_closed(client: TestClient, tessera: Tessera) -> None:
    """Closed sign-up refuses strangers, not invited people."""
    ada = tessera.accounts.create_user(
        email="ada@example.com", password=PASSWORD, name="Ada", organization_name="Acme"
    )
    tokens = log_in(client, "ada@example.com")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    url = client.post("/v1/invitations", json={"email": "bob@example.com"}, headers=headers)
    assert url.status_code == 201, url.text
    refused = client.post(
        "/v1/auth/signup",
        json={
            "email": "eve@example.com",
            "password": PASSWORD,
            "name": "Eve",
            "organization_name": "Evil",
        },
    )
    assert refused.status_code == 403
    accepted = client.post(
        "/v1/auth/accept-invitation",
        json={"token": token_of(url.json()["url"]), "password": PASSWORD},
    )
    assert accepted.status_code == 200 and accepted.json()["organization_id"] == (
        ada.organization.id
    )


def test_link_works_once(client: TestClient, mailbox: Mailbox) -> None:
    """A second use of the same link is refused, even for another password."""
    ada = sign_up(client)
    _invite(client, ada, "bob@example.com")
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    first = client.post("/v1/auth/accept-invitation", json={"token": token, "password": PASSWORD})
    assert first.status_code == 200
    again = client.post(
        "/v1/auth/accept-invitation", json={"token": token, "password": "another password 1"}
    )
    assert_problem(again, 404, "not_found")


def test_link_expires_after_seven_days(
    client: TestClient, mailbox: Mailbox, clock: ManualClock
) -> None:
    """Seven days and a second after it was made, the link no longer works."""
    ada = sign_up(client)
    _invite(client, ada, "bob@example.com")
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    clock.advance(7 * 86400 + 1)
    late = client.post("/v1/auth/accept-invitation", json={"token": token, "password": PASSWORD})
    assert_problem(late, 404, "not_found")
    fresh = {"Authorization": f"Bearer {log_in(client, ada.email)['access_token']}"}
    listed = client.get("/v1/invitations", headers=fresh).json()["data"]
    assert [i["status"] for i in listed] == ["expired"]


@pytest.mark.postgres
def test_signed_in_person_accepts_with_their_own_email(
    client: TestClient, mailbox: Mailbox
) -> None:
    """An existing account joins by accepting while signed in; another account cannot, and
    signing up again with that email is refused."""
    ada = sign_up(client)
    bob = sign_up(client, "bob@example.com", "Bobco")
    eve = sign_up(client, "eve@example.com", "Evilco")
    _invite(client, ada, "bob@example.com")
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    as_eve = client.post("/v1/auth/accept-invitation", json={"token": token}, headers=eve.headers)
    assert_problem(as_eve, 403, "forbidden")
    signup = client.post("/v1/auth/accept-invitation", json={"token": token, "password": PASSWORD})
    assert_problem(signup, 409, "email_taken")
    as_bob = client.post("/v1/auth/accept-invitation", json={"token": token}, headers=bob.headers)
    assert as_bob.status_code == 200 and as_bob.json()["organization_id"] == ada.organization_id
    members = client.get("/v1/members", headers=ada.headers).json()["data"]
    assert {m["user"]["email"]: m["role"] for m in members}["bob@example.com"] == "member"


def test_role_is_at_most_the_inviters(client: TestClient, mailbox: Mailbox) -> None:
    """An admin cannot invite an owner; a member cannot invite at all."""
    ada = sign_up(client)
    _invite(client, ada, "bob@example.com", "admin")
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    client.post("/v1/auth/accept-invitation", json={"token": token, "password": PASSWORD})
    bob_tokens = log_in(client, "bob@example.com")
    bob = {"Authorization": f"Bearer {bob_tokens['access_token']}"}
    assert_problem(
        client.post(
            "/v1/invitations", json={"email": "c@example.com", "role": "owner"}, headers=bob
        ),
        403,
        "forbidden",
    )
    assert (
        client.post("/v1/invitations", json={"email": "c@example.com"}, headers=bob).status_code
        == 201
    )
    assert_problem(
        client.post(
            "/v1/invitations", json={"email": "d@example.com", "role": "king"}, headers=bob
        ),
        422,
        "validation_error",
    )


def test_revoked_invitation_no_longer_works(client: TestClient, mailbox: Mailbox) -> None:
    """DELETE revokes: the link is refused after, and the event is audited."""
    ada = sign_up(client)
    created = _invite(client, ada, "bob@example.com").json()
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    revoked = client.delete(f"/v1/invitations/{created['id']}", headers=ada.headers)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    late = client.post("/v1/auth/accept-invitation", json={"token": token, "password": PASSWORD})
    assert_problem(late, 404, "not_found")
    events = client.get("/v1/audit-events?action=invitation", headers=ada.headers).json()
    assert sorted(e["action"] for e in events["data"]) == [
        "invitation.created",
        "invitation.revoked",
    ]


def test_inviting_a_member_conflicts(client: TestClient) -> None:
    """Someone already in the organization is not invited again."""
    ada = sign_up(client)
    assert_problem(_invite(client, ada, "ADA@example.com"), 409, "conflict")


def test_another_organization_cannot_revoke(client: TestClient) -> None:
    """An invitation of another organization is not found."""
    ada = sign_up(client)
    eve = sign_up(client, "eve@example.com", "Evilco")
    created = _invite(client, ada, "bob@example.com").json()
    refused = client.delete(f"/v1/invitations/{created['id']}", headers=eve.headers)
    assert_problem(refused, 404, "not_found")


@pytest.mark.postgres
def test_only_the_digest_is_stored(client: TestClient, mailbox: Mailbox, database_url: str) -> None:
    """The raw token appears nowhere in the database; its SHA-256 digest does."""
    ada = sign_up(client)
    _invite(client, ada, "bob@example.com")
    token = token_of(link_in(mailbox.wait_for("bob@example.com", "invited")))
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(select(models.Invitation.__table__)).all()
    engine.dispose()
    assert len(rows) == 1 and token not in repr(rows)
    assert rows[0].digest == hashlib.sha256(token.encode()).hexdigest()


def test_invitation_is_withdrawn_when_smtp_down(client: TestClient) -> None:
    """The mail server refusing: 503, and no invitation is left open whose link nobody has."""
    ada = sign_up(client)
    refused = _invite(client, ada, "bob@example.com")
    assert_problem(refused, 503, "unavailable")
    assert client.get("/v1/invitations", headers=ada.headers).json()["data"] == []
