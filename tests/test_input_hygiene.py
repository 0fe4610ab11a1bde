"""Input hygiene at the edge (SPEC section 2): NUL and lone surrogates, unknown fields, lengths.

The walks read the application's own route table, so a route added later is walked too.
"""

from __future__ import annotations

import json
import logging
import typing
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import text
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.errors import ValidationFailed
from tessera.logs import JsonFormatter
from tessera.principal import ClientInfo, Principal
from tessera.storage.accounts import SqlAccountStore
from tessera.text import UNCLEAN_MESSAGE
from tessera.web.app import create_api, create_app
from tessera.web.routes import verify
from tests.helpers import PASSWORD, Account, assert_problem, create_key, service_token, sign_up
from tests.oauth_flow import register_client

pytestmark = pytest.mark.postgres  # what reaches PostgreSQL: NUL, lengths

# Routes that read their JSON body themselves (the hot path), with the model they apply.
SELF_PARSED_BODIES: dict[str, type[BaseModel]] = {verify.PATH: verify.VerifyBody}
# Long enough for every minimum length, short enough for every maximum.
CLEAN = "abcdefghij-klmn"
UNCLEAN = {"nul": "abcdefghij\x00klmn", "surrogate": "abcdefghij\ud800klmn"}
# (string, how the JSON text spells it): a NUL only ever as an escape (raw, it is not JSON).
SPELLINGS = [("nul", "escaped"), ("surrogate", "escaped"), ("surrogate", "raw")]
PATH_SEGMENTS = {"nul": "key_%00", "surrogate": "key_%ED%A0%80"}


@dataclass
class World:
    """An owner with one key, and real ids for every path parameter."""

    account: Account
    ids: dict[str, str]
    service: dict[str, str]

    def headers(self, path: str) -> dict[str, str]:
        return self.service if path == verify.PATH else self.account.headers

    def url(self, route: RouteContext, **ids: str) -> str:
        return str(route.path).format(**{**self.ids, **ids})


@pytest.fixture
def world(client: TestClient, tessera: Tessera) -> World:
    account = sign_up(client)
    key = create_key(client, account)
    workspace = client.get("/v1/workspaces", headers=account.headers).json()["data"][0]
    oauth_client = register_client(client, account.headers)
    ids = {
        "key_id": key["id"],
        "client_id": oauth_client["id"],
        "grant_id": "grt_0123456789abcdefghij",
        "workspace_id": workspace["id"],
        "user_id": account.user_id,
        "session_id": "ses_0123456789abcdefghij",
    }
    service = {"Authorization": f"Bearer {service_token(tessera)}"}
    return World(account, ids, service)


def v1_routes(tessera: Tessera) -> list[tuple[str, RouteContext]]:
    """Every (method, route) of ``/v1`` in the application's route table."""
    routes = iter_route_contexts(create_api(tessera).routes)
    return [
        (method, route)
        for route in routes
        if isinstance(route.original_route, APIRoute) and route.path.startswith("/v1/")
        for method in sorted(route.methods or ())
    ]


