"""Settings → OAuth Apps and Settings → Authorized apps (SPEC section 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.web.app import create_app
from tests.helpers import Account, sign_up
from tests.oauth_flow import Pkce, code_for, exchange, register_client, sign_in

APPS = "/settings/oauth-apps"


@pytest.fixture
def web(tessera: Tessera) -> Iterator[TestClient]:
    with TestClient(
        create_app(tessera), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as client:
        yield client


@pytest.fixture
def owner(web: TestClient) -> Account:
    account = sign_up(web)
    sign_in(web, account.email)
    return account


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _field(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}" type="text" readonly value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_registering_an_app_shows_its_client_id_and_the_secret_once(
    web: TestClient, owner: Account
) -> None:
    """The form registers the app; the next page shows the client id and the secret with Copy;
    the list shows the app and never the secret."""
    page = web.get(APPS)
    assert page.status_code == 200 and "Register an app" in page.text
    created = web.post(
        APPS,
        data={
            "csrf_token": _csrf(page.text),
            "name": "Contacts Sync",
            "redirect_uris": "https://app.example/cb\nhttp://127.0.0.1/cb",
            "type": "confidential",
            "scopes": ["openid", "contacts:read"],
        },
    )
    assert created.status_code == 200, created.text
    client_id, secret = _field(created.text, "client-id"), _field(created.text, "client-secret")
    assert client_id.startswith("cli_") and secret.startswith("cs_")
    assert (
        'data-copy="#client-secret"' in created.text and "will not be shown again" in created.text
    )
    listed = web.get(APPS).text
    assert client_id in listed and secret not in listed and "https://app.example/cb" in listed
    token = web.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.text


def test_a_refused_registration_says_why_on_the_page(web: TestClient, owner: Account) -> None:
    """A redirect URI that is not https is refused with the reason beside the form."""
    page = web.get(APPS)
    refused = web.post(
        APPS,
        data={"csrf_token": _csrf(page.text), "name": "X", "redirect_uris": "http://a.example/"},
    )
    assert refused.status_code == 422 and "must be https" in refused.text


def test_rotating_and_deleting_an_app(web: TestClient, owner: Account) -> None:
    """Rotate shows a new secret once and the old one stops; Delete removes the app."""
    registered = register_client(web, owner.headers)
    csrf = _csrf(web.get(APPS).text)
    rotated = web.post(f"{APPS}/{registered['id']}/rotate", data={"csrf_token": csrf})
    new_secret = _field(rotated.text, "client-secret")
    assert new_secret != registered["client_secret"]
    old = web.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["id"], registered["client_secret"]),
    )
    assert old.status_code == 401
    deleted = web.post(f"{APPS}/{registered['id']}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and registered["id"] not in web.get(APPS).text


def test_authorized_apps_lists_and_revokes_a_grant(web: TestClient, owner: Account) -> None:
    """The person sees the app they allowed and ends its access with Revoke."""
    registered = register_client(web, owner.headers)
    pkce = Pkce.new()
    tokens = exchange(web, registered, code_for(web, registered["id"], pkce), pkce.verifier).json()
    page = web.get("/settings/authorized-apps")
    assert "Contacts Sync" in page.text and "Acme" in page.text
    grant_id = re.search(r"/settings/authorized-apps/(grt_\w+)/revoke", page.text)
    assert grant_id
    revoked = web.post(
        f"/settings/authorized-apps/{grant_id.group(1)}/revoke",
        data={"csrf_token": _csrf(page.text)},
    )
    assert revoked.status_code == 303
    me = web.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 401
    assert "You have not authorized any app" in web.get("/settings/authorized-apps").text
