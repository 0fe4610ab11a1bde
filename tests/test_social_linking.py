"""Social sign-in's rules (SPEC section 3) through the HTTP app, with a provider stand-in that
says what each test needs: who is linked, who is made, who is refused, and what ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.social.records import Profile
from tessera.social.service import SocialSignIn
from tessera.social.store import ProviderError
from tessera.storage.identities import SqlSocialStore
from tests.helpers import PASSWORD, assert_problem, sign_up


@dataclass
class StandIn:
    """A provider that vouches for ``person``, or fails with ``failure``."""

    name: str = "corp"
    display_name: str = "Corp"
    person: Profile = field(default_factory=lambda: Profile("sub-1", "new@example.com", True))
    failure: ProviderError | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        return f"https://idp.example/authorize?state={state}"

    def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, issuer: str | None
    ) -> Profile:
        self.seen.append({"code": code, "redirect_uri": redirect_uri, "verifier": code_verifier})
        if self.failure is not None:
            raise self.failure
        return self.person


@pytest.fixture
def provider(tessera: Tessera) -> StandIn:
    stand_in = StandIn()
    tessera.social = SocialSignIn(
        {"corp": stand_in},
        SqlSocialStore(tessera.db),
        tessera.clock,
        signup_open=tessera.config.signup == "open",
    )
    return stand_in


def start(client: TestClient, next_path: str | None = None) -> str:
    """The state of a new sign-in started in this client (its binding cookie kept)."""
    query = {"next": next_path} if next_path else None
    response = client.get("/auth/corp/login", params=query, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert "HttpOnly" in response.headers["set-cookie"]
    return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]


def callback(client: TestClient, state: str, **extra: str) -> Any:
    params = {"code": "the-code", "state": state, **extra}
    return client.get("/auth/corp/callback", params=params, follow_redirects=False)


def sign_in(client: TestClient, next_path: str | None = None) -> Any:
    return callback(client, start(client, next_path))


def test_a_new_person_is_signed_up_and_signed_in(client: TestClient, provider: StandIn) -> None:
    response = sign_in(client, "/settings/sessions")
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/sessions"
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("tsr_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Max-Age=604800" in session
    me = client.get("/v1/me").json()
    assert me["user"]["email"] == "new@example.com" and me["user"]["email_verified"] is True
    assert [m["role"] for m in me["memberships"]] == ["owner"]
    identities = client.get("/v1/me/identities").json()["data"]
    assert [(i["provider"], i["subject"]) for i in identities] == [("corp", "sub-1")]
    assert provider.seen[0]["redirect_uri"] == "http://127.0.0.1:8000/auth/corp/callback"


def test_each_sign_in_makes_a_new_session(client: TestClient, provider: StandIn) -> None:
    first = sign_in(client).cookies["tsr_session"]
    second = sign_in(client).cookies["tsr_session"]
    assert first != second
    assert len(client.get("/v1/sessions").json()["data"]) == 2


def test_the_sign_in_is_audited_with_its_provider(
    client: TestClient, provider: StandIn, tessera: Tessera
) -> None:
    sign_in(client)
    user_id = client.get("/v1/me").json()["user"]["id"]
    organization = tessera.accounts.home_organization(user_id)
    assert organization is not None
    events = tessera.audit_log.page(organization, limit=50, cursor=None, action=None).items
    actions = {e.action: e.details for e in events}
    assert actions["user.logged_in"]["provider"] == "corp"
    assert actions["user.identity_linked"]["provider"] == "corp"
    assert actions["user.signed_up"]["provider"] == "corp"


def test_a_verified_email_links_and_takes_over_an_unverified_account(
    client: TestClient, provider: StandIn
) -> None:
    """Whoever registered the email first with a password loses the password, the sessions
    and the refresh tokens: the provider proved control of the email."""
    squatter = sign_up(client, "ada@example.com")
    client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    squatter_session = client.cookies["tsr_session"]
    client.cookies.clear()
    provider.person = Profile("ada-at-corp", "ADA@example.com", True)
    assert sign_in(client).status_code == 303
    me = client.get("/v1/me").json()
    assert me["user"]["id"] == squatter.user_id and me["user"]["email_verified"] is True
    refused = client.post("/v1/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    assert_problem(refused, 401, "unauthorized")
    refresh = {"grant_type": "refresh_token", "refresh_token": squatter.refresh_token}
    assert_problem(client.post("/v1/auth/token", json=refresh), 401, "unauthorized")
    assert_problem(client.get("/v1/me", headers=squatter.headers), 401, "unauthorized")
    client.cookies.set("tsr_session", squatter_session)
    assert_problem(client.get("/v1/me"), 401, "unauthorized")


def test_a_verified_email_of_a_verified_account_links_and_keeps_its_password(
    client: TestClient, provider: StandIn, tessera: Tessera
) -> None:
    account = sign_up(client, "ada@example.com")
    with tessera.account_store.transaction() as tx:
        tx.set_email_verified(account.user_id, True)
    provider.person = Profile("ada-at-corp", "ada@example.com", True)
    sign_in(client)
    assert client.get("/v1/me").json()["user"]["id"] == account.user_id
    kept = client.post("/v1/auth/token", json={"email": "ada@example.com", "password": PASSWORD})
    assert kept.status_code == 200
    assert client.get("/v1/me", headers=account.headers).status_code == 200


def test_an_unverified_email_never_links(client: TestClient, provider: StandIn) -> None:
    account = sign_up(client, "ada@example.com")
    provider.person = Profile("mallory", "ada@example.com", False)
    response = sign_in(client)
    assert response.status_code == 409
    assert "An account with this email exists" in response.text
    assert "tsr_session" not in response.cookies
    assert client.get("/v1/me", headers=account.headers).status_code == 200
    assert client.get("/v1/me/identities", headers=account.headers).json()["data"] == []


@pytest.mark.parametrize("config_overrides", [{"signup": "closed"}])
def test_closed_signup_is_a_clear_page(client: TestClient, provider: StandIn) -> None:
    response = sign_in(client)
    assert response.status_code == 403
    assert "Sign-up is closed" in response.text and "new@example.com" in response.text


def test_a_forged_state_is_refused(client: TestClient, provider: StandIn) -> None:
    start(client)
    response = callback(client, "forged-state")
    assert response.status_code == 400
    assert "This sign-in cannot be completed" in response.text
    assert provider.seen == []


def test_a_replayed_state_is_refused(client: TestClient, provider: StandIn) -> None:
    state = start(client)
    assert callback(client, state).status_code == 303
    replay = callback(client, state)
    assert replay.status_code == 400 and "already used" in replay.text
    assert len(provider.seen) == 1


def test_a_state_from_another_browser_is_refused(
    client: TestClient, provider: StandIn, tessera: Tessera
) -> None:
    state = start(client)
    client.cookies.clear()
    assert callback(client, state).status_code == 400
    assert provider.seen == []


def test_an_expired_state_is_refused(client: TestClient, provider: StandIn, clock: Any) -> None:
    state = start(client)
    clock.advance(601)
    assert callback(client, state).status_code == 400


def test_a_provider_error_is_a_page_that_says_it(client: TestClient, provider: StandIn) -> None:
    state = start(client)
    response = callback(client, state, error="access_denied", error_description="User said no")
    assert response.status_code == 403
    assert "access_denied" in response.text and "User said no" in response.text


def test_a_provider_that_is_down_is_a_page_not_a_500(client: TestClient, provider: StandIn) -> None:
    provider.failure = ProviderError("unavailable", "Corp cannot be reached right now.")
    response = sign_in(client)
    assert response.status_code == 502
    assert "Corp cannot be reached right now." in response.text


def test_an_unknown_provider_is_a_page(client: TestClient, provider: StandIn) -> None:
    response = client.get("/auth/nope/login", follow_redirects=False)
    assert response.status_code == 404 and "Unknown sign-in provider" in response.text


def test_next_off_the_deployment_is_not_followed(client: TestClient, provider: StandIn) -> None:
    response = sign_in(client, "https://evil.example/steal")
    assert response.headers["location"] == "/settings/api-keys"


def test_the_last_way_to_sign_in_cannot_be_unlinked(client: TestClient, provider: StandIn) -> None:
    sign_in(client)
    (identity,) = client.get("/v1/me/identities").json()["data"]
    headers = {"Origin": "http://127.0.0.1:8000"}
    refused = client.delete(f"/v1/me/identities/{identity['id']}", headers=headers)
    assert_problem(refused, 409, "conflict")
    assert len(client.get("/v1/me/identities").json()["data"]) == 1


def test_a_signed_in_person_links_and_unlinks_a_provider(
    client: TestClient, provider: StandIn, tessera: Tessera
) -> None:
    account = sign_up(client, "ada@example.com")
    client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    page = client.get("/settings/sign-in-methods")
    assert page.status_code == 200 and "Link Corp" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    linking = client.get(
        "/settings/sign-in-methods/corp/link",
        params={"csrf_token": token},
        follow_redirects=False,
    )
    assert linking.status_code == 303
    state = parse_qs(urlsplit(linking.headers["location"]).query)["state"][0]
    provider.person = Profile("ada-elsewhere", "someone.else@example.org", True)
    linked = callback(client, state)
    assert linked.headers["location"] == "/settings/sign-in-methods?linked=corp"
    (identity,) = client.get("/v1/me/identities", headers=account.headers).json()["data"]
    assert identity["email"] == "someone.else@example.org"
    # With a password left, the provider can go.
    gone = client.delete(f"/v1/me/identities/{identity['id']}", headers=account.headers)
    assert gone.status_code == 204
    assert client.get("/v1/me/identities", headers=account.headers).json()["data"] == []


def test_an_identity_of_another_user_cannot_be_linked(
    client: TestClient, provider: StandIn
) -> None:
    sign_in(client)  # sub-1 belongs to new@example.com now
    client.cookies.clear()
    sign_up(client, "ada@example.com")
    client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    token = client.get("/settings/sign-in-methods").text.split('csrf_token" value="')[1][:64]
    linking = client.get(
        "/settings/sign-in-methods/corp/link",
        params={"csrf_token": token},
        follow_redirects=False,
    )
    state = parse_qs(urlsplit(linking.headers["location"]).query)["state"][0]
    refused = callback(client, state)
    assert refused.status_code == 409 and "already linked to another user" in refused.text


def test_the_sign_in_page_shows_a_button_per_provider(
    client: TestClient, provider: StandIn
) -> None:
    page = client.get("/login")
    assert 'href="/auth/corp/login"' in page.text and "Sign in with Corp" in page.text


def test_linking_needs_the_session_csrf_token(client: TestClient, provider: StandIn) -> None:
    """Another site cannot start linking its own provider account to a signed-in person."""
    sign_up(client, "ada@example.com")
    client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    refused = client.get(
        "/settings/sign-in-methods/corp/link",
        params={"csrf_token": "0" * 64},
        follow_redirects=False,
    )
    assert refused.status_code == 403
