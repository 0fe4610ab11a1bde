"""The error format of SPEC section 6, malformed bodies and oversized requests."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.helpers import assert_problem, service_token, sign_up

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "email": JSON_VALUES,
        "password": JSON_VALUES,
        "grant_type": JSON_VALUES,
        "refresh_token": JSON_VALUES,
        "organization_name": JSON_VALUES,
        "name": JSON_VALUES,
    },
)


def test_401_carries_www_authenticate_without_error_when_nothing_was_presented(
    client: TestClient,
) -> None:
    """No credential: the realm only, no invalid_token."""
    response = client.get("/v1/me")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_401_says_invalid_token_when_a_credential_was_presented(client: TestClient) -> None:
    """A presented but bad credential adds error="invalid_token"."""
    response = client.get("/v1/me", headers={"Authorization": "Bearer nonsense"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="invalid_token"'


def test_403_for_missing_scope_names_the_scope(client: TestClient, tessera: Any) -> None:
    """A member without workspaces:write gets 403, required_scopes and insufficient_scope."""
    account = sign_up(client)
    from tessera.storage.models import Membership

    with tessera.db.session() as session:
        session.get(Membership, (account.user_id, account.organization_id)).role = "member"
    response = client.post("/v1/workspaces", json={"name": "Staging"}, headers=account.headers)
    body = assert_problem(response, 403, "forbidden")
    assert body["required_scopes"] == ["workspaces:write"]
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="workspaces:write"'
    )


def test_404_for_unknown_route_and_unknown_id(client: TestClient) -> None:
    """Unknown paths and unknown ids are problems too."""
    account = sign_up(client)
    assert_problem(client.get("/v1/nowhere"), 404, "not_found")
    assert_problem(
        client.get("/v1/workspaces/ws_doesnotexist000000", headers=account.headers),
        404,
        "not_found",
    )


def test_404_for_a_workspace_of_another_organization(client: TestClient) -> None:
    """Another organization's ids answer 404, never 403."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    theirs = client.get("/v1/workspaces", headers=bob.headers).json()["data"][0]["id"]
    assert_problem(client.get(f"/v1/workspaces/{theirs}", headers=ada.headers), 404, "not_found")
    assert_problem(client.delete(f"/v1/workspaces/{theirs}", headers=ada.headers), 404, "not_found")


def test_404_for_an_organization_the_user_is_not_in(client: TestClient) -> None:
    """X-Organization-ID naming someone else's organization answers 404."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    headers = {**ada.headers, "X-Organization-ID": bob.organization_id}
    assert_problem(client.get("/v1/workspaces", headers=headers), 404, "not_found")


def test_405_is_a_problem(client: TestClient) -> None:
    """A wrong method is answered in the same format."""
    assert_problem(client.put("/v1/auth/token"), 405, "invalid_request")


def test_405_allows_every_method_of_the_path(client: TestClient) -> None:
    """Allow names all the methods the path answers, not those of the first route found."""
    response = client.request("OPTIONS", "/v1/api-keys/key_whatever0000000000")
    assert_problem(response, 405, "invalid_request")
    assert response.headers["Allow"] == "DELETE, GET, PATCH"


def test_409_email_taken(client: TestClient) -> None:
    """A second sign-up with one email is a conflict."""
    sign_up(client)
    response = client.post(
        "/v1/auth/signup",
        json={"email": "ada@example.com", "password": "another password", "organization_name": "X"},
    )
    assert_problem(response, 409, "email_taken")


def test_422_lists_the_fields(client: TestClient) -> None:
    """Validation errors are 422 validation_error with the fields named."""
    response = client.post("/v1/auth/signup", json={"email": "ada@example.com"})
    body = assert_problem(response, 422, "validation_error")
    assert {"password", "organization_name"} <= {e["field"] for e in body["errors"]}


def test_invalid_json_is_400(client: TestClient) -> None:
    """A body that is not JSON is a malformed request."""
    response = client.post(
        "/v1/auth/token", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x00garbage", b"[]", b"null", b'"text"', b"1e999999", b"{" * 5000]
)
def test_strange_bodies_are_4xx(client: TestClient, content: bytes) -> None:
    """Binary, non-object and deeply nested bodies are refused with a problem, never a 5xx."""
    response = client.post(
        "/v1/auth/token", content=content, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")


def test_body_over_one_mib_is_413(client: TestClient) -> None:
    """A declared body over 1 MiB is refused before it is read."""
    big = json.dumps({"email": "a" * (1024 * 1024), "password": "x"})
    response = client.post(
        "/v1/auth/token", content=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "invalid_request")


def test_streamed_body_over_one_mib_is_413(client: TestClient) -> None:
    """A chunked body with no Content-Length is cut off at 1 MiB too."""

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = client.post(
        "/v1/auth/token", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "invalid_request")


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    """Successes carry X-Request-ID; problems carry it in the body too."""
    ok = client.get("/healthz")
    assert ok.headers["X-Request-ID"].startswith("req_")
    problem = client.get("/v1/me")
    assert problem.json()["request_id"] == problem.headers["X-Request-ID"]


def _explode(*_args: object, **_kwargs: object) -> Any:
    raise RuntimeError("the disk is on fire")


def _logged_once(caplog: pytest.LogCaptureFixture, request_id: str) -> None:
    """One log record for the failure, with its traceback and the request id."""
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.levelno == logging.ERROR
    assert getattr(record, "request_id", None) == request_id
    assert record.exc_info is not None
    assert "the disk is on fire" in "".join(traceback.format_exception(*record.exc_info))


def test_an_unexpected_exception_is_a_logged_500_internal_error(
    client: TestClient,
    tessera: Tessera,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A route that raises answers problem+json 500 internal_error, logged with its traceback."""
    monkeypatch.setattr(tessera, "readiness", _explode)
    response = client.get("/readyz")
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "fire" not in response.text
    _logged_once(caplog, body["request_id"])


