"""The authorization server in-process (SPEC section 4): the code flow with PKCE, consent,
tokens as credentials on the API, refresh, revocation, introspection, and every refusal."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.storage.db import engine_url
from tessera.web.app import create_app
from tests.helpers import PASSWORD, Account, assert_problem, service_token, sign_up
from tests.oauth_flow import (
    REDIRECT_URI,
    Pkce,
    answer_consent,
    authorize_url,
    client_auth,
    code_for,
    exchange,
    redirect_params,
    register_client,
    sign_in,
)

pytestmark = pytest.mark.postgres  # codes, families and grants race and expire in the database
ISSUER = "http://127.0.0.1:8000"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {
        "public_url": ISSUER,
        "route": [{"methods": ["GET"], "path": "/v1/contacts*", "scopes": ["contacts:read"]}],
    }


@pytest.fixture
def web(tessera: Tessera) -> Iterator[TestClient]:
    """The app, with redirects left for the test to look at, and a cookie jar."""
    with TestClient(create_app(tessera), base_url=ISSUER, follow_redirects=False) as client:
        yield client


@pytest.fixture
def owner(web: TestClient) -> Account:
    return sign_up(web)


@pytest.fixture
def registered(web: TestClient, owner: Account) -> dict[str, Any]:
    return register_client(web, owner.headers)


def tokens_for(
    web: TestClient, account: Account, registered: dict[str, Any], **params: str
) -> dict[str, Any]:
    sign_in(web, account.email)
    pkce = Pkce.new()
    code = code_for(web, registered["client_id"], pkce, **params)
    response = exchange(web, registered, code, pkce.verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oauth_error(response: Any, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


def member_of(web: TestClient, tessera: Tessera, owner: Account, email: str) -> Account:
    """A person with the member role in the owner's organization (and one of their own)."""
    person = sign_up(web, email, organization=f"Org of {email}")
    with tessera.account_store.transaction() as tx:  # as an accepted invitation would
        tx.add_member(owner.organization_id, person.user_id, "member", tessera.clock.now())
    return person


# ----------------------------------------------------------------------------------------------
# Discovery


def test_discovery_documents_advertise_exactly_what_is_supported(web: TestClient) -> None:
    """Both documents: code only, S256 only, iss on responses, no implicit or password."""
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = web.get(path).json()
        assert document["issuer"] == ISSUER
        assert document["response_types_supported"] == ["code"]
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["authorization_response_iss_parameter_supported"] is True
        assert "password" not in document["grant_types_supported"]
        assert "implicit" not in document["grant_types_supported"]
        assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
        assert {"openid", "offline_access", "contacts:read"} <= set(document["scopes_supported"])


