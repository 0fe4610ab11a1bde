"""The authorization code flow over plain HTTP with a cookie jar, as a browser would run it:
sign in, ask for a code, answer the consent page. Works with Starlette's TestClient and with
an httpx.Client pointed at a real server (both speak httpx)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.helpers import PASSWORD

REDIRECT_URI = "http://127.0.0.1:9999/callback"


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def register_client(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {
        "name": "Contacts Sync",
        "redirect_uris": [REDIRECT_URI],
        "scopes": ["openid", "profile", "email", "offline_access", "contacts:read"],
        **body,
    }
    response = client.post("/v1/oauth-clients", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text


def authorize_url(client_id: str, pkce: Pkce | None, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access contacts:read",
        "state": "st-123",
        "nonce": "n-456",
    }
    if pkce is not None:
        query |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    query |= params
    return "/oauth2/authorize?" + urlencode(query)


def consent_form(page: str) -> dict[str, str]:
    """The hidden fields of the consent page, and its form's action."""
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    organization = re.search(r'name="organization_id" value="([^"]+)"', page) or re.search(
        r'<option value="([^"]+)"', page
    )
    assert action and csrf and organization, page
    return {
        "action": action.group(1).replace("&amp;", "&"),
        "csrf_token": csrf.group(1),
        "organization_id": organization.group(1),
    }


def answer_consent(
    client: httpx.Client, url: str, decision: str = "allow", organization_id: str | None = None
) -> httpx.Response:
    """Open ``url`` signed in, press Allow or Deny; the redirect back to the client."""
    page = client.get(url)
    if page.status_code in (302, 303) and "code=" in page.headers.get("location", ""):
        return page  # consent remembered
    assert page.status_code == 200, page.text
    form = consent_form(page.text)
    data = {
        "csrf_token": form["csrf_token"],
        "organization_id": organization_id or form["organization_id"],
        "decision": decision,
    }
    return client.post(form["action"], data=data)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(client: httpx.Client, client_id: str, pkce: Pkce, **params: str) -> str:
    answer = answer_consent(client, authorize_url(client_id, pkce, **params))
    found = redirect_params(answer)
    assert "code" in found, found
    return found["code"]


def exchange(
    client: httpx.Client, registered: dict[str, Any], code: str, verifier: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }
    return client.post("/oauth2/token", data=data, auth=client_auth(registered))


def client_auth(registered: dict[str, Any]) -> tuple[str, str] | None:
    secret = registered.get("client_secret")
    return (registered["client_id"], secret) if secret else None
