"""The one error map (SPEC section 6): an error's code becomes a status, a title, headers and a
body, here and nowhere else.

:func:`problem_of` reads an error through the table; the renderings below write the resulting
:class:`Problem` for each kind of caller: ``application/problem+json`` for the API, RFC 6749
JSON for ``/oauth2/*``, and the proxy's form for nginx's ``auth_request``. The dashboard's HTML
page renders the same :class:`Problem` (``web/dashboard/pages.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from tessera.errors import FieldError, InsufficientScope, RateLimited, TesseraError

PROBLEM_TYPE = "application/problem+json"
REALM = 'Bearer realm="tessera"'
Headers = tuple[tuple[str, str], ...]


def _challenge(error: TesseraError) -> Headers:
    presented = getattr(error, "credential_presented", True)
    return (("WWW-Authenticate", REALM + (', error="invalid_token"' if presented else "")),)


def _scope_challenge(error: TesseraError) -> Headers:
    if not isinstance(error, InsufficientScope):
        return ()
    scope = " ".join(error.required_scopes)
    return (("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{scope}"'),)


def _retry_after(error: TesseraError) -> Headers:
    return (("Retry-After", str(error.retry_after)),) if isinstance(error, RateLimited) else ()


def _none(_error: TesseraError) -> Headers:
    return ()


@dataclass(frozen=True)
class Row:
    status: int
    title: str
    oauth_error: str  # the RFC 6749 (section 5.2) error code on /oauth2/*
    headers: Callable[[TesseraError], Headers] = _none


ERRORS: dict[str, Row] = {
    "invalid_request": Row(400, "Bad Request", "invalid_request"),
    "workspace_required": Row(400, "Bad Request", "invalid_request"),
    "unauthorized": Row(401, "Unauthorized", "invalid_client", _challenge),
    "forbidden": Row(403, "Forbidden", "unauthorized_client", _scope_challenge),
    "not_found": Row(404, "Not Found", "invalid_request"),
    "conflict": Row(409, "Conflict", "invalid_request"),
    "email_taken": Row(409, "Conflict", "invalid_request"),
    "validation_error": Row(422, "Unprocessable Content", "invalid_request"),
    "unknown_scope": Row(422, "Unprocessable Content", "invalid_scope"),
    "unknown_workspace": Row(422, "Unprocessable Content", "invalid_request"),
    "invalid_expiry": Row(422, "Unprocessable Content", "invalid_request"),
    "immutable_field": Row(422, "Unprocessable Content", "invalid_request"),
    "rate_limited": Row(429, "Too Many Requests", "temporarily_unavailable", _retry_after),
    "internal_error": Row(500, "Internal Server Error", "server_error"),
    "unavailable": Row(503, "Service Unavailable", "temporarily_unavailable"),
}
# The codes of statuses the HTTP layer decides itself (an unknown path, a method the path does
# not answer, a body over 1 MiB); any status not named here is a malformed request.
STATUS_CODES = {404: "not_found", 409: "conflict", 429: "rate_limited", 500: "internal_error"}


@dataclass(frozen=True)
class Problem:
    """An error as every rendering reads it (RFC 9457's members, and Tessera's)."""

    status: int
    title: str
    code: str
    detail: str
    headers: Headers = ()
    errors: tuple[FieldError, ...] = ()
    required_scopes: tuple[str, ...] | None = None


def problem_of(error: TesseraError) -> Problem:
    row = ERRORS[error.code]
    return Problem(
        status=row.status,
        title=row.title,
        code=error.code,
        detail=error.detail,
        headers=row.headers(error),
        errors=tuple(error.errors),
        required_scopes=(
            tuple(error.required_scopes) if isinstance(error, InsufficientScope) else None
        ),
    )


def status_of(error: TesseraError) -> int:
    return ERRORS[error.code].status


def status_problem(status: int, detail: str | None = None, headers: Headers = ()) -> Problem:
    """A problem for a status the HTTP layer decided, with that status's own phrase."""
    phrase = HTTPStatus(status).phrase
    code = STATUS_CODES.get(status, "invalid_request")
    return Problem(status, phrase, code, detail or phrase + ".", headers)


def problem_body(problem: Problem, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
        "request_id": request_id,
    }
    if problem.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in problem.errors]
    if problem.required_scopes is not None:
        body["required_scopes"] = list(problem.required_scopes)
    return body


def problem_response(problem: Problem, request_id: str | None) -> Response:
    """``application/problem+json``: every error outside ``/oauth2/*`` and the dashboard."""
    return Response(
        json.dumps(problem_body(problem, request_id)),
        status_code=problem.status,
        media_type=PROBLEM_TYPE,
        headers=dict(problem.headers),
    )


# nginx's auth_request passes on 2xx, 401 and 403 and turns any other answer into a 500.
PROXY_STATUSES = frozenset({401, 403, 500})


def proxy_response(problem: Problem, request_id: str | None) -> Response:
    """For a proxy that passes on only 401 and 403 (SPEC section 5): a refusal with another
    status (400, 404, 429, 503) travels as ``403`` with ``X-Tessera-Status``, which the example
    nginx configuration turns back into that status. A 500 stays a 500: the proxy answers one
    anyway."""
    response = problem_response(problem, request_id)
    if problem.status not in PROXY_STATUSES:
        response.status_code = 403
        response.headers["X-Tessera-Status"] = str(problem.status)
    return response


# RFC 6749 answers 400, or 401 for client authentication; statuses about HTTP itself (a wrong
# method, a body too large) or the server's state keep their own.
OAUTH_OWN_STATUSES = frozenset({401, 405, 413, 429, 500, 503})


def oauth_response(problem: Problem) -> Response:
    """RFC 6749 section 5.2: ``{"error", "error_description"}``, never cached."""
    row = ERRORS.get(problem.code)
    error = row.oauth_error if row is not None else "invalid_request"
    status = problem.status if problem.status in OAUTH_OWN_STATUSES else 400
    headers = {name: value for name, value in problem.headers if name != "WWW-Authenticate"}
    headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
    if status == 401:  # the client authenticates with HTTP Basic or in the body (RFC 6749 2.3)
        headers["WWW-Authenticate"] = 'Basic realm="tessera"'
    return Response(
        json.dumps({"error": error, "error_description": problem.detail}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
