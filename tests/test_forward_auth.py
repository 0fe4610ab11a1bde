"""GET /v1/forward-auth: the route table, identity headers and refusals (SPEC section 5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tessera.authz import Refused
from tessera.clock import ManualClock
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.forward_auth import RouteTable
from tessera.keys.rules import KeySpec
from tessera.ratelimit.limiter import MemoryRateLimiter
from tessera.ratelimit.redis import RedisRateLimiter
from tessera.ratelimit.resilient import ResilientRateLimiter
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.helpers import PASSWORD, assert_problem, create_key, service_token, sign_up
from tests.provisioning import new_key, new_owner
from tests.spellings import spelling

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


AUTHENTICATE = {**ROUTES, "forward_auth_default": "authenticate"}
# Each reaches GET /v1/contacts on an upstream that decodes, resolves dot segments, collapses
# slashes or ignores case, as many do.
SPELLINGS_OF_CONTACTS = [
    "/v1/%63ontacts",
    "/v1/contact%73",
    "/V1/contacts",
    "/v1/CONTACTS/42",
    "/v1//contacts",
    "//v1/contacts",
    "/v1/./contacts",
    "/v1/x/../contacts",
    "/v1/x/%2E%2E/contacts",
    "/public/../v1/contacts?next=/public/",
]
AMBIGUOUS = [
    "/v1%2Fcontacts",
    "/v1/contacts%5C",
    "/v1\\contacts",
    "/v1/contacts%00",
    "/public/..;/v1/contacts",
    "/v1/%2563ontacts",
    "/v1/%zzcontacts",
    "/v1/%C3%28",
]


@pytest.mark.parametrize("config_overrides", [AUTHENTICATE])
def test_every_spelling_of_a_routed_path_needs_the_routes_scope(
    client: TestClient, tessera: Tessera
) -> None:
    """Under "authenticate", no spelling of /v1/contacts lets a key without contacts:read by."""
    account = sign_up(client)
    key = {"X-API-Key": create_key(client, account, scopes=["contacts:write"])["key"]}
    for uri in SPELLINGS_OF_CONTACTS:
        for header in ("X-Original-URI", "X-Forwarded-Uri"):
            response = _ask_with(client, tessera, header, uri, **key)
            body = assert_problem(response, 403, "forbidden")
            assert body["required_scopes"] == ["contacts:read"], (header, uri)


def test_every_spelling_of_a_routed_path_is_allowed_by_the_routes_scope(
    client: TestClient, tessera: Tessera
) -> None:
    """Under "deny", a key with contacts:read passes every spelling of /v1/contacts."""
    account = sign_up(client)
    key = {"X-API-Key": create_key(client, account, scopes=["contacts:read"])["key"]}
    for uri in SPELLINGS_OF_CONTACTS:
        assert _ask(client, tessera, "GET", uri, **key).status_code == 200, uri


@pytest.mark.parametrize("config_overrides", [AUTHENTICATE])
def test_ambiguous_paths_are_refused_with_400(client: TestClient, tessera: Tessera) -> None:
    """An encoded '/', a backslash, a NUL, a ';', a double escape: 400 whatever the key holds."""
    account = sign_up(client)
    key = {"X-API-Key": create_key(client, account, scopes=["contacts:read"])["key"]}
    for uri in AMBIGUOUS:
        assert_problem(_ask(client, tessera, "GET", uri, **key), 400, "invalid_request")


@pytest.mark.parametrize("config_overrides", [AUTHENTICATE])
def test_nginx_gets_an_ambiguous_path_as_403_with_status_400(
    client: TestClient, tessera: Tessera
) -> None:
    """auth_request passes on no 400: nginx gets 403 with X-Tessera-Status: 400."""
    account = sign_up(client)
    nginx = {"X-Tessera-Proxy": "nginx", **account.headers}
    response = _ask(client, tessera, "GET", "/v1%2Fcontacts", **nginx)
    assert response.status_code == 403 and response.headers["X-Tessera-Status"] == "400"
    assert response.json()["status"] == 400 and response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "config_overrides",
    [
        {
            "forward_auth_default": "authenticate",
            "route": [{"path": "/V1/Contacts*", "scopes": ["contacts:read"]}],
        }
    ],
)
def test_route_patterns_are_compared_without_regard_to_case(
    client: TestClient, tessera: Tessera
) -> None:
    """A route written /V1/Contacts* covers /v1/contacts: its case is folded like the path's."""
    account = sign_up(client)
    key = {"X-API-Key": create_key(client, account, scopes=["contacts:write"])["key"]}
    assert_problem(_ask(client, tessera, "GET", "/v1/contacts", **key), 403, "forbidden")


def test_the_200_answer_is_its_fields_with_no_body(client: TestClient, tessera: Tessera) -> None:
    """The 200 names the caller in the fields SPEC lists and nothing else: no body (nginx and
    Traefik discard it), so no content type, and no secret anywhere."""
    account = sign_up(client)
    workspace = client.get("/v1/workspaces", headers=account.headers).json()["data"][0]["id"]
    key = create_key(client, account, scopes=["contacts:read"], workspace_ids=[workspace])
    for _ in range(2):  # decided on the whole path, then repeated (web/hotpaths.py)
        response = _ask(client, tessera, "GET", "/v1/contacts", **{"X-API-Key": key["key"]})
        assert response.status_code == 200
        assert response.content == b"" and response.headers["content-length"] == "0"
        assert "content-type" not in response.headers
        assert response.headers["X-Tessera-Principal"] == key["id"]
        assert response.headers["X-Tessera-Organization-Id"] == account.organization_id
        assert response.headers["X-Tessera-Scopes"] == "contacts:read"
        assert response.headers["X-Tessera-Workspace-Id"] == workspace
        assert response.headers["X-Tessera-Environment"] == "live"
        assert response.headers["X-RateLimit-Remaining"].isdigit()
        assert all(key["key"] not in value for value in response.headers.values())


