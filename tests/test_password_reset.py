"""Password reset and email verification by email (SPEC section 3), through a real SMTP
server: links single use, expiring, stored as digests; no account enumeration; a reset ends
every session and refresh-token family."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.principal import ClientInfo
from tests.helpers import PASSWORD, assert_problem, log_in, sign_up
from tests.mailbox import Mailbox, link_in, smtp_server, token_of

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "without_smtp" in request.node.name:
        return {}
    box: Mailbox = request.getfixturevalue("mailbox")
    return {"smtp": {"url": box.url, "sender": "Acme <no-reply@acme.example>"}}


def _reset_link(client: TestClient, mailbox: Mailbox, email: str) -> str:
    asked = client.post("/v1/auth/password-reset", json={"email": email})
    assert asked.status_code == 202
    return link_in(mailbox.wait_for(email, "Reset"))


@pytest.mark.postgres
def test_reset_through_the_emailed_link(client: TestClient, mailbox: Mailbox) -> None:
    """The mailed link sets a new password; the old one stops working."""
    sign_up(client)
    link = _reset_link(client, mailbox, "ADA@example.com")
    assert link.startswith("http://127.0.0.1:8000/password-reset/confirm?token=")
    done = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token_of(link), "password": NEW_PASSWORD},
    )
    assert done.status_code == 204, done.text
    old = client.post("/v1/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    assert_problem(old, 401, "unauthorized")
    assert log_in(client, "ada@example.com", NEW_PASSWORD)["access_token"]


def test_unknown_email_gets_the_same_answer_and_no_mail(
    client: TestClient, mailbox: Mailbox
) -> None:
    """An unknown email is answered exactly as a known one, and nothing is sent."""
    sign_up(client)
    known = client.post("/v1/auth/password-reset", json={"email": "ada@example.com"})
    unknown = client.post("/v1/auth/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    mailbox.wait_for("ada@example.com", "Reset")
    assert mailbox.sent_to("nobody@example.com") == []


@pytest.mark.postgres
def test_reset_ends_sessions_and_refresh_families(
    client: TestClient, mailbox: Mailbox, tessera: Tessera
) -> None:
    """After a reset, the refresh token, the access token and the session are refused."""
    ada = sign_up(client)
    _, cookie = tessera.sessions.start(ada.user_id, ClientInfo(ip="203.0.113.9"))
    link = _reset_link(client, mailbox, "ada@example.com")
    client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token_of(link), "password": NEW_PASSWORD},
    )
    refreshed = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": ada.refresh_token},
    )
    assert_problem(refreshed, 401, "unauthorized")
    assert_problem(client.get("/v1/me", headers=ada.headers), 401, "unauthorized")
    assert tessera.sessions.authenticate(cookie) is None


def test_link_is_single_use_and_spends_the_others(
    client: TestClient, mailbox: Mailbox, clock: ManualClock
) -> None:
    """A used link is refused, and so is an older link that was never used."""
    sign_up(client)
    older = token_of(_reset_link(client, mailbox, "ada@example.com"))
    clock.advance(61)
    newer = token_of(_reset_link(client, mailbox, "ada@example.com"))
    body = {"token": newer, "password": NEW_PASSWORD}
    assert client.post("/v1/auth/password-reset/confirm", json=body).status_code == 204
    again = client.post("/v1/auth/password-reset/confirm", json=body)
    assert_problem(again, 404, "not_found")
    stale = client.post(
        "/v1/auth/password-reset/confirm", json={"token": older, "password": NEW_PASSWORD}
    )
    assert_problem(stale, 404, "not_found")


def test_link_expires_after_an_hour(
    client: TestClient, mailbox: Mailbox, clock: ManualClock
) -> None:
    """An hour and a second later, the link no longer works."""
    sign_up(client)
    token = token_of(_reset_link(client, mailbox, "ada@example.com"))
    clock.advance(3601)
    late = client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert_problem(late, 404, "not_found")


def test_one_reset_mail_a_minute(client: TestClient, mailbox: Mailbox, clock: ManualClock) -> None:
    """Asking again within a minute answers the same and sends nothing; after it, one more."""
    sign_up(client)
    _reset_link(client, mailbox, "ada@example.com")
    again = client.post("/v1/auth/password-reset", json={"email": "ada@example.com"})
    assert again.status_code == 202
    clock.advance(61)
    _reset_link(client, mailbox, "ada@example.com")
    assert [m for m in mailbox.sent_to("ada@example.com") if "Reset" in str(m["Subject"])] == []


def test_reset_keeps_the_password_rules(client: TestClient, mailbox: Mailbox) -> None:
    """A short password is refused and leaves the link usable."""
    sign_up(client)
    token = token_of(_reset_link(client, mailbox, "ada@example.com"))
    short = client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "x"})
    assert_problem(short, 422, "validation_error")
    ok = client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert ok.status_code == 204


def test_reset_without_smtp_sends_nothing(client: TestClient, tessera: Tessera) -> None:
    """Without a mail server the request is answered the same; the operator's link works."""
    sign_up(client)
    asked = client.post("/v1/auth/password-reset", json={"email": "ada@example.com"})
    assert asked.status_code == 202
    link = tessera.password_resets.operator_link("ada@example.com")
    done = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token_of(link), "password": NEW_PASSWORD},
    )
    assert done.status_code == 204


