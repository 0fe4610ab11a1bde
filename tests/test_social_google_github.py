"""Google and GitHub sign-in, their endpoints overridden (SPEC section 8) to a local stand-in
that speaks their documented answers (``tests/social_standin.py``): the real ones cannot be
reached from here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tests.helpers import PASSWORD, sign_up
from tests.servers import uvicorn
from tests.social_standin import CLIENT_ID, CLIENT_SECRET

BASE = "http://127.0.0.1:8000"
ADA = {"sub": "1057", "email": "ada@gmail.example", "email_verified": True, "name": "Ada"}
OCTO_EMAILS = [
    {"email": "octo@users.noreply.example", "primary": False, "verified": True},
    {"email": "octo@github.example", "primary": True, "verified": True},
]


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    with uvicorn("tests.social_standin:app") as address:
        yield f"http://{address}"


@pytest.fixture
def config_overrides(standin: str) -> dict[str, Any]:
    return {
        "provider": [
            {
                "name": "google",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorize_url": standin + "/o/oauth2/v2/auth",
                "token_url": standin + "/token",
                "userinfo_url": standin + "/v1/userinfo",
                "jwks_uri": standin + "/oauth2/v3/certs",
            },
            {
                "name": "github",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorize_url": standin + "/login/oauth/authorize",
                "token_url": standin + "/login/oauth/access_token",
                "api_url": standin,
            },
        ]
    }


def next_person(standin: str, **people: Any) -> None:
    assert httpx.post(standin + "/_next", json=people).status_code == 200


def sign_in(client: TestClient, provider: str) -> Any:
    """Tessera's login, the stand-in's authorization endpoint, then Tessera's callback."""
    started = client.get(f"/auth/{provider}/login", follow_redirects=False)
    assert started.status_code == 303, started.text
    answered = httpx.get(started.headers["location"], follow_redirects=False)
    assert answered.status_code == 302, answered.text
    back = answered.headers["location"]
    assert back.startswith(f"{BASE}/auth/{provider}/callback?")
    return client.get(back.removeprefix(BASE), follow_redirects=False)


def test_google_signs_a_person_in(client: TestClient, standin: str) -> None:
    next_person(standin, google=ADA)
    response = sign_in(client, "google")
    assert response.status_code == 303 and "tsr_session" in response.cookies
    me = client.get("/v1/me").json()["user"]
    assert (me["email"], me["email_verified"], me["name"]) == ("ada@gmail.example", True, "Ada")
    (identity,) = client.get("/v1/me/identities").json()["data"]
    assert (identity["provider"], identity["provider_name"], identity["subject"]) == (
        "google",
        "Google",
        "1057",
    )
    request = httpx.get(standin + "/_token_requests").json()[-1]
    assert request["grant_type"] == "authorization_code" and len(request["code_verifier"]) >= 43
    assert "client_secret" not in request  # sent with HTTP Basic, as the stand-in checked


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "another-app"}, "aud"),
        ({"nonce": "a-nonce-from-elsewhere"}, "nonce"),
        ({"iss": "https://accounts.example"}, "iss"),
        ({"exp": int(time.time()) - 3600}, "exp"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(
    client: TestClient, standin: str, claims: dict[str, Any], why: str
) -> None:
    next_person(standin, google={**ADA, "id_token": claims})
    response = sign_in(client, "google")
    assert response.status_code == 502, why
    assert "ID token failed its checks" in response.text
    assert "tsr_session" not in response.cookies


def test_an_answer_from_another_issuer_is_refused(client: TestClient, standin: str) -> None:
    """RFC 9207's iss in the authorization response: a mix-up with another provider."""
    next_person(standin, google={**ADA, "iss_param": "https://idp.example"})
    response = sign_in(client, "google")
    assert response.status_code == 502 and "did not come from Google" in response.text


def test_a_new_signing_key_is_fetched_when_its_kid_is_unknown(
    client: TestClient, standin: str, clock: ManualClock
) -> None:
    next_person(standin, google=ADA)
    assert sign_in(client, "google").status_code == 303  # the JWKS is now cached
    assert httpx.post(standin + "/_rotate").status_code == 200
    clock.advance(11)  # past the pause between two fetches for unknown kids
    again = sign_in(client, "google")
    assert again.status_code == 303, again.text


def test_github_signs_a_person_in_with_the_verified_primary_email(
    client: TestClient, standin: str
) -> None:
    octo = {"id": 583231, "login": "octocat", "name": "The Octocat", "emails": OCTO_EMAILS}
    next_person(standin, github=octo)
    assert sign_in(client, "github").status_code == 303
    me = client.get("/v1/me").json()["user"]
    assert (me["email"], me["email_verified"]) == ("octo@github.example", True)
    (identity,) = client.get("/v1/me/identities").json()["data"]
    assert (identity["provider"], identity["subject"]) == ("github", "583231")


def test_github_links_only_by_a_verified_primary_email(client: TestClient, standin: str) -> None:
    """A verified email that is not the primary, or a primary GitHub has not verified, does
    not link to the account that holds it."""
    account = sign_up(client, "octo@github.example")
    emails = [
        {"email": "octo@github.example", "primary": False, "verified": True},
        {"email": "other@github.example", "primary": True, "verified": False},
    ]
    next_person(standin, github={"id": 9, "login": "mallory", "emails": emails})
    assert sign_in(client, "github").status_code == 303  # a new person, not the account
    assert client.get("/v1/me").json()["user"]["id"] != account.user_id
    client.cookies.clear()
    emails = [{"email": "octo@github.example", "primary": True, "verified": False}]
    next_person(standin, github={"id": 10, "login": "mallory2", "emails": emails})
    refused = sign_in(client, "github")
    assert refused.status_code == 409 and "does not say this email is verified" in refused.text
    token = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    assert token.status_code == 200


def test_github_access_denied_is_a_page(client: TestClient, standin: str) -> None:
    next_person(standin, github={"deny": True})
    response = sign_in(client, "github")
    assert response.status_code == 403 and "access_denied" in response.text
