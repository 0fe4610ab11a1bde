"""The one place where errors become HTTP: ``application/problem+json`` (SPEC section 6)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from tessera.errors import InsufficientScope, RateLimited, TesseraError, Unauthorized

PROBLEM_TYPE = "application/problem+json"
REALM = 'Bearer realm="tessera"'


def problem_body(error: TesseraError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
        "request_id": request_id,
    }
    if error.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    if isinstance(error, InsufficientScope):
        body["required_scopes"] = error.required_scopes
    return body


def problem_headers(error: TesseraError) -> dict[str, str]:
    if isinstance(error, Unauthorized):
        presented = ', error="invalid_token"' if error.credential_presented else ""
        return {"WWW-Authenticate": REALM + presented}
    if isinstance(error, InsufficientScope):
        scope = " ".join(error.required_scopes)
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    return {}


def problem_response(
    error: TesseraError, request_id: str | None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=json.dumps(problem_body(error, request_id)),
        status_code=error.status,
        media_type=PROBLEM_TYPE,
        headers={**problem_headers(error), **(headers or {})},
    )


def status_problem(status: int, request_id: str | None, detail: str | None = None) -> Response:
    """A problem for a status the framework decided (404 route, 405 method, 413 body), or
    the 500 of an unexpected exception."""
    phrase = HTTPStatus(status).phrase
    codes = {404: "not_found", 409: "conflict", 429: "rate_limited", 500: "internal_error"}
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "code": codes.get(status, "invalid_request"),
        "detail": detail or phrase + ".",
        "request_id": request_id,
    }
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_TYPE)
