"""The deployment's customer-facing "Authentication" page (SPEC section 10), from its config."""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.config import Config, load_config
from tessera.deployment import Tessera
from tessera.web.app import create_app
from tests.browser import chromium, tessera_server

ACME: dict[str, Any] = {
    "key_prefix": "acme",
    "public_url": "https://auth.acme.example",
    "scope": [
        {"name": "contacts:read", "description": "Read contact data"},
        {"name": "contacts:write", "description": "Create and change contacts"},
        {
            "name": "admin:marketing",
            "description": "Run the marketing workflow",
            "admin_only": True,
        },
    ],
    "rate_limit": {"requests": 1000, "per_seconds": 60},
}
GLOBEX: dict[str, Any] = {
    "key_prefix": "globex",
    "public_url": "https://id.globex.test",
    "workspace_label": "brand",
    "signup": "closed",
    "max_key_lifetime_days": 90,
    "scope": [
        {"name": "invoices:read", "description": "Read invoices"},
        {"name": "reports:export", "description": "Export quarterly reports", "admin_only": True},
    ],
    "rate_limit": {"requests": 20, "per_seconds": 120},
    "tokens": {"access_ttl_seconds": 900},
}
HEADERS = ("Authorization: Bearer", "X-API-Key", "X-Workspace-ID", "X-RateLimit-Limit")
SECTIONS = [
    "getting-a-key",
    "key-format",
    "authenticating",
    "scopes",
    "workspaces",
    "user-tokens",
    "oauth",
    "rate-limits",
    "errors",
    "revocation",
    "security",
]


def _config(tmp_path: Path, values: dict[str, Any]) -> Config:
    base = {"database_url": f"sqlite:///{tmp_path}/unused.db", "secret_key": "s" * 40}
    return load_config(environ={}, overrides={**base, **values})


@contextmanager
def _deployment(
    tmp_path: Path, values: dict[str, Any], *, started: bool = False
) -> Iterator[TestClient]:
    """A deployment's application; the docs pages never touch its database (``started``:
    migrated, for the discovery document, which names the signing keys' algorithms)."""
    tessera = Tessera(_config(tmp_path, values))
    if started:
        tessera.start()
    try:
        with TestClient(create_app(tessera), base_url=tessera.config.public_url) as client:
            yield client
    finally:
        if started:
            tessera.close()


def _pages(tmp_path: Path, values: dict[str, Any]) -> tuple[str, str]:
    """The HTML page (as text, entities decoded) and the Markdown page."""
    with _deployment(tmp_path, values) as client:
        page = client.get("/docs/authentication")
        markdown = client.get("/docs/authentication.md")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    return html.unescape(page.text), markdown.text


def _values(deployment: dict[str, Any]) -> list[str]:
    """Everything deployment-specific that its page must show."""
    prefix = deployment["key_prefix"]
    scopes = [s["name"] for s in deployment["scope"]]
    descriptions = [s["description"] for s in deployment["scope"]]
    return [
        f"{prefix}_live_",
        f"{prefix}_test_",
        f"{prefix.upper()}_API_KEY",
        deployment["public_url"] + "/v1/workspaces",
        deployment["public_url"] + "/v1/auth/token",
        f"X-RateLimit-Limit: {deployment['rate_limit']['requests']}",
        f"w={deployment['rate_limit']['per_seconds']}",
        *scopes,
        *descriptions,
    ]


@pytest.mark.parametrize(("mine", "theirs"), [(ACME, GLOBEX), (GLOBEX, ACME)])
def test_page_shows_this_deployments_values_and_no_others(
    tmp_path: Path, mine: dict[str, Any], theirs: dict[str, Any]
) -> None:
    """Prefix, address, scopes, descriptions, limits and headers are this deployment's own, in
    the HTML and the Markdown alike, and nothing of another deployment's appears."""
    for page in _pages(tmp_path, mine):
        for value in [*_values(mine), *HEADERS]:
            assert value in page, value
        for value in _values(theirs):
            assert value not in page, value