@pytest.mark.postgres
def test_sign_up_sends_a_verification_link(client: TestClient, mailbox: Mailbox) -> None:
    """Sign-up mails a link; following it sets email_verified, once."""
    ada = sign_up(client)
    assert client.get("/v1/me", headers=ada.headers).json()["user"]["email_verified"] is False
    token = token_of(link_in(mailbox.wait_for("ada@example.com", "Verify")))
    verified = client.post("/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["user"]["email_verified"] is True
    assert client.get("/v1/me", headers=ada.headers).json()["user"]["email_verified"] is True
    again = client.post("/v1/auth/verify-email", json={"token": token})
    assert_problem(again, 404, "not_found")
    events = client.get("/v1/audit-events?action=user.email_verified", headers=ada.headers)
    assert len(events.json()["data"]) == 1


def test_verification_can_be_asked_again(
    client: TestClient, mailbox: Mailbox, clock: ManualClock
) -> None:
    """A signed-in person asks for a new link, not twice a minute; once verified, asking
    again conflicts."""
    ada = sign_up(client)
    mailbox.wait_for("ada@example.com", "Verify")
    too_soon = client.post("/v1/me/email-verification", headers=ada.headers)
    assert_problem(too_soon, 429, "rate_limited")
    clock.advance(61)
    ada = replace(ada, access_token=log_in(client, ada.email)["access_token"])
    asked = client.post("/v1/me/email-verification", headers=ada.headers)
    assert asked.status_code == 202
    token = token_of(link_in(mailbox.wait_for("ada@example.com", "Verify")))
    assert client.post("/v1/auth/verify-email", json={"token": token}).status_code == 200
    again = client.post("/v1/me/email-verification", headers=ada.headers)
    assert_problem(again, 409, "conflict")


def test_a_reset_link_does_not_verify_and_a_verification_link_does_not_reset(
    client: TestClient, mailbox: Mailbox
) -> None:
    """Each link works only for its own purpose."""
    sign_up(client)
    verify = token_of(link_in(mailbox.wait_for("ada@example.com", "Verify")))
    reset = token_of(_reset_link(client, mailbox, "ada@example.com"))
    crossed = client.post(
        "/v1/auth/password-reset/confirm", json={"token": verify, "password": NEW_PASSWORD}
    )
    assert_problem(crossed, 404, "not_found")
    assert_problem(client.post("/v1/auth/verify-email", json={"token": reset}), 404, "not_found")


def test_verification_without_smtp_is_refused(client: TestClient) -> None:
    """No mail server: asking for a verification link says so."""
    ada = sign_up(client)
    refused = client.post("/v1/me/email-verification", headers=ada.headers)
    assert_problem(refused, 400, "invalid_request")
