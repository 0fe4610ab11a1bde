"""Tessera as the upstream provider of another Tessera: instance B signs people in with
instance A, each a real `tessera serve` with its own database and mail server, in Chromium —
B's "Sign in with …" button, A's sign-in and consent pages, B's callback and cookie, /v1/me.

A is at ``127.0.0.1`` and B at ``localhost``: two hosts, so the browser keeps their session
cookies apart as it would for two domains."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.fixtures import TEST_SECRET
from tests.helpers import PASSWORD
from tests.mailbox import Mailbox, link_in, smtp_server, token_of
from tests.servers import free_port, running

pytestmark = [pytest.mark.browser, pytest.mark.postgres]  # A on each database, B on SQLite
PROVIDER = "acme"
LABEL = "Acme ID"
APP = "Acme Portal"


@dataclass(frozen=True)
class Stack:
    a: str  # the provider
    b: str  # the relying party
    a_mail: Mailbox
    b_mail: Mailbox


def _config(path: Path, database_url: str, public_url: str, mailbox: Mailbox, more: str) -> Path:
    path.write_text(
        f'database_url = "{database_url}"\npublic_url = "{public_url}"\n'
        f'secret_key = "{TEST_SECRET}"\npassword_profile = "cheapest"\n{more}\n'
        f'[smtp]\nurl = "{mailbox.url}"\nsender = "Tessera <no-reply@example.test>"\n'
    )
    return path


def _serve(port: int, config: Path) -> list[str]:
    return [sys.executable, "-m", "tessera", "serve", "--port", str(port), "--config", str(config)]


@contextmanager
def two_instances(
    database_url: str, tmp_path: Path, *, a_settings: str = "", public_client: bool = False
) -> Iterator[Stack]:
    """A (on ``database_url``, with more ``a_settings``) with an OAuth client registered for B;
    B (on SQLite) with A as its ``[[provider]]``, found through A's discovery document."""
    a_port, b_port = free_port(), free_port()
    a, b = f"http://127.0.0.1:{a_port}", f"http://localhost:{b_port}"
    with smtp_server() as a_mail, smtp_server() as b_mail:
        a_config = _config(tmp_path / "a.toml", database_url, a, a_mail, a_settings)
        with running(_serve(a_port, a_config), f"{a}/healthz", log=tmp_path / "a.log"):
            client = _register_client(a, f"{b}/auth/{PROVIDER}/callback", public_client)
            provider = (
                f'[[provider]]\nname = "{PROVIDER}"\nlabel = "{LABEL}"\n'
                f'discovery_url = "{a}/.well-known/openid-configuration"\n'
                f'client_id = "{client["client_id"]}"\n'
            )
            if not public_client:
                provider += f'client_secret = "{client["client_secret"]}"\n'
            b_database = f"sqlite:///{tmp_path}/b.db"
            b_config = _config(tmp_path / "b.toml", b_database, b, b_mail, provider)
            health = f"http://127.0.0.1:{b_port}/healthz"
            with running(_serve(b_port, b_config), health, log=tmp_path / "b.log"):
                yield Stack(a, b, a_mail, b_mail)


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    with two_instances(database_url, tmp_path) as made:
        yield made


def _register_client(a: str, redirect_uri: str, public: bool) -> dict[str, str]:
    """An organization on A registers B as a confidential OAuth client, through the API."""
    email = f"owner-{secrets.token_hex(4)}@example.test"
    with httpx.Client(base_url=a) as api:
        body = {"email": email, "password": PASSWORD, "name": "Olga", "organization_name": "Acme"}
        assert api.post("/v1/auth/signup", json=body).status_code == 201
        login = api.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        payload = {
            "name": APP,
            "redirect_uris": [redirect_uri],
            "scopes": ["openid", "email", "profile"],
            "type": "public" if public else "confidential",
        }
        created = api.post("/v1/oauth-clients", json=payload, headers=headers)
    assert created.status_code == 201, created.text
    registered: dict[str, str] = created.json()
    return registered