@pytest.mark.parametrize("deployment", [ACME, GLOBEX])
def test_scope_table_marks_admin_only_scopes_and_only_those(
    tmp_path: Path, deployment: dict[str, Any]
) -> None:
    """Each catalog scope's row carries its description, and "Yes" under Admin only exactly
    when the config says admin_only."""
    page, _ = _pages(tmp_path, deployment)
    for scope in deployment["scope"]:
        mark = "<strong>Yes</strong>" if scope.get("admin_only") else "No"
        row = (
            rf"<tr>\s*<td><code>{re.escape(scope['name'])}</code></td>\s*"
            rf"<td>{re.escape(scope['description'])}</td>\s*<td>{mark}</td>\s*</tr>"
        )
        assert re.search(row, page), scope["name"]


def test_page_follows_signup_label_lifetimes_and_limits(tmp_path: Path) -> None:
    """Closed sign-up, the workspace label, a key lifetime cap and the token lifetime show."""
    _, acme = _pages(tmp_path, ACME)
    _, globex = _pages(tmp_path, GLOBEX)
    assert "create an account at <https://auth.acme.example/signup>" in acme
    assert "accounts are by invitation" in globex and "/signup" not in globex
    assert "## Brands" in globex and "## Workspaces" in acme and "brand" not in acme
    assert "at most 90 days after it is made" in globex
    assert "expires after 15 minutes" in globex and "expires after 1 hour" in acme
    # 20 per 120 s: one request back every 6 s; 1000 per minute: one every 0.06 s.
    assert "X-RateLimit-Reset: 6" in globex and "Retry-After: 6" in globex
    assert "X-RateLimit-Reset: 1\n" in acme and "Retry-After: 1\n" in acme


def test_sections_are_the_ones_of_the_spec_with_the_real_oauth_endpoints(tmp_path: Path) -> None:
    """The page has its sections in order, each in the table of contents; the OAuth section
    names this deployment's endpoints."""
    with _deployment(tmp_path, ACME, started=True) as client:
        page = client.get("/docs/authentication").text
        discovery = client.get("/.well-known/openid-configuration").json()
    assert re.findall(r'<section id="([a-z-]+)">', page) == SECTIONS
    assert re.findall(r'<li><a href="#([a-z-]+)">', page) == SECTIONS
    for endpoint in ("authorization_endpoint", "token_endpoint", "introspection_endpoint"):
        assert f"<code>{discovery[endpoint]}</code>" in page


def test_config_text_cannot_change_the_pages_markup(tmp_path: Path) -> None:
    """A description with HTML and Markdown in it is shown as text, in its own table cell."""
    hostile = "Read <script>alert(1)</script> | **all** [data](javascript:x)"
    values = {**ACME, "scope": [{"name": "contacts:read", "description": hostile}]}
    with _deployment(tmp_path, values) as client:
        page = client.get("/docs/authentication").text
        markdown = client.get("/docs/authentication.md").text
    assert "<script>" not in page and 'href="javascript' not in page
    assert f"<td>{html.escape(hostile, quote=False)}</td>" in page
    assert "| `contacts:read` | Read \\<script\\>" in markdown


@pytest.mark.parametrize("path", ["/docs/authentication", "/docs/authentication.md"])
def test_page_may_not_be_framed(tmp_path: Path, path: str) -> None:
    """Like every dashboard page: frame-ancestors 'none', X-Frame-Options DENY, nosniff."""
    with _deployment(tmp_path, ACME) as client:
        answer = client.get(path)
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_swagger_ui_under_docs_still_works(tmp_path: Path) -> None:
    """/docs, its start script and its assets are served as before."""
    with _deployment(tmp_path, ACME) as client:
        assert "swagger-ui" in client.get("/docs").text
        assert client.get("/docs/start.js").status_code == 200
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def _png_width(data: bytes) -> int:
    width: int = struct.unpack(">I", data[16:20])[0]  # the IHDR chunk follows the signature
    return width


@pytest.mark.browser
def test_page_is_no_wider_than_a_1280_pixel_viewport(tmp_path: Path) -> None:
    """In Chromium at 1280 px the page scrolls only downwards: a full-page screenshot is
    1280 px wide, and so is the document."""
    with tessera_server(tmp_path) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(base + "/docs/authentication")
        assert page.get_by_role("heading", name="Authentication", exact=True).is_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        shot = page.screenshot(full_page=True)
    assert width <= 1280
    assert _png_width(shot) == 1280
