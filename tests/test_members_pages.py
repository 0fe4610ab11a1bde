"""The Members page and the pages a link opens (invitation, password reset, verification),
driven over HTTP as a browser would post their forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.principal import ClientInfo
from tests.helpers import PASSWORD, log_in, sign_up
from tests.mailbox import Mailbox, link_in, smtp_server, token_of

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def config_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """SMTP for the tests that name it."""
    if "through_smtp" not in request.node.name:
        return {}
    box: Mailbox = request.getfixturevalue("mailbox")
    return {"smtp": {"url": box.url, "sender": "Acme <no-reply@acme.example>"}}


def _session(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post(
        "/login",
        data={"email": email, "password": password},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return {"Cookie": f"tsr_session={response.cookies['tsr_session']}", "Origin": ORIGIN}


def _csrf(client: TestClient, headers: dict[str, str]) -> str:
    page = client.get("/settings/members", headers=headers)
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _post(client: TestClient, path: str, headers: dict[str, str], **data: str) -> Any:
    return client.post(
        path,
        data={"csrf_token": _csrf(client, headers), **data},
        headers=headers,
        follow_redirects=False,
    )


def _invite_link(client: TestClient, owner: dict[str, str], email: str, role: str) -> str:
    shown = _post(client, "/settings/members/invite", owner, email=email, role=role)
    assert shown.status_code == 200, shown.text
    found = re.search(r'id="invite-link" type="text" readonly value="([^"]+)"', shown.text)
    assert found and "will not be shown again" in shown.text
    return found.group(1).replace("&amp;", "&")


def test_invite_without_smtp_shows_the_link_and_it_signs_up(client: TestClient) -> None:
    """The inviter sees the link once; the invited person signs up on its page and lands
    in the organization, signed in."""
    sign_up(client)
    owner = _session(client, "ada@example.com")
    link = _invite_link(client, owner, "bob@example.com", "admin")
    assert link.startswith("http://127.0.0.1:8000/invitations/accept?token=")
    page = client.get("/invitations/accept", params={"token": token_of(link)})
    assert page.status_code == 200 and "Join Acme" in page.text and "bob@example.com" in page.text
    joined = client.post(
        "/invitations/accept",
        data={"token": token_of(link), "name": "Bob", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert joined.status_code == 303 and "tsr_session" in joined.cookies
    members = client.get("/settings/members", headers=owner).text
    assert "bob@example.com" in members and "Revoke the invitation" not in members
    assert client.get("/invitations/accept", params={"token": token_of(link)}).status_code == 404


def test_invitation_page_keeps_the_password_rule(client: TestClient) -> None:
    """A short password is shown beside its field and leaves the invitation open."""
    sign_up(client)
    owner = _session(client, "ada@example.com")
    token = token_of(_invite_link(client, owner, "bob@example.com", "member"))
    short = client.post(
        "/invitations/accept",
        data={"token": token, "password": "short"},
        headers={"Origin": ORIGIN},
    )
    assert short.status_code == 422 and 'id="password-error"' in short.text
    assert client.get("/invitations/accept", params={"token": token}).status_code == 200


def test_signed_in_person_accepts_on_the_page(client: TestClient) -> None:
    """Someone with an account, signed in with the invited email, joins with one button."""
    sign_up(client)
    sign_up(client, "bob@example.com", "Bobco")
    owner = _session(client, "ada@example.com")
    token = token_of(_invite_link(client, owner, "bob@example.com", "member"))
    bob = _session(client, "bob@example.com")
    page = client.get("/invitations/accept", params={"token": token}, headers=bob)
    assert "Accept invitation" in page.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert csrf
    accepted = client.post(
        "/invitations/accept",
        data={"token": token, "csrf_token": csrf.group(1)},
        headers=bob,
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert "bob@example.com" in client.get("/settings/members", headers=owner).text


def test_roles_remove_and_the_last_owner(client: TestClient, tessera: Tessera) -> None:
    """An owner changes a role and removes a member, each confirmed; the last owner can
    neither leave nor be demoted, and the page says why."""
    ada = sign_up(client)
    bob = sign_up(client, "bob@example.com", "Bobco")
    client.post("/v1/members", json={"email": "bob@example.com"}, headers=ada.headers)
    owner = _session(client, "ada@example.com")
    changed = _post(client, f"/settings/members/{bob.user_id}/role", owner, role="admin")
    assert changed.status_code == 303
    carried = {**owner, "Cookie": f"{owner['Cookie']}; tsr_notice={changed.cookies['tsr_notice']}"}
    page = client.get(changed.headers["location"], headers=carried).text
    assert "is now admin." in page
    assert tessera.accounts.role(bob.user_id, ada.organization_id) == "admin"

    leave = _post(client, "/settings/members/leave", owner)
    assert leave.status_code == 409 and "at least one owner" in leave.text

    confirm = client.get(f"/settings/members/{bob.user_id}/remove", headers=owner)
    assert "Remove Ada?" in confirm.text and "Remove member" in confirm.text
    removed = _post(client, f"/settings/members/{bob.user_id}/remove", owner)
    assert removed.status_code == 303
    assert tessera.accounts.role(bob.user_id, ada.organization_id) is None


def test_a_member_leaves(client: TestClient, tessera: Tessera) -> None:
    """Someone who joined by invitation leaves by themselves and loses the organization."""
    ada = sign_up(client)
    url = client.post("/v1/invitations", json={"email": "bob@example.com"}, headers=ada.headers)
    joined = client.post(
        "/v1/auth/accept-invitation",
        json={"token": token_of(url.json()["url"]), "password": PASSWORD},
    )
    bob_id = joined.json()["user"]["id"]
    as_bob = _session(client, "bob@example.com")
    assert "Leave Acme" in client.get("/settings/members", headers=as_bob).text
    left = _post(client, "/settings/members/leave", as_bob)
    assert left.status_code == 303
    assert tessera.accounts.role(bob_id, ada.organization_id) is None


def test_reset_pages_without_smtp_name_the_operator_command(client: TestClient) -> None:
    """No mail server: the sign-in page links to a page that names the CLI command."""
    assert 'href="/password-reset"' in client.get("/login").text
    page = client.get("/password-reset").text
    assert "tessera user reset-password --email" in page and 'action="/password-reset"' not in page


def test_reset_through_the_pages(client: TestClient, tessera: Tessera) -> None:
    """The confirm page sets the password from an operator's link and signs everyone out."""
    ada = sign_up(client)
    _, cookie = tessera.sessions.start(ada.user_id, ClientInfo())
    link = tessera.password_resets.operator_link("ada@example.com")
    page = client.get("/password-reset/confirm", params={"token": token_of(link)})
    assert page.status_code == 200 and "Choose a new password" in page.text
    done = client.post(
        "/password-reset/confirm",
        data={"token": token_of(link), "password": "a new passphrase"},
        headers={"Origin": ORIGIN},
    )
    assert done.status_code == 200 and "Your password was changed" in done.text
    assert tessera.sessions.authenticate(cookie) is None
    assert log_in(client, "ada@example.com", "a new passphrase")
    again = client.get("/password-reset/confirm", params={"token": token_of(link)})
    assert again.status_code == 404 and "not valid" in again.text