def sign_up(base: str, mailbox: Mailbox, email: str, name: str, *, verified: bool) -> str:
    """A person signs up with a password; ``verified``: and follows the emailed link."""
    body = {"email": email, "password": PASSWORD, "name": name, "organization_name": name}
    created = httpx.post(base + "/v1/auth/signup", json=body)
    assert created.status_code == 201, created.text
    token = token_of(link_in(mailbox.wait_for(email, "Verify")))
    if verified:
        answer = httpx.post(base + "/v1/auth/verify-email", json={"token": token})
        assert answer.json()["user"]["email_verified"] is True, answer.text
    user_id: str = created.json()["user"]["id"]
    return user_id


def password_works(base: str, email: str) -> bool:
    body = {"email": email, "password": PASSWORD}
    answer = httpx.post(base + "/v1/auth/token", json=body)
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context()
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in_with_a(page: Page, stack: Stack, email: str) -> None:
    """B's button, then A's sign-in page and A's consent page."""
    page.goto(stack.b + "/login")
    page.get_by_role("link", name=f"Sign in with {LABEL}").click()
    expect(page.get_by_label("Email")).to_be_visible()
    assert page.url.startswith(stack.a + "/"), page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name=f"Authorize {APP}")).to_be_visible()
    page.get_by_role("button", name="Allow").click()


def b_session(context: BrowserContext, stack: Stack) -> list[str]:
    return [c["domain"] for c in context.cookies(stack.b) if c["name"] == "tsr_session"]


def test_a_person_of_a_signs_in_to_b(page: Page, context: BrowserContext, stack: Stack) -> None:
    """A new person on B, named and verified as A says; the identity is (provider, A's id)."""
    a_id = sign_up(stack.a, stack.a_mail, "ada@example.test", "Ada Lovelace", verified=True)
    sign_in_with_a(page, stack, "ada@example.test")
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    assert b_session(context, stack) == ["localhost"]
    me = context.request.get(stack.b + "/v1/me").json()
    assert me["user"]["email"] == "ada@example.test" and me["user"]["name"] == "Ada Lovelace"
    assert me["user"]["email_verified"] is True and me["user"]["id"] != a_id
    identities = context.request.get(stack.b + "/v1/me/identities").json()["data"]
    assert [(i["provider"], i["subject"]) for i in identities] == [(PROVIDER, a_id)]


