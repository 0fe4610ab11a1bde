"""The authorization server against a real `tessera serve`, driven by client libraries no one
here wrote: Authlib's OAuth2Client (httpx) and requests-oauthlib's OAuth2Session with PKCE,
PyJWT's PyJWKClient verifying the ID token, and a real Chromium signing in and consenting."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from playwright.sync_api import Route
from requests_oauthlib import OAuth2Session

from tests.browser import chromium
from tests.fixtures import TEST_SECRET
from tests.helpers import PASSWORD
from tests.oauth_flow import REDIRECT_URI, answer_consent, register_client, sign_in
from tests.servers import free_port, running

pytestmark = pytest.mark.postgres  # the same flows on each database
SCOPE = "openid profile email offline_access contacts:read"
CONFIG = """
password_profile = "cheapest"
[[scope]]
name = "contacts:read"
description = "Read contact data"
"""


@dataclass
class Server:
    base: str
    owner_email: str
    owner_headers: dict[str, str]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """`tessera serve` on its own port, with an owner who can register clients."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "tessera.toml"
    config.write_text(
        f'database_url = "{database_url}"\npublic_url = "{base}"\n'
        f'secret_key = "{TEST_SECRET}"\n' + CONFIG
    )
    command = [sys.executable, "-m", "tessera", "serve", "--port", str(port)]
    command += ["--config", str(config)]
    with running(command, f"{base}/healthz", log=tmp_path / "server.log"):
        email = f"owner-{secrets.token_hex(4)}@example.com"
        with httpx.Client(base_url=base) as api:
            signup = {
                "email": email,
                "password": PASSWORD,
                "name": "Olga",
                "organization_name": "Acme",
            }
            assert api.post("/v1/auth/signup", json=signup).status_code == 201
            login = api.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
        token = login.json()["access_token"]
        yield Server(base, email, {"Authorization": f"Bearer {token}"})


def _registered(server: Server, **body: Any) -> dict[str, Any]:
    with httpx.Client(base_url=server.base) as api:
        return register_client(api, server.owner_headers, **body)


def _callback(server: Server, authorization_url: str) -> str:
    """Sign in and press Allow in a cookie jar; the URL the browser was sent back to."""
    with httpx.Client(base_url=server.base, follow_redirects=False) as session:
        sign_in(session, server.owner_email)
        answer = answer_consent(session, authorization_url.removeprefix(server.base))
    location: str = answer.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    return location


def _verified_id_token(server: Server, id_token: str, client_id: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{server.base}/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = jwt.decode(
        id_token, key.key, algorithms=["RS256"], audience=client_id, issuer=server.base
    )
    return claims


def test_authlib_completes_the_code_flow_with_pkce_and_refreshes(server: Server) -> None:
    """Authlib's OAuth2Client: authorization URL with S256, token, API call, refresh; PyJWT's
    PyJWKClient verifies the ID token from the JWKS."""
    registered = _registered(server)
    metadata = httpx.get(f"{server.base}/.well-known/openid-configuration").json()
    client = OAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="nonce-1"
    )
    callback = _callback(server, url)
    assert httpx.URL(callback).params["iss"] == server.base
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        code_verifier=verifier,
        state=state,
    )
    claims = _verified_id_token(server, token["id_token"], registered["client_id"])
    assert claims["nonce"] == "nonce-1" and claims["email"] == server.owner_email
    me = client.get(f"{server.base}/v1/me")
    assert me.status_code == 200 and me.json()["user"]["email"] == server.owner_email
    renewed = client.refresh_token(metadata["token_endpoint"])
    assert renewed["refresh_token"] != token["refresh_token"]
    assert client.get(f"{server.base}/v1/me").status_code == 200


def test_requests_oauthlib_completes_the_code_flow_with_pkce(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests-oauthlib's OAuth2Session(pkce="S256"): the token works on the API."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # a loopback test server
    registered = _registered(server)
    session = OAuth2Session(
        registered["client_id"], redirect_uri=REDIRECT_URI, scope=SCOPE.split(), pkce="S256"
    )
    url, _state = session.authorization_url(f"{server.base}/oauth2/authorize", nonce="n-2")
    callback = _callback(server, url)
    token = session.fetch_token(
        f"{server.base}/oauth2/token",
        authorization_response=callback,
        client_secret=registered["client_secret"],
    )
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    _verified_id_token(server, token["id_token"], registered["client_id"])
    me = session.get(f"{server.base}/v1/me")
    assert me.status_code == 200 and me.json()["user"]["email"] == server.owner_email


def test_a_public_client_with_authlib_needs_only_pkce(server: Server) -> None:
    """A public client (no secret) completes the flow with PKCE alone."""
    registered = _registered(server, type="public")
    client = OAuth2Client(
        registered["client_id"],
        scope="openid contacts:read",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        f"{server.base}/oauth2/authorize", code_verifier=verifier
    )
    token = client.fetch_token(
        f"{server.base}/oauth2/token",
        authorization_response=_callback(server, url),
        code_verifier=verifier,
        state=state,
    )
    assert "refresh_token" not in token
    assert client.get(f"{server.base}/v1/me").status_code == 200


@pytest.mark.browser
def test_a_person_signs_in_and_consents_in_chromium(server: Server) -> None:
    """A real browser: the authorization URL leads to sign-in, back to consent, and Allow
    lands on the client's redirect URI with a code, state and iss (the page's form may
    send it there)."""
    registered = _registered(server)
    client = OAuth2Client(
        registered["client_id"],
        registered["client_secret"],
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        f"{server.base}/oauth2/authorize", code_verifier=verifier
    )
    landed: list[str] = []

    def callback(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="signed in")

    with chromium() as browser:
        page = browser.new_page()
        page.route(f"{REDIRECT_URI}*", callback)
        page.goto(url)
        page.get_by_label("Email").fill(server.owner_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Authorize Contacts Sync").wait_for()
        assert page.get_by_text("Read contact data").is_visible()
        page.get_by_role("button", name="Allow").click()
        page.get_by_text("signed in").wait_for()
    assert len(landed) == 1 and f"state={state}" in landed[0]
    token = client.fetch_token(
        f"{server.base}/oauth2/token",
        authorization_response=landed[0],
        code_verifier=verifier,
        state=state,
    )
    assert token["access_token"] and token["id_token"]
