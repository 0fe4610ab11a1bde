"""GET /v1/forward-auth: the route table, identity headers and refusals (SPEC section 5)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.helpers import assert_problem, create_key, service_token, sign_up

ROUTES = {
    "route": [
        {"methods": ["GET"], "path": "/v1/contacts*", "scopes": ["contacts:read"]},
        {"methods": ["POST", "PATCH"], "path": "/v1/contacts*", "scopes": ["contacts:write"]},
        {"path": "/public/*", "scopes": []},
    ]
}


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return ROUTES


def _ask(client: TestClient, tessera: Tessera, method: str, uri: str, **headers: str) -> Any:
    proxy = {
        "X-Tessera-Service-Token": service_token(tessera),
        "X-Original-Method": method,
        "X-Original-URI": uri,
    }
    return client.get("/v1/forward-auth", headers={**proxy, **headers})


def test_key_with_the_routes_scope_gets_identity_headers(
    client: TestClient, tessera: Tessera
) -> None:
    """A key holding contacts:read passes GET /v1/contacts with who it is in headers."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"])
    response = _ask(client, tessera, "GET", "/v1/contacts?limit=5", **{"X-API-Key": key["key"]})
    assert response.status_code == 200
    assert response.headers["X-Tessera-Organization-Id"] == account.organization_id
    assert response.headers["X-Tessera-Principal"] == key["id"]
    assert response.headers["X-Tessera-Scopes"] == "contacts:read"
    assert response.headers["X-Tessera-Environment"] == "live"
    assert response.headers["X-RateLimit-Limit"] == "1000"


def test_missing_scope_for_the_method_is_403(client: TestClient, tessera: Tessera) -> None:
    """The same key is refused on POST, which needs contacts:write."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"])
    response = _ask(client, tessera, "POST", "/v1/contacts", Authorization=f"Bearer {key['key']}")
    body = assert_problem(response, 403, "forbidden")
    assert body["required_scopes"] == ["contacts:write"]


def test_no_credential_is_401_and_unmatched_route_is_403(
    client: TestClient, tessera: Tessera
) -> None:
    """Deny by default: no credential 401; a path no route names 403."""
    assert_problem(_ask(client, tessera, "GET", "/v1/contacts"), 401, "unauthorized")
    account = sign_up(client)
    response = _ask(client, tessera, "GET", "/v1/invoices", **account.headers)
    assert_problem(response, 403, "forbidden")


def test_route_without_scopes_needs_only_a_valid_credential(
    client: TestClient, tessera: Tessera
) -> None:
    """A route with no scopes lets any valid credential through, users included."""
    account = sign_up(client)
    response = _ask(client, tessera, "GET", "/public/status", **account.headers)
    assert response.status_code == 200
    assert response.headers["X-Tessera-Principal"] == account.user_id


def test_traefik_headers_work_too(client: TestClient, tessera: Tessera) -> None:
    """X-Forwarded-Method / X-Forwarded-Uri name the original request for Traefik."""
    account = sign_up(client)
    key = create_key(client, account, scopes=["contacts:read"])
    proxy = {
        "X-Tessera-Service-Token": service_token(tessera),
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": "/v1/contacts/123",
        "X-API-Key": key["key"],
    }
    assert client.get("/v1/forward-auth", headers=proxy).status_code == 200


def test_the_proxy_needs_a_service_token(client: TestClient) -> None:
    """Without X-Tessera-Service-Token nothing passes."""
    account = sign_up(client)
    headers = {**account.headers, "X-Original-Method": "GET", "X-Original-URI": "/v1/contacts"}
    assert_problem(client.get("/v1/forward-auth", headers=headers), 401, "unauthorized")


def test_workspace_header_is_resolved(client: TestClient, tessera: Tessera) -> None:
    """A key limited to one workspace names it in X-Tessera-Workspace-Id."""
    account = sign_up(client)
    workspace = client.get("/v1/workspaces", headers=account.headers).json()["data"][0]["id"]
    key = create_key(client, account, scopes=["contacts:read"], workspace_ids=[workspace])
    response = _ask(client, tessera, "GET", "/v1/contacts", **{"X-API-Key": key["key"]})
    assert response.headers["X-Tessera-Workspace-Id"] == workspace


def test_rate_limited_is_429_or_403_with_status_for_nginx(
    client: TestClient, tessera: Tessera
) -> None:
    """Past the key's limit: 429 with Retry-After; nginx gets 403 and X-Tessera-Status: 429."""
    account = sign_up(client)
    key = create_key(
        client, account, scopes=["contacts:read"], rate_limit={"requests": 1, "per_seconds": 60}
    )
    headers = {"X-API-Key": key["key"]}
    assert _ask(client, tessera, "GET", "/v1/contacts", **headers).status_code == 200
    refused = _ask(client, tessera, "GET", "/v1/contacts", **headers)
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "60"
    nginx = _ask(client, tessera, "GET", "/v1/contacts", **headers, **{"X-Tessera-Proxy": "nginx"})
    assert nginx.status_code == 403 and nginx.headers["X-Tessera-Status"] == "429"
    assert nginx.headers["Retry-After"] == "60"


@pytest.mark.parametrize("config_overrides", [{"forward_auth_default": "authenticate"}])
def test_default_authenticate_lets_unmatched_paths_through(
    client: TestClient, tessera: Tessera
) -> None:
    """With forward_auth_default = "authenticate", any valid credential passes unmatched paths."""
    account = sign_up(client)
    assert _ask(client, tessera, "GET", "/anything", **account.headers).status_code == 200