@pytest.mark.parametrize(
    "config_overrides",
    [{"public_url": ISSUER, "tokens": {"signing_algorithm": "ES256"}}],
    ids=["es256-configured-rs256-key"],
)
def test_discovery_names_the_algorithm_that_signs_the_id_token(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The configured algorithm applies to the keys made from now on; until one is, the
    current key (RS256 here) signs, and relying parties that accept only the advertised
    algorithms must be told that one."""
    tokens = tokens_for(web, owner, registered)
    signed_with = jwt.get_unverified_header(tokens["id_token"])["alg"]
    jwks = web.get("/.well-known/jwks.json").json()["keys"]
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        advertised = web.get(path).json()["id_token_signing_alg_values_supported"]
        assert signed_with == "RS256" and advertised == sorted({k["alg"] for k in jwks})


# ----------------------------------------------------------------------------------------------
# The flow


def test_the_code_flow_issues_tokens_that_act_as_the_person(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Sign in, allow, exchange: an RFC 9068 access token with client_id set, a refresh token
    (offline_access) and an ID token; the access token reads the API as the person."""
    tokens = tokens_for(web, owner, registered)
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == registered["client_id"] and claims["sub"] == owner.user_id
    assert claims["org_id"] == owner.organization_id
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    me = web.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == owner.user_id


def test_the_id_token_carries_nonce_auth_time_at_hash_and_email_verified(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """The ID token verifies against the JWKS with the client as audience, and says what the
    person's email_verified really is."""
    tokens = tokens_for(web, owner, registered)
    keys = jwt.PyJWKSet.from_dict(web.get("/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(tokens["id_token"])["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(
        tokens["id_token"],
        key,
        algorithms=["RS256"],
        audience=registered["client_id"],
        issuer=ISSUER,
    )
    assert claims["sub"] == owner.user_id and claims["nonce"] == "n-456"
    assert isinstance(claims["auth_time"], int) and claims["at_hash"]
    assert claims["email"] == owner.email and claims["email_verified"] is False
    info = web.get("/oauth2/userinfo", headers=bearer(tokens["access_token"])).json()
    assert info == {
        "sub": owner.user_id,
        "name": "Ada",
        "email": owner.email,
        "email_verified": False,
    }


def test_the_redirect_back_carries_state_and_iss(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """RFC 9207: the code comes back with the request's state and this server's issuer."""
    sign_in(web, owner.email)
    params = redirect_params(answer_consent(web, authorize_url(registered["id"], Pkce.new())))
    assert params["state"] == "st-123" and params["iss"] == ISSUER and params["code"]


def test_without_offline_access_there_is_no_refresh_token(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Refresh tokens only come with offline_access."""
    tokens = tokens_for(web, owner, registered, scope="openid contacts:read")
    assert "refresh_token" not in tokens
    assert set(tokens["scope"].split()) == {"openid", "contacts:read"}


def test_a_person_not_signed_in_is_sent_to_sign_in_and_back(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The authorization request waits behind sign-in, and resumes after it."""
    url = authorize_url(registered["id"], Pkce.new())
    detour = web.get(url)
    assert detour.status_code == 303 and detour.headers["location"].startswith("/login?next=")
    signed = web.post(
        "/login",
        data={"email": owner.email, "password": "correct horse battery", "next": url},
    )
    assert signed.status_code == 303 and signed.headers["location"] == url


def test_deny_answers_access_denied_with_state_and_iss(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Deny returns to the client with error=access_denied."""
    sign_in(web, owner.email)
    answer = answer_consent(web, authorize_url(registered["id"], Pkce.new()), decision="deny")
    params = redirect_params(answer)
    assert params["error"] == "access_denied" and params["state"] == "st-123"
    assert params["iss"] == ISSUER and "code" not in params


def test_consent_is_remembered_per_client_and_scopes(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Once allowed, the same request gets its code without the page; prompt=consent asks."""
    sign_in(web, owner.email)
    answer_consent(web, authorize_url(registered["id"], Pkce.new()))
    again = web.get(authorize_url(registered["id"], Pkce.new()))
    assert "code" in redirect_params(again)
    asked = web.get(authorize_url(registered["id"], Pkce.new(), prompt="consent"))
    assert asked.status_code == 200 and "Allow" in asked.text


def _auth_time(web: TestClient, registered: dict[str, Any], code: str, verifier: str) -> int:
    """The auth_time of the ID token issued for ``code``."""
    tokens = exchange(web, registered, code, verifier).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    auth_time: int = claims["auth_time"]
    return auth_time


def test_prompt_login_asks_a_signed_in_person_to_sign_in_again(
    web: TestClient, clock: ManualClock, owner: Account, registered: dict[str, Any]
) -> None:
    """OIDC Core 3.1.2.1: prompt=login is not answered from the existing session, even with
    consent remembered; the sign-in page asks again and the request resumes with a new
    auth_time."""
    sign_in(web, owner.email)
    signed_at = int(clock.now().timestamp())
    answer_consent(web, authorize_url(registered["id"], Pkce.new()))  # consent remembered
    clock.advance(600)
    pkce = Pkce.new()
    detour = web.get(authorize_url(registered["id"], pkce, prompt="login"))
    assert detour.status_code == 303, detour.text
    login = detour.headers["location"]
    assert login.startswith("/login?")
    page = web.get(login)  # signed in, yet the form is shown
    assert page.status_code == 200 and 'action="/login"' in page.text, page.text
    after = re.search(r'name="next" value="([^"]+)"', page.text)
    assert after is not None
    resume = html.unescape(after.group(1))
    assert "prompt=login" not in resume and resume.startswith("/oauth2/authorize?")
    signed = web.post("/login", data={"email": owner.email, "password": PASSWORD, "next": resume})
    assert signed.status_code == 303 and signed.headers["location"] == resume
    params = redirect_params(web.get(resume))
    auth_time = _auth_time(web, registered, params["code"], pkce.verifier)
    assert auth_time == signed_at + 600


def test_max_age_asks_for_a_sign_in_once_the_session_is_older(
    web: TestClient, clock: ManualClock, owner: Account, registered: dict[str, Any]
) -> None:
    """max_age: a session signed in longer ago than it allows is sent to sign in again; a
    younger one is answered at once; a max_age that is no number is invalid_request."""
    sign_in(web, owner.email)
    answer_consent(web, authorize_url(registered["id"], Pkce.new()))
    clock.advance(600)
    young = web.get(authorize_url(registered["id"], Pkce.new(), max_age="3600"))
    assert "code" in redirect_params(young)
    old = web.get(authorize_url(registered["id"], Pkce.new(), max_age="300"))
    assert old.status_code == 303 and old.headers["location"].startswith("/login?"), old.text
    assert web.get(old.headers["location"]).status_code == 200
    wrong = redirect_params(web.get(authorize_url(registered["id"], Pkce.new(), max_age="soon")))
    assert wrong["error"] == "invalid_request" and wrong["state"] == "st-123"


def test_prompt_none_answers_login_required_or_consent_required_to_the_client(
    web: TestClient, clock: ManualClock, owner: Account, registered: dict[str, Any]
) -> None:
    """prompt=none never shows a page: no session is login_required, a session without
    consent is consent_required, a session too old for max_age is login_required; with a
    session and consent remembered the code comes back at once."""

    def silent(**params: str) -> dict[str, str]:
        return redirect_params(web.get(authorize_url(registered["id"], Pkce.new(), **params)))

    for scope in ("openid contacts:read", "contacts:read"):
        nobody = silent(prompt="none", scope=scope)
        assert nobody["error"] == "login_required" and nobody["iss"] == ISSUER, nobody
        assert nobody["state"] == "st-123"
    sign_in(web, owner.email)
    assert silent(prompt="none")["error"] == "consent_required"
    answer_consent(web, authorize_url(registered["id"], Pkce.new()))
    assert "code" in silent(prompt="none")
    clock.advance(600)
    assert silent(prompt="none", max_age="60")["error"] == "login_required"
    assert silent(prompt="none login")["error"] == "invalid_request"


def test_the_consent_page_names_the_app_its_owner_and_each_scope(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The page says who asks, who registered it, and what each scope allows."""
    sign_in(web, owner.email)
    page = web.get(authorize_url(registered["id"], Pkce.new())).text
    assert "Contacts Sync" in page and "Acme" in page
    assert "contacts:read" in page and "Read contact data" in page and "offline_access" in page


def test_a_person_in_several_organizations_chooses_one(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """The token acts in the organization chosen on the consent page, and nowhere else."""
    person = member_of(web, tessera, owner, "bea@example.com")
    sign_in(web, person.email)
    pkce = Pkce.new()
    page = web.get(authorize_url(registered["id"], pkce))
    assert page.text.count("<option") == 2
    answer = answer_consent(
        web, authorize_url(registered["id"], pkce), organization_id=owner.organization_id
    )
    tokens = exchange(web, registered, redirect_params(answer)["code"], pkce.verifier).json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["org_id"] == owner.organization_id
    elsewhere = web.get(
        "/v1/workspaces",
        headers={**bearer(tokens["access_token"]), "X-Organization-ID": person.organization_id},
    )
    assert elsewhere.status_code == 404


# ----------------------------------------------------------------------------------------------
# Refusals


def test_a_request_without_pkce_is_refused_back_to_the_client(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """No code_challenge: invalid_request, with state and iss, even for a confidential client."""
    sign_in(web, owner.email)
    params = redirect_params(web.get(authorize_url(registered["id"], None)))
    assert params["error"] == "invalid_request" and params["state"] == "st-123"
    assert params["iss"] == ISSUER


def test_plain_pkce_is_refused(web: TestClient, owner: Account, registered: dict[str, Any]) -> None:
    """code_challenge_method=plain: invalid_request."""
    sign_in(web, owner.email)
    pkce = Pkce.new()
    url = authorize_url(
        registered["id"], None, code_challenge=pkce.verifier, code_challenge_method="plain"
    )
    assert redirect_params(web.get(url))["error"] == "invalid_request"


def test_a_wrong_verifier_is_invalid_grant(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The code_verifier must hash to the challenge."""
    sign_in(web, owner.email)
    code = code_for(web, registered["id"], Pkce.new())
    oauth_error(exchange(web, registered, code, Pkce.new().verifier), 400, "invalid_grant")


def test_an_unregistered_redirect_uri_is_never_redirected_to(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The person sees an error page; nothing goes to the unregistered address."""
    sign_in(web, owner.email)
    url = authorize_url(registered["id"], Pkce.new(), redirect_uri="https://evil.example/cb")
    page = web.get(url)
    assert page.status_code == 400 and "location" not in page.headers
    assert "evil.example" not in page.text or "cannot be completed" in page.text
    unknown = web.get(authorize_url("cli_nonexistent0000000000", Pkce.new()))
    assert unknown.status_code == 400 and "location" not in unknown.headers


def test_a_loopback_redirect_may_vary_its_port_only(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """RFC 8252: http://127.0.0.1:<any port>/callback matches; another path does not."""
    sign_in(web, owner.email)
    other_port = authorize_url(
        registered["id"], Pkce.new(), redirect_uri="http://127.0.0.1:51234/callback"
    )
    assert web.get(other_port).status_code == 200
    other_path = authorize_url(
        registered["id"], Pkce.new(), redirect_uri="http://127.0.0.1:9999/other"
    )
    assert web.get(other_path).status_code == 400


def test_a_different_redirect_uri_at_the_token_endpoint_is_invalid_grant(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """The token request must name the redirect URI the code was issued for."""
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["id"], pkce)
    response = exchange(
        web, registered, code, pkce.verifier, redirect_uri="http://127.0.0.1:1/callback"
    )
    oauth_error(response, 400, "invalid_grant")


def test_a_replayed_code_is_refused_and_ends_the_tokens_issued_from_it(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """A code works once; presented again it is invalid_grant and the first tokens die."""
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["id"], pkce)
    first = exchange(web, registered, code, pkce.verifier).json()
    assert web.get("/v1/me", headers=bearer(first["access_token"])).status_code == 200
    oauth_error(exchange(web, registered, code, pkce.verifier), 400, "invalid_grant")
    assert_problem(web.get("/v1/me", headers=bearer(first["access_token"])), 401, "unauthorized")
    refreshed = web.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=client_auth(registered),
    )
    oauth_error(refreshed, 400, "invalid_grant")


def test_a_code_expires_after_60_seconds(
    web: TestClient, clock: ManualClock, owner: Account, registered: dict[str, Any]
) -> None:
    """61 seconds after it was issued a code is invalid_grant."""
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["id"], pkce)
    clock.advance(61)
    oauth_error(exchange(web, registered, code, pkce.verifier), 400, "invalid_grant")


def test_a_code_of_another_client_is_invalid_grant(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """A code is bound to the client it was issued to."""
    other = register_client(web, owner.headers, name="Other")
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["id"], pkce)
    oauth_error(exchange(web, other, code, pkce.verifier), 400, "invalid_grant")


def test_password_and_implicit_grants_are_refused(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """grant_type=password is unsupported_grant_type; response_type=token is refused."""
    password = web.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": owner.email, "password": "x" * 12},
        auth=client_auth(registered),
    )
    oauth_error(password, 400, "unsupported_grant_type")
    sign_in(web, owner.email)
    implicit = web.get(authorize_url(registered["id"], Pkce.new(), response_type="token"))
    params = redirect_params(implicit)
    assert params["error"] == "unsupported_response_type" and "access_token" not in params


def test_a_wrong_client_secret_is_invalid_client(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Client authentication failures answer 401 invalid_client."""
    response = web.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["client_id"], "cs_wrong"),
    )
    oauth_error(response, 401, "invalid_client")


THROTTLED = {
    "public_url": ISSUER,
    "rate_limit": {"failures_per_ip": 3, "failures_per_seconds": 300},
}


@pytest.mark.parametrize("config_overrides", [THROTTLED])
def test_failed_client_authentication_is_throttled_per_address_like_a_bad_key(
    web: TestClient, clock: ManualClock, owner: Account, registered: dict[str, Any]
) -> None:
    """A wrong client secret (token, revocation, introspection endpoints) counts against the
    address as a bad key does, in the same counter; past failures_per_ip it answers 429 with
    Retry-After in the RFC 6749 shape. A correct secret is still accepted; a request that
    presents no client credentials is no failure."""
    wrong = (registered["client_id"], "cs_wrong")
    for _ in range(5):  # nothing presented: refused, not counted
        oauth_error(web.post("/oauth2/introspect", data={"token": "x"}), 401, "invalid_client")
    bad_key = {"X-API-Key": "tsr_live_" + "A" * 36}
    assert web.get("/v1/workspaces", headers=bad_key).status_code == 401
    grant = {"grant_type": "client_credentials"}
    oauth_error(web.post("/oauth2/token", data=grant, auth=wrong), 401, "invalid_client")
    revoked = web.post("/oauth2/revoke", data={"token": "x"}, auth=wrong)
    oauth_error(revoked, 401, "invalid_client")
    for answer in (
        web.post("/oauth2/token", data=grant, auth=wrong),
        web.post("/oauth2/revoke", data={"token": "x"}, auth=wrong),
        web.post(
            "/oauth2/introspect", data={"token": "x"}, headers={"Authorization": "Bearer svc_x"}
        ),
        web.post(
            "/oauth2/token",
            data={**grant, "client_id": registered["client_id"], "client_secret": "cs_wrong"},
        ),
    ):
        assert answer.status_code == 429, answer.text
        assert int(answer.headers["Retry-After"]) > 0
        body = answer.json()
        assert body["error"] == "invalid_client" and body["error_description"], body
    assert web.get("/v1/workspaces", headers=bad_key).status_code == 429  # one counter
    accepted = web.post("/oauth2/token", data=grant, auth=client_auth(registered))
    assert accepted.status_code == 200, accepted.text
    clock.advance(300)
    oauth_error(web.post("/oauth2/token", data=grant, auth=wrong), 401, "invalid_client")


def test_a_member_asking_for_an_admin_only_scope_does_not_get_it(
    web: TestClient, tessera: Tessera, owner: Account
) -> None:
    """Granted scopes are what was asked, what the client may hold and what the person holds:
    a member's token never carries an admin-only scope, which the page says."""
    scopes = ["openid", "contacts:read", "admin:marketing"]
    registered = register_client(web, owner.headers, scopes=scopes)
    member = member_of(web, tessera, owner, "mia@example.com")
    sign_in(web, member.email)
    pkce = Pkce.new()
    url = authorize_url(registered["id"], pkce, scope="openid contacts:read admin:marketing")
    page = web.get(url)
    assert "admin:marketing" in page.text and "not granted in Acme" in page.text
    answer = answer_consent(web, url, organization_id=owner.organization_id)
    tokens = exchange(web, registered, redirect_params(answer)["code"], pkce.verifier).json()
    assert set(tokens["scope"].split()) == {"openid", "contacts:read"}


def test_consent_and_login_pages_forbid_framing(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """X-Frame-Options DENY and frame-ancestors 'none' on both pages and the error page."""
    pages = [web.get("/login")]
    sign_in(web, owner.email)
    pages.append(web.get(authorize_url(registered["id"], Pkce.new())))
    pages.append(web.get(authorize_url(registered["id"], Pkce.new(), redirect_uri="https://x.io/")))
    for page in pages:
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_the_login_return_path_is_no_open_redirect(web: TestClient, owner: Account) -> None:
    """next= on another origin sends the person to the dashboard, not away."""
    for target in ("https://evil.example/steal", "//evil.example/x", "/\\evil.example"):
        response = web.post(
            "/login",
            data={"email": owner.email, "password": "correct horse battery", "next": target},
        )
        assert response.status_code == 303
        assert "evil.example" not in response.headers["location"], target


def test_the_consent_form_needs_its_csrf_token(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """An Allow posted without the page's token is refused, and no code is issued."""
    sign_in(web, owner.email)
    url = authorize_url(registered["id"], Pkce.new())
    response = web.post(url, data={"decision": "allow", "organization_id": owner.organization_id})
    assert response.status_code == 403 and "location" not in response.headers


# ----------------------------------------------------------------------------------------------
# Tokens on the API


def test_an_oauth_token_is_limited_to_its_granted_scopes(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """An owner's token without api_keys:read cannot list keys, though the owner can."""
    tokens = tokens_for(web, owner, registered)
    listed = web.get("/v1/api-keys", headers=bearer(tokens["access_token"]))
    assert_problem(listed, 403, "forbidden")


def test_an_oauth_token_cannot_touch_the_persons_sessions_or_grants(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """An app acting for a person may not list or end their sessions, nor their grants."""
    tokens = tokens_for(web, owner, registered)
    headers = bearer(tokens["access_token"])
    assert_problem(web.get("/v1/sessions", headers=headers), 403, "forbidden")
    assert_problem(web.delete("/v1/sessions", headers=headers), 403, "forbidden")
    assert_problem(web.get("/v1/me/grants", headers=headers), 403, "forbidden")


def test_an_oauth_token_passes_forward_auth_with_its_client_id(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """Forward auth names the person and the OAuth client."""
    tokens = tokens_for(web, owner, registered)
    response = web.get(
        "/v1/forward-auth",
        headers={
            "X-Tessera-Service-Token": service_token(tessera),
            "X-Original-Method": "GET",
            "X-Original-URI": "/v1/contacts",
            **bearer(tokens["access_token"]),
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Tessera-Principal"] == owner.user_id
    assert response.headers["X-Tessera-Client-Id"] == registered["client_id"]
    assert response.headers["X-Tessera-Scopes"] == "contacts:read"


def test_narrowing_a_clients_scopes_narrows_its_tokens_at_once(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """A client's scopes changed by PATCH bound the tokens already issued, like a role change."""
    tokens = tokens_for(web, owner, registered)

    def contacts() -> int:
        answer = web.get(
            "/v1/forward-auth",
            headers={
                "X-Tessera-Service-Token": service_token(tessera),
                "X-Original-Method": "GET",
                "X-Original-URI": "/v1/contacts",
                **bearer(tokens["access_token"]),
            },
        )
        return answer.status_code

    assert contacts() == 200
    narrowed = web.patch(
        f"/v1/oauth-clients/{registered['id']}", json={"scopes": ["openid"]}, headers=owner.headers
    )
    assert narrowed.status_code == 200
    assert contacts() == 403


def test_refresh_rotates_and_reuse_ends_the_family(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """A refresh token works once; presented again it ends every token of its family."""
    tokens = tokens_for(web, owner, registered)

    def refresh(token: str) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": token}
        return web.post("/oauth2/token", data=data, auth=client_auth(registered))

    second = refresh(tokens["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert web.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 200
    oauth_error(refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert web.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 401
    oauth_error(refresh(rotated["refresh_token"]), 400, "invalid_grant")


def test_revoking_a_refresh_token_ends_the_access_tokens_of_its_grant(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """RFC 7009: 200, and the access token issued with it is refused at once."""
    tokens = tokens_for(web, owner, registered)
    revoked = web.post(
        "/oauth2/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=client_auth(registered),
    )
    assert revoked.status_code == 200
    assert web.get("/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    unknown = web.post("/oauth2/revoke", data={"token": "nonsense"}, auth=client_auth(registered))
    assert unknown.status_code == 200


def test_introspection_answers_only_for_the_callers_own_tokens(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """Client credentials see their own tokens; another client and anything inactive get only
    {"active": false}; a service token sees every token; no credentials is invalid_client."""
    tokens = tokens_for(web, owner, registered)
    other = register_client(web, owner.headers, name="Other")

    def introspect(token: str, **kwargs: Any) -> Any:
        return web.post("/oauth2/introspect", data={"token": token}, **kwargs)

    own = introspect(tokens["access_token"], auth=client_auth(registered)).json()
    assert own["active"] is True and own["client_id"] == registered["client_id"]
    assert own["sub"] == owner.user_id and "contacts:read" in own["scope"]
    assert introspect(tokens["access_token"], auth=client_auth(other)).json() == {"active": False}
    service = {"Authorization": f"Bearer {service_token(tessera)}"}
    assert introspect(tokens["refresh_token"], headers=service).json()["active"] is True
    oauth_error(introspect(tokens["access_token"]), 401, "invalid_client")
    web.post(
        "/oauth2/revoke", data={"token": tokens["refresh_token"]}, auth=client_auth(registered)
    )
    after = introspect(tokens["access_token"], auth=client_auth(registered)).json()
    assert after == {"active": False}


def test_client_credentials_act_as_the_client_within_its_registrant(
    web: TestClient, tessera: Tessera, owner: Account
) -> None:
    """The token's principal is the client (oauth_client, cli_…) in the owning organization,
    with the client's scopes, and at most what its registrant still holds."""
    registered = register_client(web, owner.headers, scopes=["contacts:read", "api_keys:read"])
    response = web.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=client_auth(registered)
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert "refresh_token" not in response.json()
    assert web.get("/v1/api-keys", headers=bearer(token)).status_code == 200
    forwarded = web.get(
        "/v1/forward-auth",
        headers={
            "X-Tessera-Service-Token": service_token(tessera),
            "X-Original-Method": "GET",
            "X-Original-URI": "/v1/contacts",
            **bearer(token),
        },
    )
    assert forwarded.headers["X-Tessera-Principal"] == registered["client_id"]
    assert forwarded.headers["X-Tessera-Organization-Id"] == owner.organization_id
    with tessera.account_store.transaction() as tx:  # the registrant is now a plain member
        tx.set_role(owner.organization_id, owner.user_id, "member")
    with tessera.account_store.transaction() as tx:
        tx.add_member(
            owner.organization_id,
            sign_up(web, "own@example.com").user_id,
            "owner",
            tessera.clock.now(),
        )
    assert web.get("/v1/api-keys", headers=bearer(token)).status_code == 200  # member: read
    with tessera.account_store.transaction() as tx:
        tx.remove_member(owner.organization_id, owner.user_id)
    assert web.get("/v1/api-keys", headers=bearer(token)).status_code == 403


def test_a_public_client_uses_pkce_alone_and_no_client_credentials(
    web: TestClient, owner: Account
) -> None:
    """type public: no secret; the code flow with PKCE alone; client_credentials refused."""
    registered = register_client(web, owner.headers, type="public")
    assert "client_secret" not in registered or registered["client_secret"] is None
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["id"], pkce)
    response = exchange(web, registered, code, pkce.verifier, client_id=registered["id"])
    assert response.status_code == 200, response.text
    refused = web.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "client_id": registered["id"]}
    )
    assert refused.status_code in (400, 401) and refused.json()["error"] in (
        "invalid_client",
        "unauthorized_client",
    )


# ----------------------------------------------------------------------------------------------
# Grants and clients


def test_grants_are_listed_and_revoking_one_stops_its_tokens_at_once(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """GET /v1/me/grants names the app; DELETE ends the grant and its tokens on the spot."""
    tokens = tokens_for(web, owner, registered)
    grants = web.get("/v1/me/grants", headers=owner.headers).json()["data"]
    assert [g["client"]["name"] for g in grants] == ["Contacts Sync"]
    assert grants[0]["organization"]["id"] == owner.organization_id
    assert "contacts:read" in grants[0]["scopes"] and grants[0]["last_used_at"]
    assert web.get("/v1/me", headers=bearer(tokens["access_token"])).status_code == 200
    ended = web.delete(f"/v1/me/grants/{grants[0]['id']}", headers=owner.headers)
    assert ended.status_code == 200
    assert web.get("/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert web.get("/v1/me/grants", headers=owner.headers).json()["data"] == []
    refused = web.get("/v1/me/grants", headers=bearer(tokens["access_token"]))
    assert refused.status_code == 401


def test_deleting_a_client_stops_its_tokens_at_once(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """DELETE /v1/oauth-clients/{id} revokes every grant; the client can no longer get tokens."""
    tokens = tokens_for(web, owner, registered)
    deleted = web.delete(f"/v1/oauth-clients/{registered['id']}", headers=owner.headers)
    assert deleted.status_code == 200
    assert web.get("/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert (
        web.get(f"/v1/oauth-clients/{registered['id']}", headers=owner.headers).status_code == 404
    )
    token = web.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=client_auth(registered)
    )
    oauth_error(token, 401, "invalid_client")


def test_clients_are_read_updated_and_their_secret_rotated(
    web: TestClient, tessera: Tessera, database_url: str, owner: Account, registered: dict[str, Any]
) -> None:
    """The resource of SPEC section 4; the secret shown once, stored as a digest, rotatable."""
    assert registered["object"] == "oauth_client" and registered["client_id"] == registered["id"]
    assert registered["id"].startswith("cli_") and registered["client_secret"].startswith("cs_")
    fetched = web.get(f"/v1/oauth-clients/{registered['id']}", headers=owner.headers).json()
    assert "client_secret" not in fetched and fetched["type"] == "confidential"
    listed = web.get("/v1/oauth-clients", headers=owner.headers).json()["data"]
    assert [c["id"] for c in listed] == [registered["id"]]
    patched = web.patch(
        f"/v1/oauth-clients/{registered['id']}", json={"name": "Renamed"}, headers=owner.headers
    )
    assert patched.json()["name"] == "Renamed"
    rotated = web.post(f"/v1/oauth-clients/{registered['id']}/rotate-secret", headers=owner.headers)
    assert rotated.status_code == 201
    new_secret = rotated.json()["client_secret"]
    old = web.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=client_auth(registered)
    )
    oauth_error(old, 401, "invalid_client")
    new = web.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(registered["id"], new_secret),
    )
    assert new.status_code == 200
    engine = create_engine(engine_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT secret_digest FROM oauth_clients")).scalar_one()
    engine.dispose()
    assert stored not in (registered["client_secret"], new_secret) and len(stored) == 64
    actions = [
        e["action"] for e in web.get("/v1/audit-events", headers=owner.headers).json()["data"]
    ]
    assert {"oauth_client.created", "oauth_client.updated", "oauth_client.secret_rotated"} <= set(
        actions
    )


def test_no_client_exceeds_its_registrant(
    web: TestClient, tessera: Tessera, owner: Account
) -> None:
    """A member cannot register a client with an admin-only scope or one they lack (403); an
    unknown scope is 422; a redirect URI must be https or loopback http."""
    member = member_of(web, tessera, owner, "max@example.com")
    headers = {**member.headers, "X-Organization-ID": owner.organization_id}
    with tessera.account_store.transaction() as tx:  # members may register clients here
        tx.set_role(owner.organization_id, member.user_id, "member")

    def register(**body: Any) -> Any:
        payload = {"name": "App", "redirect_uris": [REDIRECT_URI], "scopes": [], **body}
        return web.post("/v1/oauth-clients", json=payload, headers=owner.headers)

    assert_problem(
        web.post(
            "/v1/oauth-clients",
            json={"name": "App", "redirect_uris": [REDIRECT_URI], "scopes": ["contacts:read"]},
            headers=headers,
        ),
        403,
        "forbidden",
    )
    assert_problem(register(scopes=["nope:read"]), 422, "unknown_scope")
    assert_problem(register(redirect_uris=["http://example.com/cb"]), 422, "validation_error")
    assert_problem(register(redirect_uris=["https://example.com/cb#x"]), 422, "validation_error")


def test_the_grant_revocation_is_audited(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """oauth_grant.created at consent, oauth_grant.revoked at revocation."""
    tokens_for(web, owner, registered)
    grant = web.get("/v1/me/grants", headers=owner.headers).json()["data"][0]
    web.delete(f"/v1/me/grants/{grant['id']}", headers=owner.headers)
    events = web.get("/v1/audit-events", headers=owner.headers).json()["data"]
    actions = [e["action"] for e in events]
    assert "oauth_grant.created" in actions and "oauth_grant.revoked" in actions


def test_the_fastapi_integration_accepts_an_oauth_token_until_its_grant_ends(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """Local mode (another instance of the same database): the token acts as the person with
    its client, and the grant's revocation on this server stops it there at once."""
    from fastapi import Depends, FastAPI

    from tessera import Principal
    from tessera.integrations.fastapi import Authenticator

    auth = Authenticator.local(tessera.config, clock=tessera.clock)
    app = FastAPI()
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal: Principal = Depends(auth.requires("contacts:read"))) -> Any:
        return {"id": principal.id, "client_id": principal.client_id}

    tokens = tokens_for(web, owner, registered)
    with TestClient(app) as customer:
        answer = customer.get("/v1/contacts", headers=bearer(tokens["access_token"]))
        assert answer.json() == {"id": owner.user_id, "client_id": registered["client_id"]}
        grant = web.get("/v1/me/grants", headers=owner.headers).json()["data"][0]
        web.delete(f"/v1/me/grants/{grant['id']}", headers=owner.headers)
        refused = customer.get("/v1/contacts", headers=bearer(tokens["access_token"]))
        assert refused.status_code == 401


def test_the_verification_api_and_remote_mode_refuse_oauth_tokens_as_they_do_user_tokens(
    web: TestClient, tessera: Tessera, owner: Account, registered: dict[str, Any]
) -> None:
    """SPEC section 5: POST /v1/keys/verify judges API keys, and remote mode asks it, so a
    person's OAuth token gets there the answer a person's own token gets: no principal. In
    remote mode that is 401, the answer to a credential that is no key, never a 503."""
    import httpx
    from fastapi import Depends, FastAPI

    from tessera import Principal
    from tessera.integrations.fastapi import Authenticator

    oauth_token = tokens_for(web, owner, registered)["access_token"]
    raw_service_token = service_token(tessera)

    def verdict(token: str) -> tuple[int, Any]:
        answer = web.post(
            "/v1/keys/verify",
            json={"key": token},
            headers={"Authorization": f"Bearer {raw_service_token}"},
        )
        return answer.status_code, answer.json().get("valid")

    assert verdict(oauth_token) == verdict(owner.access_token)
    assert verdict(oauth_token)[1] is not True
    auth = Authenticator.remote(
        ISSUER, raw_service_token, transport=httpx.ASGITransport(app=web.app)
    )
    app = FastAPI()
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal: Principal = Depends(auth.requires("contacts:read"))) -> Any:
        return principal.id

    with TestClient(app) as customer:
        answers = [
            customer.get("/v1/contacts", headers=bearer(token))
            for token in (oauth_token, owner.access_token, "tsr_live_" + "A" * 36)
        ]
    bodies = [a.json() for a in answers]
    assert [a.status_code for a in answers] == [401, 401, 401], bodies
    assert all(a.headers["content-type"].startswith("application/problem+json") for a in answers)
    assert bodies[0] == bodies[1] == bodies[2] and bodies[0]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "config_overrides", [{"public_url": ISSUER, "rate_limit": {"requests": 2, "per_seconds": 60}}]
)
def test_oauth_tokens_are_rate_limited_per_grant(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Every token of one grant draws on one quota: a refreshed token finds it spent."""
    tokens = tokens_for(web, owner, registered)
    headers = bearer(tokens["access_token"])
    assert [web.get("/v1/me", headers=headers).status_code for _ in range(3)] == [200, 200, 429]
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    renewed = web.post("/oauth2/token", data=data, auth=client_auth(registered)).json()
    limited = web.get("/v1/me", headers=bearer(renewed["access_token"]))
    assert_problem(limited, 429, "rate_limited")
    assert web.get("/v1/me", headers=owner.headers).status_code == 200  # the person's own quota
