"""The dashboard in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import tessera_server

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with tessera_server(tmp_path_factory.mktemp("browser")) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def sign_up(page: Page, base: str, email: str) -> None:
    page.goto(base + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()


def test_create_use_and_revoke_a_key(page: Page, base: str) -> None:
    """Sign up, sign in, create a key, use it, see it used, revoke it, see it refused."""
    sign_up(page, base, "ada@example.com")
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "ada@example.com")

    page.get_by_role("link", name="Create API Key").click()
    page.get_by_label("Name", exact=True).fill("Production integration")
    page.get_by_role("checkbox", name="contacts:read").check()
    page.get_by_role("checkbox", name="workspaces:read").check()
    page.get_by_role("checkbox", name="Default").check()
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("It will not be shown again")).to_be_visible()
    key = page.get_by_label("API key").input_value()
    assert key.startswith("tsr_live_")

    used = httpx.get(base + "/v1/workspaces", headers={"X-API-Key": key})
    assert used.status_code == 200 and [w["name"] for w in used.json()["data"]] == ["Default"]

    page.get_by_role("link", name="Done").click()
    row = page.get_by_role("row", name="Production integration")
    expect(row).to_contain_text("Just now")
    expect(row).to_contain_text("contacts:read")
    expect(row).to_contain_text("Active")

    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke Production integration?")).to_be_visible()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("row", name="Production integration")).to_contain_text("Revoked")
    assert httpx.get(base + "/v1/workspaces", headers={"X-API-Key": key}).status_code == 401


def test_usage_chart_and_roll(page: Page, base: str) -> None:
    """A key's page charts its requests; rolling shows a new key once."""
    sign_up(page, base, "grace@example.com")
    page.get_by_role("link", name="Create API Key").click()
    page.get_by_label("Name", exact=True).fill("Reporting")
    page.get_by_role("checkbox", name="workspaces:read").check()
    page.get_by_role("button", name="Create").click()
    key = page.get_by_label("API key").input_value()
    for _ in range(3):
        httpx.get(base + "/v1/workspaces", headers={"X-API-Key": key})
    page.get_by_role("link", name="Done").click()
    page.get_by_role("link", name="Reporting").click()
    expect(page.get_by_text("Last 30 days: 3 requests, 0 refused")).to_be_visible()
    expect(page.get_by_role("img", name="Requests per day")).to_be_visible()
    page.get_by_label("Grace period for the old key").select_option("3600")
    page.get_by_role("button", name="Roll key").click()
    rolled = page.get_by_label("API key").input_value()
    assert rolled != key
    assert httpx.get(base + "/v1/workspaces", headers={"X-API-Key": key}).status_code == 200


def test_sessions_list_and_sign_out_everywhere(page: Page, base: str) -> None:
    """The Sessions page lists this session; signing out everywhere ends it."""
    sign_up(page, base, "linus@example.com")
    page.get_by_role("link", name="Sessions").click()
    expect(page.get_by_text("this session")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(base + "/settings/api-keys")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_cross_origin_form_post_is_refused(page: Page, base: str) -> None:
    """A page of another origin posting a form with the victim's cookie gets 403."""
    sign_up(page, base, "eve-victim@example.com")
    attacker = base.rsplit(":", 1)[0] + ":9"  # same site, another origin
    page.route(
        attacker + "/**",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"""
        <form id="f" method="post" action="{base}/settings/api-keys">
          <input name="name" value="planted"><input name="scopes" value="contacts:read">
        </form><script>document.getElementById("f").submit()</script>""",
        ),
    )
    with page.expect_response(base + "/settings/api-keys") as answer:
        page.goto(attacker + "/attack")
    assert answer.value.status == 403
    page.goto(base + "/settings/api-keys")
    expect(page.get_by_text("planted")).to_have_count(0)
