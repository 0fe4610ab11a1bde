"""Screenshots of the dashboard's pages and the Authentication page, for the README.

    .venv/bin/python -m docs.screenshots

Starts ``tessera serve`` on a free port (never 8000) with a fresh database, opens it as
``http://localhost:<port>`` in Debian's Chromium, plays a short story (sign up, add a
workspace, create keys, use one, roll one) and writes docs/screenshots/*.png at 1280 px wide.
``story`` and ``PAGES`` are also what the layout test walks (tests/test_layout.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Page

from tests.browser import chromium, served_tessera
from tests.servers import free_port
from tests.social_peers import tessera_with

OUT = Path(__file__).with_name("screenshots")
PASSWORD = "correct horse battery"
VIEWPORT = {"width": 1280, "height": 820}
# What each screenshot shows: its file name and the path it is taken at.
PAGES = {
    "api-keys": "/settings/api-keys",
    "workspaces": "/settings/workspaces",
    "sessions": "/settings/sessions",
    "members": "/settings/members",
    "audit-log": "/settings/audit-log",
    "authentication": "/docs/authentication",
}


@dataclass(frozen=True)
class Names:
    """The names the story gives things; the layout test makes them as long as allowed."""

    organization: str = "Acme Analytics"
    workspace: str = "Europe"
    key: str = "Production integration"


def story(page: Page, base: str, names: Names, shot: Callable[[str], None]) -> dict[str, str]:
    """Sign up, add a workspace, create two keys, use one, roll the other; ``shot(name)`` is
    called where a screenshot of the page as it is belongs. Returns the keys' page paths."""
    page.goto(base + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill(names.organization)
    page.get_by_role("button", name="Create account").click()
    page.goto(base + "/settings/workspaces")
    page.get_by_label("Name of the new workspace").fill(names.workspace)
    page.get_by_role("button", name="Create workspace").click()
    raw, paths = {}, {}
    for name, scopes in (
        ("Billing sync", ["contacts:read"]),
        (names.key, ["contacts:read", "contacts:write"]),
    ):
        page.goto(base + "/settings/api-keys/new")
        page.get_by_label("Name", exact=True).fill(name)
        for scope in scopes:
            page.get_by_role("checkbox", name=scope).check()
        page.get_by_role("checkbox", name="workspaces:read").check()
        if name == names.key:
            page.get_by_role("checkbox", name=names.workspace).check()
            shot("create-key")
        page.get_by_role("button", name="Create").click()
        raw[name] = page.get_by_label("API key").input_value()
        paths[name] = page.url.removeprefix(base).removesuffix("/created")
    shot("key-shown-once")
    _use(base, raw[names.key])
    page.goto(base + paths["Billing sync"])
    page.get_by_label("Grace period for the old key").select_option("86400")
    page.get_by_role("button", name="Roll key").click()
    page.goto(base + paths[names.key])
    shot("usage-chart")
    return paths


def _use(base: str, key: str) -> None:
    """Requests the key may make, and a few it may not (refused, counted as such)."""
    api = base.replace("localhost", "127.0.0.1")
    for _ in range(12):
        httpx.get(api + "/v1/workspaces", headers={"X-API-Key": key})
    for _ in range(3):
        httpx.get(api + "/v1/api-keys", headers={"X-API-Key": key})  # no api_keys:read: 403


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as folder,
        served_tessera(Path(folder)) as base,
        chromium() as browser,
    ):
        page = browser.new_context(viewport=VIEWPORT).new_page()

        def shot(name: str) -> None:
            page.screenshot(path=OUT / f"{name}.png", full_page=True)

        story(page, base, Names(), shot)
        for name, path in PAGES.items():
            page.goto(base + path)
            shot(name)
        _oauth(page, base)
    sign_in_with_providers()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))


def sign_in_with_providers() -> None:
    """The sign-in page of a deployment with Google, GitHub and a company's OpenID provider."""
    providers = """
[[provider]]
name = "google"
client_id = "screenshot"
[[provider]]
name = "github"
client_id = "screenshot"
[[provider]]
name = "corp"
label = "Corp SSO"
discovery_url = "https://idp.corp.example/.well-known/openid-configuration"
client_id = "screenshot"
"""
    with (
        tempfile.TemporaryDirectory() as folder,
        tessera_with(Path(folder), free_port(), providers) as base,
        chromium() as browser,
    ):
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(base + "/login")
        page.screenshot(path=OUT / "sign-in-providers.png", full_page=True)


def _oauth(page: Page, base: str) -> None:
    """Register an OAuth app, then open its authorization URL: the consent page."""
    page.goto(base + "/settings/oauth-apps")
    page.get_by_label("Name", exact=True).fill("Contacts Sync")
    page.get_by_label("Redirect URIs (one a line)").fill("https://sync.example/callback")
    for scope in ("openid", "email", "offline_access", "contacts:read"):
        page.get_by_role("checkbox", name=scope).check()
    page.get_by_role("button", name="Register").click()
    client_id = page.get_by_label("Client ID").input_value()
    page.screenshot(path=OUT / "oauth-app-created.png", full_page=True)
    page.goto(base + "/settings/oauth-apps")
    page.screenshot(path=OUT / "oauth-apps.png", full_page=True)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "https://sync.example/callback",
            "scope": "openid email offline_access contacts:read",
            "state": "af0ifjsldkj",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{base}/oauth2/authorize?{query}")
    page.screenshot(path=OUT / "consent.png", full_page=True)


if __name__ == "__main__":
    main()