def test_an_unexpected_exception_on_the_verification_path_is_a_500_problem(
    client: TestClient,
    tessera: Tessera,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The verification fast path, outside the framework, answers and logs the same way."""
    token = service_token(tessera)
    monkeypatch.setattr(tessera.key_verifier, "identify", _explode)
    response = client.post(
        "/v1/keys/verify",
        json={"key": "tsr_live_" + "a" * 36},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = assert_problem(response, 500, "internal_error")
    _logged_once(caplog, body["request_id"])


@pytest.mark.parametrize("proxy", [{}, {"X-Tessera-Proxy": "nginx"}])
def test_an_unexpected_exception_on_the_forward_auth_path_is_a_500_problem(
    client: TestClient,
    tessera: Tessera,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    proxy: dict[str, str],
) -> None:
    """Forward auth's fast path answers and logs the same way, for nginx too (which answers
    a 500 with a 500 anyway)."""
    token = service_token(tessera)
    monkeypatch.setattr(tessera.routes, "route_scopes", _explode)
    headers = {
        "X-Tessera-Service-Token": token,
        "X-Original-Method": "GET",
        "X-Original-URI": "/v1/contacts",
        **proxy,
    }
    response = client.get("/v1/forward-auth", headers=headers)
    body = assert_problem(response, 500, "internal_error")
    assert "x-tessera-status" not in response.headers
    _logged_once(caplog, body["request_id"])


@pytest.mark.postgres
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=FIELDS)
def test_no_token_or_signup_body_gives_a_5xx(client: TestClient, body: dict[str, Any]) -> None:
    """Whatever JSON arrives at the public endpoints, the answer is never a server error."""
    for path in ("/v1/auth/token", "/v1/auth/signup", "/v1/auth/logout"):
        response = client.post(path, json=body)
        assert response.status_code < 500, (path, body, response.text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(credential=st.binary(min_size=1, max_size=300).filter(lambda b: not set(b) & {0, 10, 13}))
def test_no_bearer_credential_gives_a_5xx(client: TestClient, credential: bytes) -> None:
    """Arbitrary bearer and X-API-Key bytes are 401s (429 once the address is throttled)."""
    for name, value in (("Authorization", b"Bearer " + credential), ("X-API-Key", credential)):
        response = client.get("/v1/me", headers={name: value.strip() or b"x"})
        assert response.status_code in (401, 429), response.text
