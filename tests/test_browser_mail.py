"""Invitations and password reset in a real browser (Debian's Chromium through Playwright),
against `tessera serve --port P` (not 8000) reached as `localhost`, mailing through a real
SMTP server whose messages the test reads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import CONFIG
from tests.mailbox import Mailbox, link_in, smtp_server
from tests.servers import free_port, running

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[str]:
    """`tessera serve --port P` with no public_url (derived from the port), as `localhost`."""
    folder = tmp_path_factory.mktemp("browser-mail")
    port = free_port()
    assert port != 8000
    config = folder / "tessera.toml"
    config.write_text(
        f'database_url = "sqlite:///{folder}/tessera.db"\n'
        + CONFIG
        + f'[smtp]\nurl = "{mailbox.url}"\nsender = "Acme <no-reply@acme.example>"\n'
    )
    command = [sys.executable, "-m", "tessera", "serve", "--port", str(port)]
    command += ["--config", str(config)]
    with running(command, f"http://127.0.0.1:{port}/healthz", log=Path(folder / "server.log")):
        yield f"http://localhost:{port}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def _sign_up(page: Page, base: str, email: str, organization: str) -> None:
    page.goto(base + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill(organization)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def _as_localhost(link: str, base: str) -> str:
    """The emailed link names the public URL (127.0.0.1); open it as the visitor's host."""
    path = link.split("/", 3)[3]
    return f"{base}/{path}"


def test_invite_by_email_and_accept_by_signing_up(
    browser: Browser, page: Page, base: str, mailbox: Mailbox
) -> None:
    """An owner invites by email on the Members page; the invited person follows the mailed
    link in another browser, signs up and appears as a member with the role given."""
    _sign_up(page, base, "owner@example.com", "Acme")
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Role", exact=True).select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation emailed to newcomer@example.com.")).to_be_visible()
    expect(page.get_by_role("row", name="newcomer@example.com")).to_contain_text("Pending")

    link = link_in(mailbox.wait_for("newcomer@example.com", "invited"))
    invited = browser.new_context().new_page()
    invited.goto(link)  # exactly as mailed: the public URL, derived from --port
    expect(invited.get_by_role("heading", name="Join Acme")).to_be_visible()
    invited.get_by_label("Your name").fill("Newcomer")
    invited.get_by_label("Password").fill(PASSWORD)
    invited.get_by_role("button", name="Create account and join").click()
    expect(invited.get_by_role("heading", name="API Keys")).to_be_visible()
    invited.get_by_role("link", name="Members").click()
    expect(invited.get_by_role("row", name="newcomer@example.com")).to_contain_text("admin")
    invited.context.close()

    page.reload()
    expect(page.get_by_role("row", name="Newcomer")).to_contain_text("newcomer@example.com")
    expect(page.get_by_text("Pending")).to_have_count(0)


def test_password_reset_through_the_mail_server(page: Page, base: str, mailbox: Mailbox) -> None:
    """ "Forgot your password?" mails a link; its page sets a new password, which signs in,
    and the old one no longer does."""
    _sign_up(page, base, "forgetful@example.com", "Forgetco")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("forgetful@example.com")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_text("a link to reset its password is on its way")).to_be_visible()

    link = link_in(mailbox.wait_for("forgetful@example.com", "Reset"))
    page.goto(_as_localhost(link, base))
    page.get_by_label("New password").fill("a much better passphrase")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password was changed")).to_be_visible()
    page.get_by_label("Email").fill("forgetful@example.com")
    page.get_by_label("Password").fill("a much better passphrase")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    old = httpx.post(
        base + "/v1/auth/token", json={"email": "forgetful@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401


def test_remove_a_member_and_keep_the_last_owner(page: Page, base: str) -> None:
    """Removing is confirmed first; the last owner is told they cannot leave."""
    _sign_up(page, base, "solo@example.com", "Soloco")
    page.get_by_role("link", name="Members").click()
    page.get_by_role("link", name="Leave Soloco").click()
    page.get_by_role("button", name="Leave organization").click()
    expect(page.get_by_role("alert")).to_contain_text("at least one owner")