def test_nginx_gets_a_503_as_403_with_status_503(database_url: str, clock: ManualClock) -> None:
    """With Redis down and on_redis_error = "refuse", nginx gets 403 and X-Tessera-Status: 503."""
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = ResilientRateLimiter(
        RedisRateLimiter(dead, clock), MemoryRateLimiter(clock), "refuse"
    )
    tessera = Tessera(make_config(database_url, **ROUTES), clock=clock, limiter=limiter)
    tessera.start(migrate=False)
    key, _ = new_key(tessera, new_owner(tessera), KeySpec(name="k", scopes=["contacts:read"]))
    with TestClient(create_app(tessera), base_url="http://127.0.0.1:8000") as client:
        headers = {"X-API-Key": key, "X-Tessera-Proxy": "nginx"}
        response = _ask(client, tessera, "GET", "/v1/contacts", **headers)
    tessera.close()
    assert response.status_code == 403 and response.headers["X-Tessera-Status"] == "503"
    assert response.json()["status"] == 503 and response.json()["code"] == "unavailable"


DECISION_ROUTES = load_config(
    environ={},
    overrides={
        "scope": [{"name": "contacts:read"}, {"name": "contacts:write"}],
        "route": [
            {"path": "/public/*", "scopes": []},
            {"methods": ["GET"], "path": "/v1/Contacts*", "scopes": ["contacts:read"]},
            {"path": "/v1/contacts/*/notes", "scopes": ["contacts:write"]},
            {"path": "/v1/Café/*", "scopes": ["contacts:write"]},
        ],
    },
)
ROUTED_SEGMENTS = st.lists(
    st.sampled_from(["v1", "contacts", "public", "notes", "café", "42", "a b"]),
    max_size=5,
)


def _decision(table: RouteTable, uri: str) -> tuple[str, ...] | str:
    found = table.route_scopes("GET", uri)
    return found.code if isinstance(found, Refused) else found


@given(ROUTED_SEGMENTS, st.data())
def test_every_spelling_of_a_path_gets_the_decision_of_its_plain_spelling(
    path_segments: list[str], data: st.DataObject
) -> None:
    """Any spelling of a path needs the scopes its plain spelling needs, or neither passes."""
    table = RouteTable(DECISION_ROUTES)
    plain = "/" + "/".join(quote(segment) for segment in path_segments)
    spelled = data.draw(spelling(path_segments))
    assert _decision(table, spelled) == _decision(table, plain)


def test_the_route_table_answers_from_memory_as_it_would_afresh() -> None:
    """Answers kept per (method, URI) are the answers a fresh table gives, refusals included,
    and stay so past the number kept."""
    from tessera.forward_auth import ANSWERS_KEPT

    table = RouteTable(DECISION_ROUTES)
    asked = [
        ("GET", "/v1/contacts/7"),
        ("POST", "/v1/contacts/7"),
        ("GET", "/v1/contacts/7/notes"),
        ("GET", "/v1/contacts%2F7"),
        ("GET", "/public/a"),
        ("GET", "/public/" + "a" * 300),
        ("GET", "/public/" + "a" * 300),
        *(("GET", f"/v1/contacts/{n}") for n in range(ANSWERS_KEPT + 10)),
        ("GET", "/v1/contacts/7"),
        ("POST", "/v1/contacts/7"),
    ]
    for method, uri in asked:
        assert _code(table.route_scopes(method, uri)) == _code(
            RouteTable(DECISION_ROUTES).route_scopes(method, uri)
        )


def _code(found: tuple[str, ...] | Refused) -> object:
    return found.code if isinstance(found, Refused) else found


def _ask_with(client: TestClient, tessera: Tessera, header: str, uri: str, **headers: str) -> Any:
    method = "X-Original-Method" if header == "X-Original-URI" else "X-Forwarded-Method"
    proxy = {"X-Tessera-Service-Token": service_token(tessera), method: "GET", header: uri}
    return client.get("/v1/forward-auth", headers={**proxy, **headers})


def _session_cookie(client: TestClient) -> str:
    sign_up(client)
    signed_in = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": "http://127.0.0.1:8000"},
        follow_redirects=False,
    )
    client.cookies.clear()
    return f"tsr_session={signed_in.cookies['tsr_session']}"


@pytest.mark.parametrize(
    ("method", "origin", "status"),
    [
        ("POST", "https://evil.example", 403),
        ("POST", "http://127.0.0.1:8000", 200),
        ("GET", "https://evil.example", 200),
    ],
)
def test_the_cookie_does_not_carry_a_proxied_write_from_another_origin(
    client: TestClient, tessera: Tessera, method: str, origin: str, status: int
) -> None:
    """The same-origin rule of /v1 applies to the original request's method and Origin."""
    cookie = _session_cookie(client)
    headers = {"Cookie": cookie, "Origin": origin}
    response = _ask(client, tessera, method, "/public/form", **headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["code"] == "forbidden"
