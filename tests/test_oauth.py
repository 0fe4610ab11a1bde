"""The authorization server in-process (SPEC section 4): the code flow with PKCE, consent,
tokens as credentials on the API, refresh, revocation, introspection, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.web.app import create_app
from tests.helpers import Account, assert_problem, service_token, sign_up
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


@pytest.fixture
def web(tessera: Tessera) -> Iterator[TestClient]:
    """The app, with redirects left for the test to look at, and a cookie jar."""
    with TestClient(
        create_app(tessera), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as client:
        yield client


@pytest.fixture
def owner(web: TestClient) -> Account:
    return sign_up(web)


@pytest.fixture
def registered(web: TestClient, owner: Account) -> dict[str, Any]:
    return register_client(web, owner.headers)


def tokens_for(web: TestClient, owner: Account, registered: dict[str, Any], **params: str) -> Any:
    sign_in(web, owner.email)
    pkce = Pkce.new()
    code = code_for(web, registered["client_id"], pkce, **params)
    response = exchange(web, registered, code, pkce.verifier)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_code_flow_with_pkce_issues_tokens_that_act_as_the_person(
    web: TestClient, owner: Account, registered: dict[str, Any]
) -> None:
    """Sign in, allow, exchange: an RFC 9068 access token with client_id set, a refresh token
    (offline_access) and an ID token; the access token reads the API as the person."""
    tokens = tokens_for(web, owner, registered)
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == registered["client_id"] and claims["sub"] == owner.user_id
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    me = web.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == owner.user_id