def test_invite_and_reset_through_smtp(client: TestClient, mailbox: Mailbox) -> None:
    """With a mail server the page says the invitation was emailed (no link shown), and the
    reset form mails a link whose page sets the password."""
    sign_up(client)
    owner = _session(client, "ada@example.com")
    sent = _post(client, "/settings/members/invite", owner, email="bob@example.com", role="member")
    assert "Invitation emailed to bob@example.com." in sent.text and "invite-link" not in sent.text
    assert "/invitations/accept?token=" in link_in(mailbox.wait_for("bob@example.com", "invited"))

    form = client.get("/password-reset").text
    assert 'action="/password-reset"' in form
    asked = client.post(
        "/password-reset", data={"email": "ada@example.com"}, headers={"Origin": ORIGIN}
    )
    assert "a link to reset its password is on its way" in asked.text
    token = token_of(link_in(mailbox.wait_for("ada@example.com", "Reset")))
    done = client.post(
        "/password-reset/confirm",
        data={"token": token, "password": "a new passphrase"},
        headers={"Origin": ORIGIN},
    )
    assert "Your password was changed" in done.text


def test_dashboard_sign_up_mails_a_verification_link_through_smtp(
    client: TestClient, mailbox: Mailbox
) -> None:
    """Signing up on the dashboard mails a link; its page verifies the email with a button."""
    signed = client.post(
        "/signup",
        data={"email": "ada@example.com", "password": PASSWORD, "organization_name": "Acme"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    link = link_in(mailbox.wait_for("ada@example.com", "Verify"))
    opened = client.get("/verify-email", params={"token": token_of(link)})
    assert "Verify email" in opened.text  # opening the link alone changes nothing
    verified = client.post(
        "/verify-email", data={"token": token_of(link)}, headers={"Origin": ORIGIN}
    )
    assert "ada@example.com is verified" in verified.text
    again = client.post("/verify-email", data={"token": token_of(link)}, headers={"Origin": ORIGIN})
    assert again.status_code == 404