def test_an_email_verified_on_a_takes_over_an_unverified_user_on_b(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    """Whoever registered the email on B first, without proving it, loses the password."""
    sign_up(stack.a, stack.a_mail, "grace@example.test", "Grace Hopper", verified=True)
    b_id = sign_up(stack.b, stack.b_mail, "grace@example.test", "Squatter", verified=False)
    sign_in_with_a(page, stack, "grace@example.test")
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    me = context.request.get(stack.b + "/v1/me").json()
    assert me["user"]["id"] == b_id and me["user"]["email_verified"] is True
    assert not password_works(stack.b, "grace@example.test")


def test_an_email_verified_on_a_links_to_a_verified_user_on_b(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    """The same person on both: linked, and her password on B still works."""
    sign_up(stack.a, stack.a_mail, "linus@example.test", "Linus", verified=True)
    b_id = sign_up(stack.b, stack.b_mail, "linus@example.test", "Linus", verified=True)
    sign_in_with_a(page, stack, "linus@example.test")
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    me = context.request.get(stack.b + "/v1/me").json()
    assert me["user"]["id"] == b_id
    assert password_works(stack.b, "linus@example.test")


def test_an_email_unverified_on_a_never_links_to_a_user_on_b(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    """Anyone can sign up on A with someone else's email: B must not let that in, whether the
    user on B verified the email or not; with no user on B, a new unverified one is made."""
    sign_up(stack.a, stack.a_mail, "bob@example.test", "Mallory", verified=False)
    sign_up(stack.a, stack.a_mail, "eve@example.test", "Mallory", verified=False)
    sign_up(stack.b, stack.b_mail, "bob@example.test", "Bob", verified=False)
    sign_up(stack.b, stack.b_mail, "eve@example.test", "Eve", verified=True)
    for email in ("bob@example.test", "eve@example.test"):
        sign_in_with_a(page, stack, email)
        heading = page.get_by_role("heading", name="An account with this email exists")
        expect(heading).to_be_visible()
        assert b_session(context, stack) == []
        assert password_works(stack.b, email)
        context.clear_cookies()
    sign_up(stack.a, stack.a_mail, "newt@example.test", "Newt", verified=False)
    sign_in_with_a(page, stack, "newt@example.test")
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    me = context.request.get(stack.b + "/v1/me").json()
    assert me["user"]["email"] == "newt@example.test" and me["user"]["email_verified"] is False


def test_denying_on_a_shows_a_clear_page_on_b(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    """Deny on A's consent page comes back to B as access_denied (with A's iss), which B
    shows as such, signing no one in."""
    sign_up(stack.a, stack.a_mail, "dora@example.test", "Dora", verified=True)
    page.goto(stack.b + "/login")
    page.get_by_role("link", name=f"Sign in with {LABEL}").click()
    page.get_by_label("Email").fill("dora@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("heading", name="The provider did not sign you in")).to_be_visible()
    expect(page.get_by_text("access_denied")).to_be_visible()
    assert b_session(context, stack) == []


def test_signing_in_again_needs_no_second_consent(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    """Signed out of B but still signed in on A, with the consent remembered there: the
    button goes through A and back without a page on the way, to the same person."""
    sign_up(stack.a, stack.a_mail, "ada@example.test", "Ada", verified=True)
    sign_in_with_a(page, stack, "ada@example.test")
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    first = context.request.get(stack.b + "/v1/me").json()["user"]["id"]
    context.clear_cookies(domain="localhost")
    page.goto(stack.b + "/login")
    page.get_by_role("link", name=f"Sign in with {LABEL}").click()
    expect(page).to_have_url(stack.b + "/settings/api-keys")
    assert context.request.get(stack.b + "/v1/me").json()["user"]["id"] == first


def test_a_signing_with_es256_is_a_provider_too(
    page: Page, context: BrowserContext, tmp_path: Path
) -> None:
    """A on a database of its own, so that its first signing key is ES256: B verifies ID
    tokens signed with it."""
    a_database = f"sqlite:///{tmp_path}/a.db"
    es256 = '[tokens]\nsigning_algorithm = "ES256"'
    with two_instances(a_database, tmp_path, a_settings=es256) as stack:
        keys = httpx.get(stack.a + "/.well-known/jwks.json").json()["keys"]
        assert [k["alg"] for k in keys] == ["ES256"]
        sign_up(stack.a, stack.a_mail, "ada@example.test", "Ada", verified=True)
        sign_in_with_a(page, stack, "ada@example.test")
        expect(page).to_have_url(stack.b + "/settings/api-keys")
        me = context.request.get(stack.b + "/v1/me").json()
        assert me["user"]["email"] == "ada@example.test"


def test_b_may_be_a_public_client_of_a(
    page: Page, context: BrowserContext, database_url: str, tmp_path: Path
) -> None:
    """A client registered as public on A, configured on B with no client_secret: PKCE alone
    carries the exchange."""
    with two_instances(database_url, tmp_path, public_client=True) as stack:
        sign_up(stack.a, stack.a_mail, "ada@example.test", "Ada", verified=True)
        sign_in_with_a(page, stack, "ada@example.test")
        expect(page).to_have_url(stack.b + "/settings/api-keys")
        me = context.request.get(stack.b + "/v1/me").json()
        assert me["user"]["email"] == "ada@example.test"
