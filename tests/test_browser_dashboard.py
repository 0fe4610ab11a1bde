"""The dashboard's flows in Debian's Chromium, on `tessera serve --port <not 8000>` reached
through http://localhost (the server derives http://127.0.0.1:<port> and accepts both)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import served_tessera

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
people = count(1)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_tessera(tmp_path_factory.mktemp("dashboard")) as url:
        assert url.startswith("http://localhost:") and not url.endswith(":8000")
        yield url


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    """A new person, signed up through the form, on the API Keys page."""
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    page = context.new_page()
    page.goto(base + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill(f"ada{next(people)}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    yield page
    context.close()


def create_key(page: Page, base: str, name: str, *scopes: str, environment: str = "live") -> str:
    page.goto(base + "/settings/api-keys/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Environment").select_option(environment)
    for scope in scopes:
        page.get_by_role("checkbox", name=scope).check()
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("It will not be shown again")).to_be_visible()
    return page.get_by_label("API key").input_value()


def test_reloading_the_key_page_shows_it_no_more_and_makes_no_second_key(
    page: Page, base: str
) -> None:
    """The key is shown once after the redirect; a reload says so and creates nothing."""
    key = create_key(page, base, "Reporting", "workspaces:read")
    assert key.startswith("tsr_live_") and page.url.endswith("/created")
    page.reload()
    expect(page.get_by_text("shown once and cannot be shown again")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_count(0)
    page.get_by_role("link", name="Back to API Keys").click()
    expect(page.get_by_role("row", name="Reporting")).to_have_count(1)


def test_scopes_stay_ticked_after_a_refused_form(page: Page, base: str) -> None:
    """A name of spaces is refused; the ticked scopes and the environment are kept."""
    page.goto(base + "/settings/api-keys/new")
    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_label("Environment").select_option("test")
    page.get_by_role("checkbox", name="contacts:read").check()
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".field-error")).to_be_visible()
    expect(page.get_by_role("checkbox", name="contacts:read")).to_be_checked()
    expect(page.get_by_label("Environment")).to_have_value("test")
    expect(page.get_by_text("Contacts", exact=True)).to_be_visible()  # a heading for people


def test_rename_roll_and_revoke_each_say_what_they_did(page: Page, base: str) -> None:
    """Rename in place, roll with a day of grace (the old key marked), revoke: each confirmed."""
    old = create_key(page, base, "Invoices", "workspaces:read")
    page.get_by_role("link", name="Done").click()
    page.get_by_role("link", name="Invoices").click()
    page.get_by_label("New name").fill("Invoice sync")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Renamed to Invoice sync.")
    page.get_by_label("Grace period for the old key").select_option("86400")
    page.get_by_role("button", name="Roll key").click()
    expect(page.get_by_role("status")).to_contain_text("keeps working for 1 day")
    new = page.get_by_label("API key").input_value()
    assert new != old
    api = base.replace("localhost", "127.0.0.1") + "/v1/workspaces"
    assert httpx.get(api, headers={"X-API-Key": old}).status_code == 200
    page.get_by_role("link", name="Done").click()
    graced = page.get_by_role("row").filter(has_text="Grace period")
    expect(graced).to_have_count(1)
    graced.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_contain_text("Invoice sync (tsr_live_")
    expect(page.get_by_role("status")).to_contain_text("is revoked.")
    assert httpx.get(api, headers={"X-API-Key": old}).status_code == 401
    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)


def test_filters_narrow_the_key_list(page: Page, base: str) -> None:
    """By name, environment and status; a filter that matches nothing says so."""
    create_key(page, base, "Live one", "contacts:read")
    create_key(page, base, "Staging one", "contacts:read", environment="test")
    page.goto(base + "/settings/api-keys")
    page.get_by_label("Environment").select_option("test")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Staging one")).to_be_visible()
    expect(page.get_by_role("link", name="Live one")).to_have_count(0)
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Name or prefix").fill("live o")
    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Live one")).to_be_visible()
    expect(page.get_by_role("link", name="Staging one")).to_have_count(0)
    page.get_by_label("Status").select_option("revoked")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No key matches these filters")).to_be_visible()


def test_the_key_page_shows_creator_last_use_and_refusals(page: Page, base: str) -> None:
    """Who created it, when and from which network it was last used, accepted and refused."""
    key = create_key(page, base, "Usage", "workspaces:read")
    api = base.replace("localhost", "127.0.0.1")
    for path in ("/v1/workspaces", "/v1/workspaces", "/v1/api-keys"):
        httpx.get(api + path, headers={"X-API-Key": key})
    page.get_by_role("link", name="Done").click()
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_text("Last 30 days: 3 requests, 1 refused.")).to_be_visible()
    expect(page.get_by_text("Ada Lovelace (ada")).to_be_visible()
    expect(page.get_by_text("from 127.0.0.0/24")).to_be_visible()
    expect(page.get_by_role("img", name="Requests per day")).to_be_visible()


def test_workspaces_are_created_renamed_and_deleted(page: Page, base: str) -> None:
    page.get_by_role("link", name="Workspaces").click()
    page.get_by_label("Name of the new workspace").fill("Europe")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("status")).to_have_text("Workspace Europe created.")
    page.get_by_label("Name of Europe").fill("EMEA")
    page.get_by_role("row", name="Europe").get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Renamed to EMEA.")
    page.get_by_role("row").filter(has=page.get_by_label("Name of EMEA")).get_by_role(
        "link", name="Delete"
    ).click()
    page.get_by_role("button", name="Delete workspace").click()
    expect(page.get_by_role("status")).to_have_text("Workspace EMEA deleted.")
    expect(page.get_by_label("Name of EMEA")).to_have_count(0)


def test_audit_log_filters_and_exports_csv(page: Page, base: str) -> None:
    """Filter by action, see names beside ids, download the same selection as CSV."""
    create_key(page, base, "Audited", "contacts:read")
    page.get_by_role("link", name="Audit Log").click()
    page.get_by_label("Action").select_option("api_key.created")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Audited")
    expect(rows.first).to_contain_text("Ada Lovelace")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert [r["target_name"] for r in csv.DictReader(io.StringIO(text))] == ["Audited"]


def test_the_authentication_page_is_linked_from_the_dashboard(page: Page, base: str) -> None:
    page.get_by_role("link", name="the Authentication page").click()
    expect(page.get_by_role("heading", name="Authentication", exact=True)).to_be_visible()
    expect(page.get_by_text("tsr_live_").first).to_be_visible()
