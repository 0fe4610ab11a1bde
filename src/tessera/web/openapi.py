"""The OpenAPI description: the problem format, the errors each operation can answer with,
and the credentials each operation takes (SPEC sections 2, 5 and 6).

Routes declare their own answers (``responses=problems(...)``, ``openapi_extra=CREDENTIALS``);
this module holds the one table those declarations draw from, so that every operation
describes an error the same way.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from tessera.web.problems import PROBLEM_TYPE

COMPONENTS = "#/components/schemas/{model}"


class ProblemFieldError(BaseModel):
    field: str = Field(description="The offending field, dotted for nested ones.")
    message: str


class Problem(BaseModel):
    """An error (RFC 9457), the one format of every error outside ``/oauth2/*``."""

    type: Literal["about:blank"]
    title: str = Field(examples=["Forbidden"])
    status: int = Field(ge=400, le=599, examples=[403])
    code: str = Field(
        description="A stable code: invalid_request, workspace_required, unauthorized, "
        "forbidden, not_found, conflict, email_taken, validation_error, unknown_scope, "
        "unknown_workspace, invalid_expiry, immutable_field, rate_limited, internal_error "
        "or unavailable.",
        examples=["forbidden"],
    )
    detail: str = Field(examples=["This credential lacks the scope contacts:write."])
    request_id: str | None = Field(
        description="Also sent as X-Request-Id; quote it when reporting a problem.",
        examples=["req_Ab3dE9x1"],
    )
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="The fields at fault, on validation errors."
    )
    required_scopes: list[str] | None = Field(
        default=None, description="The scopes the credential lacks, on a 403 for scopes."
    )


def _header(description: str, *, required: bool, integer: bool = False) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1} if integer else {"type": "string"}
    return {"description": description, "required": required, "schema": schema}


RETRY_AFTER = _header("Seconds to wait before trying again.", required=True, integer=True)
# On the answers to a user, an API key or a session: the caller's quota (SPEC section 5).
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": _header("Requests allowed per window.", required=False, integer=True),
    "X-RateLimit-Remaining": {
        "description": "Requests left in this window.",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until the quota is fully restored.",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Policy": _header(
        'The same, as a structured field: "default";q=…;w=…', required=False
    ),
    "RateLimit": _header('The same, as a structured field: "default";r=…;t=…', required=False),
}

_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "Malformed request (`invalid_request`: a body that is not JSON, a bad cursor, missing "
        "fields), or no workspace named where one is needed (`workspace_required`).",
        {},
    ),
    401: (
        "Missing, malformed, unknown, expired or revoked credential (`unauthorized`).",
        {
            "WWW-Authenticate": _header(
                'Bearer realm="tessera", with error="invalid_token" when a credential was sent.',
                required=True,
            )
        },
    ),
    403: (
        "A valid credential that may not do this (`forbidden`): a scope it lacks (named in "
        "`required_scopes`), a workspace or address outside its restrictions, or a "
        "cross-origin request carrying the session cookie.",
        {
            "WWW-Authenticate": _header(
                'Bearer error="insufficient_scope", scope="…" when a scope is missing.',
                required=False,
            )
        },
    ),
    404: (
        "Unknown id, an id of another organization, or an X-Organization-ID the caller is not "
        "a member of (`not_found`).",
        {},
    ),
    409: ("The request conflicts with the current state (`conflict`, `email_taken`).", {}),
    413: ("The request body exceeds 1 MiB (`invalid_request`).", {}),
    422: (
        "The request is well-formed but not valid (`validation_error`, `unknown_scope`, "
        "`unknown_workspace`, `invalid_expiry`, `immutable_field`), with the fields in `errors`.",
        {},
    ),
    429: ("Too many requests (`rate_limited`).", {"Retry-After": RETRY_AFTER}),
    503: (
        "A store the answer depends on cannot be reached and the deployment is configured to "
        "refuse rather than guess (`unavailable`).",
        {},
    ),
}

# Every operation that takes a credential can be refused for it, and rate limited.
AUTHENTICATED = (401, 403, 404, 429, 503)
# Every operation that reads a JSON body.
JSON_BODY = (400, 413, 422)


def error_response(status: int) -> dict[str, Any]:
    """One error answer: its description, its headers and the problem schema."""
    when, headers = _ERRORS[status]
    response: dict[str, Any] = {
        "description": when,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": COMPONENTS.format(model="Problem")}}},
    }
    if headers:
        response["headers"] = headers
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: one problem answer for each status."""
    return {status: error_response(status) for status in sorted(set(statuses))}


def security_schemes(cookie_name: str) -> dict[str, dict[str, Any]]:
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, a user access token (JWT) or an OAuth access token.",
        },
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key.",
        },
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie_name,
            "description": "The dashboard's session cookie. A state-changing request carrying "
            "only the cookie must come from one of the deployment's origins.",
        },
        "serviceToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "svc_…",
            "description": "A service token (`tessera service-token create`).",
        },
        "proxyServiceToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Tessera-Service-Token",
            "description": "The reverse proxy's service token, for forward auth.",
        },
    }


# The ``openapi_extra`` of routes, by who may call them (alternatives, any one suffices).
CREDENTIALS: dict[str, Any] = {"security": [{"bearer": []}, {"apiKey": []}, {"sessionCookie": []}]}
USER_CREDENTIALS: dict[str, Any] = {"security": [{"bearer": []}, {"sessionCookie": []}]}
SERVICE_TOKEN: dict[str, Any] = {"security": [{"serviceToken": []}]}


def install(app: FastAPI, cookie_name: str) -> None:
    """Make ``app`` describe itself with the problem schema and the security schemes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _drop_framework_422(schema)
            _add_rate_limit_headers(schema)
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(_problem_schemas())
            components["securitySchemes"] = security_schemes(cookie_name)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _problem_schemas() -> dict[str, Any]:
    _, top = models_json_schema([(Problem, "serialization")], ref_template=COMPONENTS)
    schemas: dict[str, Any] = top["$defs"]
    return schemas


def _drop_framework_422(schema: dict[str, Any]) -> None:
    """FastAPI declares a 422 of its own format on every operation with parameters; an
    operation whose only parameters are ids in the path can never answer it, and the others
    declare the problem format's 422 themselves."""
    framework = {"$ref": COMPONENTS.format(model="HTTPValidationError")}
    for path in schema["paths"].values():
        for operation in path.values():
            content = operation["responses"].get("422", {}).get("content", {})
            if content.get("application/json", {}).get("schema") == framework:
                del operation["responses"]["422"]
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _add_rate_limit_headers(schema: dict[str, Any]) -> None:
    """Every success of an operation that needs a user, an API key or a session tells the
    caller its quota (logout, which needs no credential, charges no one)."""
    for path in schema["paths"].values():
        for operation in path.values():
            needs = operation.get("security", [])
            credentials = {name for need in needs for name in need}
            if {} in needs or not credentials & {"bearer", "apiKey", "sessionCookie"}:
                continue
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    response["headers"] = {**RATE_LIMIT_HEADERS, **response.get("headers", {})}