def body_model(method: str, route: RouteContext) -> type[BaseModel] | None:
    if route.path in SELF_PARSED_BODIES:
        return SELF_PARSED_BODIES[route.path]
    if route.body_field is None:
        return None
    declared = route.body_field.field_info.annotation
    for candidate in (declared, *typing.get_args(declared)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    raise AssertionError(f"{method} {route.path}: a body that is not a model")


def body_routes(tessera: Tessera) -> list[tuple[str, RouteContext, type[BaseModel]]]:
    found = []
    for method, route in v1_routes(tessera):
        model = body_model(method, route)
        if model is not None:
            found.append((method, route, model))
        else:
            assert method in ("GET", "DELETE"), f"{method} {route.path} declares no body model"
    return found


def text_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Each field that takes a string (or a list of them), with the unclean value to send."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        for shape in (lambda s: s, lambda s: [s]):
            try:
                TypeAdapter(field.annotation).validate_python(shape(CLEAN))
            except ValidationError:
                continue
            fields[name] = shape
            break
    return fields


def encoded(body: dict[str, Any], spelling: str) -> bytes:
    if spelling == "escaped":
        return json.dumps(body).encode()
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def send(client: TestClient, method: str, url: str, content: bytes, headers: Any) -> Any:
    headers = {**headers, "Content-Type": "application/json"}
    return client.request(method, url, content=content, headers=headers)


def refused_fields(response: Any) -> dict[str, str]:
    body = assert_problem(response, 422, "validation_error")
    return {e["field"].split(".")[0]: e["message"] for e in body["errors"]}


@pytest.mark.parametrize("kind", sorted(PATH_SEGMENTS))
def test_every_v1_route_answers_404_for_an_id_with_nul_or_a_lone_surrogate(
    client: TestClient, tessera: Tessera, world: World, kind: str
) -> None:
    """A NUL (%00) or a surrogate (%ED%A0%80) in any id of the path is 404, never a 5xx."""
    walked = 0
    for method, route in v1_routes(tessera):
        names = [p.alias for p in route.dependant.path_params]
        if not names:
            continue
        url = world.url(route, **{n: PATH_SEGMENTS[kind] for n in names})
        response = client.request(method, url, headers=world.headers(route.path))
        assert_problem(response, 404, "not_found")
        walked += 1
    assert walked >= 11


@pytest.mark.parametrize("kind", sorted(PATH_SEGMENTS))
def test_every_v1_query_parameter_refuses_nul_and_lone_surrogates(
    client: TestClient, tessera: Tessera, world: World, kind: str
) -> None:
    """?name=a%00b or ?name=a%ED%A0%80b is 422 naming query.<name>, on every route."""
    escaped = {"nul": "a%00b", "surrogate": "a%ED%A0%80b"}[kind]
    walked = 0
    for method, route in v1_routes(tessera):
        for parameter in route.dependant.query_params:
            url = f"{world.url(route)}?{parameter.alias}={escaped}"
            response = client.request(method, url, headers=world.headers(route.path))
            body = assert_problem(response, 422, "validation_error")
            assert body["errors"] == [
                {"field": f"query.{parameter.alias}", "message": UNCLEAN_MESSAGE}
            ], (method, url)
            walked += 1
    assert walked >= 7


def test_a_query_parameter_whose_name_holds_a_nul_is_refused(
    client: TestClient, world: World
) -> None:
    """A NUL in a parameter's name is refused too (field ``query``)."""
    response = client.get("/v1/audit-events?a%00b=1", headers=world.account.headers)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "query"


@pytest.mark.parametrize("header", ["X-Workspace-ID", "X-Organization-ID", "X-API-Key"])
def test_a_nul_in_a_request_header_is_400_never_a_query(
    client: TestClient, world: World, header: str
) -> None:
    """A NUL in any header (which HTTP forbids) is refused before it reaches the database."""
    headers = {**world.account.headers, header: "ws_a\x00b"}
    assert_problem(client.get("/v1/workspaces", headers=headers), 400, "invalid_request")


def test_an_escaped_percent_sign_is_not_a_nul(client: TestClient, world: World) -> None:
    """%2500 is the text "%00", not a NUL: it is searched for like any other action."""
    response = client.get("/v1/audit-events?action=%2500", headers=world.account.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("kind", "spelling"), SPELLINGS)
def test_every_v1_json_body_refuses_nul_and_lone_surrogates_in_each_string_field(
    client: TestClient, tessera: Tessera, world: World, kind: str, spelling: str
) -> None:
    """Each string field of each /v1 body, escaped or raw, is 422 naming the field."""
    walked = 0
    for method, route, model in body_routes(tessera):
        for name, shape in text_fields(model).items():
            content = encoded({name: shape(UNCLEAN[kind])}, spelling)
            response = send(client, method, world.url(route), content, world.headers(route.path))
            fields = refused_fields(response)
            assert fields.get(name) == UNCLEAN_MESSAGE, (method, route.path, name, fields)
            walked += 1
    assert walked >= 28


def test_every_v1_json_body_refuses_an_unknown_field_by_name(
    client: TestClient, tessera: Tessera, world: World
) -> None:
    """A field no /v1 body declares is 422 validation_error naming it, on every body route."""
    walked = 0
    for method, route, _model in body_routes(tessera):
        content = json.dumps({"no_such_field": 1}).encode()
        response = send(client, method, world.url(route), content, world.headers(route.path))
        assert "no_such_field" in refused_fields(response), (method, route.path)
        walked += 1
    assert walked >= 11


def test_a_misspelt_scopes_field_creates_no_key(client: TestClient, world: World) -> None:
    """{"scope": [...]} is refused, not a key that inherits all of its owner's rights."""
    headers = world.account.headers
    before = client.get("/v1/api-keys", headers=headers).json()["data"]
    response = client.post(
        "/v1/api-keys", json={"name": "typo", "scope": ["workspaces:read"]}, headers=headers
    )
    assert refused_fields(response) == {"scope": "Extra inputs are not permitted"}
    assert client.get("/v1/api-keys", headers=headers).json()["data"] == before


@pytest.mark.parametrize(
    "content", [b'{"name": "a\\ud800b"}', b'{"name": "a\xed\xa0\x80b"}'], ids=["escaped", "raw"]
)
def test_a_lone_surrogate_in_a_patched_key_name_is_422(
    client: TestClient, world: World, content: bytes
) -> None:
    """PATCH name with a lone surrogate is refused and the name stays as it was."""
    url = f"/v1/api-keys/{world.ids['key_id']}"
    response = send(client, "PATCH", url, content, world.account.headers)
    assert refused_fields(response) == {"name": UNCLEAN_MESSAGE}
    assert client.get(url, headers=world.account.headers).json()["name"] == "Test key"


@pytest.mark.parametrize(
    "content",
    [
        b'{"key": "k", "workspace_id": "ws_\\u0000"}',
        b'{"key": "k", "required_scopes": ["a\\udfff"]}',
        b'{"key": "k", "client_ip": "a\xed\xb0\x80"}',
    ],
    ids=["nul", "escaped-surrogate", "raw-surrogate"],
)
def test_verification_refuses_nul_and_lone_surrogates(
    client: TestClient, world: World, content: bytes
) -> None:
    """The hot path's own JSON parsing refuses them like every other body."""
    response = send(client, "POST", verify.PATH, content, world.service)
    assert UNCLEAN_MESSAGE in refused_fields(response).values()


def test_verification_takes_every_documented_field(client: TestClient, world: World) -> None:
    """The fields of SPEC section 5 are all known to the verification API."""
    key = create_key(client, world.account)["key"]
    body = {
        "key": key,
        "required_scopes": [],
        "workspace_id": world.ids["workspace_id"],
        "client_ip": "203.0.113.7",
        "require_workspace": False,
        "uses": 1,
    }
    response = client.post(verify.PATH, json=body, headers=world.service)
    assert response.status_code == 200 and response.json()["code"] == "valid", response.text


def test_a_text_that_merely_looks_like_an_escape_is_verified(
    client: TestClient, world: World
) -> None:
    """A body with an escaped backslash before "u" is searched, found clean, and answered."""
    response = client.post(verify.PATH, json={"key": "not\\u0000a key"}, headers=world.service)
    assert response.status_code == 200 and response.json()["code"] == "malformed"


# SPEC section 2's limits: (path, field, longest value accepted, one character more).
EMAIL_AT_LIMIT = "e" * 64 + "@" + "d" * 185 + ".com"
EMAIL_TOO_LONG = "e" * 64 + "@" + "d" * 186 + ".com"
LIMITS = [
    ("/v1/api-keys", "name", "k" * 100, "k" * 101),
    ("/v1/workspaces", "name", "w" * 100, "w" * 101),
    ("/v1/auth/signup", "organization_name", "o" * 100, "o" * 101),
    ("/v1/auth/signup", "name", "p" * 200, "p" * 201),
    ("/v1/auth/signup", "email", EMAIL_AT_LIMIT, EMAIL_TOO_LONG),
    ("/v1/auth/signup", "password", "s" * 1024, "s" * 1025),
]
SIGNUP = {"email": "new@example.com", "password": PASSWORD, "organization_name": "New"}


@pytest.mark.parametrize(("path", "field", "longest", "too_long"), LIMITS)
def test_text_fields_take_up_to_their_limit_and_no_more(
    client: TestClient, world: World, path: str, field: str, longest: str, too_long: str
) -> None:
    """The longest value SPEC section 2 allows is accepted; one character more is 422."""
    assert len(too_long) == len(longest) + 1
    body = SIGNUP if path == "/v1/auth/signup" else {}
    headers = world.account.headers
    refused = client.post(path, json={**body, field: too_long}, headers=headers)
    assert field in refused_fields(refused)
    accepted = client.post(path, json={**body, field: longest}, headers=headers)
    assert accepted.status_code == 201, accepted.text


@pytest.mark.parametrize("path", ["/v1/api-keys", "/v1/workspaces"])
def test_a_blank_name_is_refused(client: TestClient, world: World, path: str) -> None:
    """Names have at least one character besides blanks."""
    response = client.post(path, json={"name": "   "}, headers=world.account.headers)
    assert "name" in refused_fields(response)


def test_a_password_under_ten_characters_is_refused_at_the_edge(client: TestClient) -> None:
    """Sign-up with a 9-character password is 422 naming the password."""
    body = {"email": "q@example.com", "password": "p" * 9, "organization_name": "Q"}
    assert "password" in refused_fields(client.post("/v1/auth/signup", json=body))


def test_renames_keep_to_the_limits(client: TestClient, world: World) -> None:
    """PATCH of a key or a workspace takes 100 characters and refuses 101."""
    headers = world.account.headers
    for url in (
        f"/v1/api-keys/{world.ids['key_id']}",
        f"/v1/workspaces/{world.ids['workspace_id']}",
    ):
        assert "name" in refused_fields(
            client.patch(url, json={"name": "r" * 101}, headers=headers)
        )
        renamed = client.patch(url, json={"name": "r" * 100}, headers=headers)
        assert renamed.status_code == 200 and renamed.json()["name"] == "r" * 100


def test_the_services_refuse_what_the_edge_refuses(tessera: Tessera) -> None:
    """The dashboard and the CLI call the services directly: the same limits hold there."""
    accounts = tessera.accounts
    member = Principal("user", "usr_0123456789abcdef", "org_0123456789abcdef", role="owner")
    person = {"email": "n@example.com", "password": PASSWORD, "name": ""}
    cases = [
        lambda: accounts.create_user(**person, organization_name="o" * 101),
        lambda: accounts.create_user(**person, organization_name="Acme\x00"),
        lambda: tessera.workspaces.create(member, "w" * 101, ClientInfo()),
        lambda: accounts.create_user(**{**person, "email": EMAIL_TOO_LONG}, organization_name="A"),
        lambda: accounts.create_user(**{**person, "name": "p" * 201}, organization_name="A"),
        lambda: accounts.create_user(
            **{**person, "password": "\udc80" * 10}, organization_name="A"
        ),
    ]
    for case in cases:
        with pytest.raises(ValidationFailed):
            case()
    assert accounts.user_by_email("ada\x00@example.com") is None


def test_a_database_error_is_logged_without_its_parameters(
    tessera: Tessera, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed statement's log line names the statement, never the values it was given."""
    canary = "canary-5f3e0b1d@example.com"

    def failing_lookup(_store: SqlAccountStore, email: str) -> None:
        with tessera.db.read() as session:
            statement = text("SELECT id FROM no_such_table WHERE email = :email")
            session.execute(statement, {"email": email})

    monkeypatch.setattr(SqlAccountStore, "user_by_email", failing_lookup)
    client = TestClient(create_app(tessera), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = client.post("/v1/auth/token", json={"email": canary, "password": PASSWORD})
    assert response.status_code == 500
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any("no_such_table" in line for line in lines), lines
    assert not any(canary in line for line in lines)
