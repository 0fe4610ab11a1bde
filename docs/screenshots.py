"""Screenshots of the dashboard's main pages, for the README.

    .venv/bin/python -m docs.screenshots

Starts Tessera on a fresh database, drives Debian's Chromium through a short story (sign up,
create keys, use one) and writes docs/screenshots/*.png.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Page

from tests.browser import chromium, tessera_server
from tests.servers import free_port
from tests.social_peers import tessera_with

OUT = Path(__file__).with_name("screenshots")
PASSWORD = "correct horse battery"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as folder,
        tessera_server(Path(folder)) as base,
        chromium() as browser,
    ):
        page = browser.new_context(viewport={"width": 1280, "height": 820}).new_page()
        page.goto(base + "/signup")
        page.get_by_label("Your name").fill("Ada Lovelace")
        page.get_by_label("Email").fill("ada@acme.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Organization").fill("Acme Analytics")
        page.get_by_role("button", name="Create account").click()
        keys = {}
        for name, scopes in (
            ("Billing sync", ["contacts:read"]),
            ("Production integration", ["contacts:read", "contacts:write"]),
        ):
            page.goto(base + "/settings/api-keys/new")
            page.get_by_label("Name", exact=True).fill(name)
            for scope in scopes:
                page.get_by_role("checkbox", name=scope).check()
            page.get_by_role("checkbox", name="workspaces:read").check()
            if name.startswith("Production"):
                page.screenshot(path=OUT / "create-key.png", full_page=True)
            page.get_by_role("button", name="Create").click()
            keys[name] = page.get_by_label("API key").input_value()
        page.screenshot(path=OUT / "key-shown-once.png", full_page=True)
        for _ in range(12):
            httpx.get(
                base + "/v1/workspaces", headers={"X-API-Key": keys["Production integration"]}
            )
        httpx.get(base + "/v1/api-keys", headers={"X-API-Key": keys["Production integration"]})
        page.goto(base + "/settings/api-keys")
        page.screenshot(path=OUT / "api-keys.png", full_page=True)
        page.get_by_role("link", name="Production integration").click()
        page.screenshot(path=OUT / "usage-chart.png", full_page=True)
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
        page = browser.new_context(viewport={"width": 1280, "height": 820}).new_page()
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
