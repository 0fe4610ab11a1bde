"""Sign in with a real OpenID Connect provider that no one here wrote: panva's oidc-provider
(OpenID Certified) on a loopback port, driven through its development login and consent pages
in Chromium — Tessera's button, the provider, the callback, the cookie, /v1/me."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.servers import free_port
from tests.social_peers import CLIENT_ID, CLIENT_SECRET, oidc_provider, tessera_with

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
ACCOUNTS: dict[str, dict[str, object]] = {
    "ada": {"email": "ada@example.test", "email_verified": True, "name": "Ada Lovelace"},
    "mallory": {"email": "bob@example.test", "email_verified": False},
}


@dataclass(frozen=True)
class Stack:
    tessera: str
    issuer: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("social-oidc")
    port, provider_port, nobody = free_port(), free_port(), free_port()
    callback = f"http://127.0.0.1:{port}/auth/corp/callback"
    tables = f"""
[[provider]]
name = "corp"
label = "Corp ID"
discovery_url = "http://127.0.0.1:{provider_port}/.well-known/openid-configuration"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"

[[provider]]
name = "offline"
label = "Offline ID"
discovery_url = "http://127.0.0.1:{nobody}/.well-known/openid-configuration"
client_id = "tessera"
"""
    with (
        oidc_provider(provider_port, callback, ACCOUNTS, folder / "provider.log") as issuer,
        tessera_with(folder, port, tables) as base,
    ):
        yield Stack(base, issuer)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context()
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def at_provider(page: Page, stack: Stack, login: str) -> None:
    """The provider's development pages: any password signs ``login`` in; then consent."""
    expect(page.locator('input[name="login"]')).to_be_visible()
    assert page.url.startswith(stack.issuer)
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password at all")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def sign_up(stack: Stack, email: str) -> str:
    body = {"email": email, "password": PASSWORD, "name": "Bob", "organization_name": "Bob Co"}
    created = httpx.post(stack.tessera + "/v1/auth/signup", json=body)
    assert created.status_code == 201, created.text
    user_id: str = created.json()["user"]["id"]
    return user_id


def test_the_whole_flow_signs_a_new_person_in(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    page.goto(stack.tessera + "/login")
    page.get_by_role("link", name="Sign in with Corp ID").click()
    at_provider(page, stack, "grace")
    expect(page).to_have_url(stack.tessera + "/settings/api-keys")
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    (cookie,) = [c for c in context.cookies() if c["name"] == "tsr_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    me = context.request.get(stack.tessera + "/v1/me").json()
    assert me["user"]["email"] == "grace@oidc.test" and me["user"]["email_verified"] is True
    identities = context.request.get(stack.tessera + "/v1/me/identities").json()["data"]
    assert [(i["provider"], i["subject"]) for i in identities] == [("corp", "grace")]


def test_next_is_where_the_person_lands(page: Page, stack: Stack) -> None:
    page.goto(stack.tessera + "/settings/sessions")  # not signed in: the sign-in page
    page.goto(stack.tessera + "/login?next=/settings/sessions")
    page.get_by_role("link", name="Sign in with Corp ID").click()
    at_provider(page, stack, "hopper")
    expect(page).to_have_url(stack.tessera + "/settings/sessions")


def test_a_verified_email_links_to_the_existing_user(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    user_id = sign_up(stack, "ada@example.test")
    page.goto(stack.tessera + "/auth/corp/login")
    at_provider(page, stack, "ada")
    expect(page).to_have_url(stack.tessera + "/settings/api-keys")
    me = context.request.get(stack.tessera + "/v1/me").json()
    assert me["user"]["id"] == user_id and me["user"]["email_verified"] is True
    # Her email was unverified: whoever set that password loses it.
    body = {"email": "ada@example.test", "password": PASSWORD}
    assert httpx.post(stack.tessera + "/v1/auth/token", json=body).status_code == 401


def test_an_unverified_email_never_links(page: Page, context: BrowserContext, stack: Stack) -> None:
    sign_up(stack, "bob@example.test")
    page.goto(stack.tessera + "/login")
    page.get_by_role("link", name="Sign in with Corp ID").click()
    at_provider(page, stack, "mallory")
    expect(page.get_by_role("heading", name="An account with this email exists")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "tsr_session"]
    body = {"email": "bob@example.test", "password": PASSWORD}
    assert httpx.post(stack.tessera + "/v1/auth/token", json=body).status_code == 200


def test_a_forged_or_replayed_state_is_refused(
    page: Page, context: BrowserContext, stack: Stack
) -> None:
    page.goto(stack.tessera + "/auth/corp/login")
    with page.expect_request(lambda r: "/auth/corp/callback" in r.url) as came_back:
        at_provider(page, stack, "turing")
    expect(page).to_have_url(stack.tessera + "/settings/api-keys")
    page.goto(came_back.value.url)  # the same code and state again
    refused = page.get_by_role("heading", name="This sign-in cannot be completed")
    expect(refused).to_be_visible()
    page.goto(stack.tessera + "/auth/corp/callback?code=made-up&state=made-up")
    expect(refused).to_be_visible()


def test_a_provider_that_answers_an_error_shows_a_clear_page(page: Page, stack: Stack) -> None:
    page.goto(stack.tessera + "/login")
    page.get_by_role("link", name="Sign in with Corp ID").click()
    page.get_by_role("link", name="[ Cancel ]").click()
    expect(page.get_by_role("heading", name="The provider did not sign you in")).to_be_visible()
    expect(page.get_by_text("access_denied")).to_be_visible()


def test_a_provider_that_is_down_shows_a_clear_page(page: Page, stack: Stack) -> None:
    page.goto(stack.tessera + "/login")
    response_status: list[int] = []
    page.on(
        "response",
        lambda r: response_status.append(r.status) if "/auth/offline/" in r.url else None,
    )
    page.get_by_role("link", name="Sign in with Offline ID").click()
    expect(page.get_by_role("heading", name="The provider cannot be reached")).to_be_visible()
    assert response_status == [502]


def test_linking_from_the_settings_page(
    page: Page, context: BrowserContext, stack: Stack, tmp_path: Path
) -> None:
    sign_up(stack, "linus@example.test")
    page.goto(stack.tessera + "/login")
    page.get_by_label("Email").fill("linus@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(stack.tessera + "/settings/sign-in-methods")
    page.get_by_role("link", name="Link Corp ID").click()
    at_provider(page, stack, "linus-at-corp")
    expect(page.get_by_text("Corp ID is linked.")).to_be_visible()
    expect(page.get_by_role("cell", name="linus-at-corp@oidc.test")).to_be_visible()
