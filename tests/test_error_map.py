"""The one error map (SPEC section 6) and its renderings, code by code, with no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tessera import errors
from tessera.edge.problems import (
    ERRORS,
    oauth_response,
    problem_of,
    problem_response,
    proxy_response,
    status_problem,
)
from tessera.errors import FieldError, TesseraError

REALM = 'Bearer realm="tessera"'
# One error per code, with the status, title and headers SPEC section 6 gives it.
CASES: list[tuple[TesseraError, int, str, dict[str, str]]] = [
    (errors.InvalidRequest("Malformed."), 400, "Bad Request", {}),
    (errors.WorkspaceRequired("Name one."), 400, "Bad Request", {}),
    (
        errors.Unauthorized("Bad key."),
        401,
        "Unauthorized",
        {"WWW-Authenticate": REALM + ', error="invalid_token"'},
    ),
    (errors.Forbidden("No."), 403, "Forbidden", {}),
    (errors.NotFound("Nothing."), 404, "Not Found", {}),
    (errors.Conflict("Taken."), 409, "Conflict", {}),
    (errors.EmailTaken("Taken."), 409, "Conflict", {}),
    (errors.ValidationFailed("Not valid."), 422, "Unprocessable Content", {}),
    (errors.UnknownScope("No such scope."), 422, "Unprocessable Content", {}),
    (errors.UnknownWorkspace("No such workspace."), 422, "Unprocessable Content", {}),
    (errors.InvalidExpiry("In the past."), 422, "Unprocessable Content", {}),
    (errors.ImmutableField("Cannot change."), 422, "Unprocessable Content", {}),
    (
        errors.RateLimited("Slow down.", retry_after=7),
        429,
        "Too Many Requests",
        {"Retry-After": "7"},
    ),
    (errors.InternalError("Oops."), 500, "Internal Server Error", {}),
    (errors.ServiceUnavailable("Down."), 503, "Service Unavailable", {}),
]


def _every_error_class(base: type[TesseraError]) -> set[type[TesseraError]]:
    found = set()
    for child in base.__subclasses__():
        found |= {child, *_every_error_class(child)}
    return found


def _json(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def test_every_code_of_the_exception_tree_has_a_row() -> None:
    """No error class can reach the edge with a code the map does not know."""
    codes = {cls.code for cls in _every_error_class(TesseraError)}
    assert codes - set(ERRORS) == set()
    assert {error.code for error, *_ in CASES} == set(ERRORS)


@pytest.mark.parametrize(("error", "status", "title", "headers"), CASES)
def test_problem_json_per_code(
    error: TesseraError, status: int, title: str, headers: dict[str, str]
) -> None:
    """Each code answers its status, title, code, detail, request id and headers."""
    response = problem_response(problem_of(error), "req_1")
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert _json(response) == {
        "type": "about:blank",
        "title": title,
        "status": status,
        "code": error.code,
        "detail": error.detail,
        "request_id": "req_1",
    }
    for name, value in headers.items():
        assert response.headers[name] == value
    if not headers:
        assert "www-authenticate" not in response.headers
        assert "retry-after" not in response.headers


def test_a_missing_credential_is_challenged_without_invalid_token() -> None:
    """Nothing presented: the realm only (RFC 6750 section 3.1)."""
    problem = problem_of(errors.Unauthorized("Sign in.", credential_presented=False))
    assert dict(problem.headers) == {"WWW-Authenticate": REALM}


def test_a_missing_scope_is_named_in_the_body_and_the_challenge() -> None:
    """403 with required_scopes and an insufficient_scope challenge."""
    response = problem_response(problem_of(errors.InsufficientScope(["b:write", "a:read"])), None)
    assert response.status_code == 403
    assert _json(response)["required_scopes"] == ["a:read", "b:write"]
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="a:read b:write"'
    )


def test_field_errors_are_listed() -> None:
    """A validation error names its fields."""
    error = errors.ValidationFailed("Not valid.", errors=[FieldError("name", "too long")])
    body = _json(problem_response(problem_of(error), None))
    assert body["errors"] == [{"field": "name", "message": "too long"}]


def test_a_rate_limit_asks_to_wait_at_least_a_second() -> None:
    """Retry-After is never 0, even when the quota is back at once."""
    assert dict(problem_of(errors.RateLimited("Slow.", retry_after=0)).headers) == {
        "Retry-After": "1"
    }


@pytest.mark.parametrize(
    ("status", "code", "title"),
    [
        (404, "not_found", "Not Found"),
        (405, "invalid_request", "Method Not Allowed"),
        (413, "invalid_request", "Request Entity Too Large"),
        (500, "internal_error", "Internal Server Error"),
    ],
)
def test_a_status_the_http_layer_decided_keeps_it(status: int, code: str, title: str) -> None:
    """An unknown path, a wrong method, a body too large: their status, with its phrase."""
    problem = status_problem(status, headers=(("Allow", "GET"),))
    assert (problem.status, problem.code, problem.title) == (status, code, title)
    assert problem.detail == title + "."
    assert problem_response(problem, None).headers["Allow"] == "GET"


OAUTH: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request"),
    "workspace_required": (400, "invalid_request"),
    "unauthorized": (401, "invalid_client"),
    "forbidden": (400, "unauthorized_client"),
    "not_found": (400, "invalid_request"),
    "conflict": (400, "invalid_request"),
    "email_taken": (400, "invalid_request"),
    "validation_error": (400, "invalid_request"),
    "unknown_scope": (400, "invalid_scope"),
    "unknown_workspace": (400, "invalid_request"),
    "invalid_expiry": (400, "invalid_request"),
    "immutable_field": (400, "invalid_request"),
    "rate_limited": (429, "temporarily_unavailable"),
    "internal_error": (500, "server_error"),
    "unavailable": (503, "temporarily_unavailable"),
}


@pytest.mark.parametrize(("error", "status", "title", "headers"), CASES)
def test_rfc_6749_json_per_code(
    error: TesseraError, status: int, title: str, headers: dict[str, str]
) -> None:
    """On /oauth2/*: {"error", "error_description"}, 400 or 401 for the client, never cached."""
    response = oauth_response(problem_of(error))
    expected_status, expected_error = OAUTH[error.code]
    assert response.status_code == expected_status
    assert response.media_type == "application/json"
    assert _json(response) == {"error": expected_error, "error_description": error.detail}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    if expected_status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="tessera"'
    else:
        assert "www-authenticate" not in response.headers
    assert response.headers.get("Retry-After") == headers.get("Retry-After")


def test_rfc_6749_json_keeps_a_status_about_http_itself() -> None:
    """A wrong method on /oauth2/* stays 405 with its Allow header."""
    response = oauth_response(status_problem(405, headers=(("Allow", "POST"),)))
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert _json(response)["error"] == "invalid_request"


PASSED_BY_NGINX = {401, 403, 500}


@pytest.mark.parametrize(("error", "status", "title", "headers"), CASES)
def test_proxy_rendering_per_code(
    error: TesseraError, status: int, title: str, headers: dict[str, str]
) -> None:
    """For nginx: what auth_request cannot pass travels as 403 with X-Tessera-Status."""
    response = proxy_response(problem_of(error), "req_1")
    body = _json(response)
    assert body["status"] == status and body["code"] == error.code
    if status in PASSED_BY_NGINX:
        assert response.status_code == status
        assert "x-tessera-status" not in response.headers
    else:
        assert response.status_code == 403
        assert response.headers["X-Tessera-Status"] == str(status)
    for name, value in headers.items():
        assert response.headers[name] == value
