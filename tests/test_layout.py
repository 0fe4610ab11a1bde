"""Layout at 1280 px, with every name as long as the API allows: no page is wider than the
viewport, and long names are cut with an ellipsis and given whole in a title attribute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from docs.screenshots import PAGES, VIEWPORT, Names, story
from tests.browser import chromium, served_tessera

pytestmark = pytest.mark.browser
# 100 characters (the longest name allowed) and no space to break a line at.
LONG = Names(
    organization=("Northwind-Intercontinental-Logistics-" * 3)[:100],
    workspace=("Europe-Middle-East-Africa-Region-" * 4)[:100],
    key=("Production-Integration-For-The-Billing-Pipeline-" * 3)[:100],
)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, str, list[str]]]:
    """A browser at 1280 px after the screenshots' story, told with the long names; yields the
    page, the base URL and every path to check."""
    folder: Path = tmp_path_factory.mktemp("layout")
    with served_tessera(folder) as base, chromium() as browser:
        page = _page(browser)
        keys = story(page, base, LONG, lambda _name: None)
        key = keys[LONG.key]
        paths = [*PAGES.values(), "/settings/api-keys/new", key, key + "/revoke"]
        paths += ["/settings/members", "/settings/sign-in-methods"]
        yield page, base, paths


def _page(browser: Browser) -> Page:
    return browser.new_context(viewport=VIEWPORT).new_page()


def test_no_page_is_wider_than_the_viewport(walked: tuple[Page, str, list[str]]) -> None:
    """At 1280 px no page scrolls sideways, whatever the names."""
    page, base, paths = walked
    wide = {}
    for path in paths:
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > VIEWPORT["width"]:
            wide[path] = width
    assert wide == {}


def test_tables_fit_without_scrolling_sideways(walked: tuple[Page, str, list[str]]) -> None:
    """At 1280 px every table, the key list's ten columns included, fits its panel."""
    page, base, paths = walked
    scrolled = {}
    for path in paths:
        page.goto(base + path)
        for wrap in page.locator(".table-wrap").all():
            if wrap.evaluate("e => e.scrollWidth > e.clientWidth"):
                scrolled[path] = wrap.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scrolled == {}


def test_long_names_are_cut_and_titled(walked: tuple[Page, str, list[str]]) -> None:
    """Each long name is on one line, cut with an ellipsis where it does not fit, and its
    title holds it whole; in tables and headings it does not fit, and is cut."""
    page, base, paths = walked
    cut = 0
    for path in paths:
        page.goto(base + path)
        for name in (LONG.organization, LONG.workspace, LONG.key):
            for element in page.locator(f'.truncate[title*="{name}"]').all():
                style = element.evaluate(
                    "e => [getComputedStyle(e).textOverflow, getComputedStyle(e).whiteSpace]"
                )
                assert style == ["ellipsis", "nowrap"], (path, name)
                cut += element.evaluate("e => e.scrollWidth > e.clientWidth")
    assert cut >= 6
