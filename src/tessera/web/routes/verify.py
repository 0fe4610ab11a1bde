"""``POST /v1/keys/verify``: the verification API for the product's own services.

This is the hot path. :func:`answer` stays on the event loop while the service token
and the key are cached; only a cache miss goes to a worker thread for the database. The
endpoint is one plain ASGI handler, which the application reaches before the framework's
router (``web/fastpath.py``) and the OpenAPI description documents through :data:`route`.

A verification is named for the pipeline by the digest of its service token and its body
(:func:`ask_of`), which is all the verdict depends on: a verification the pipeline allowed
before is answered without its body being parsed again (``web/hotpaths.py``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tessera.authz import Allowed, Ask, Decision, Refused, RequestFacts, refusal_error
from tessera.clock import rfc3339
from tessera.deployment import Tessera
from tessera.edge.clientip import client_ip
from tessera.edge.facts import ask_digest
from tessera.errors import FieldError, Forbidden, Unauthorized, ValidationFailed, WouldBlock
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision
from tessera.text import UNCLEAN_MESSAGE
from tessera.web import resources
from tessera.web.fastpath import HandledRoute, RawHeaders
from tessera.web.inputs import unclean_field
from tessera.web.openapi import JSON_BODY, SERVICE_TOKEN, problems
from tessera.web.problems import invalid_body

PATH = "/v1/keys/verify"
# In valid JSON a NUL is spelled only as an escape, a surrogate as an escape or its raw bytes.
_ESCAPE_OR_SURROGATE = re.compile(rb"\\u|\xed")


class VerifyBody(BaseModel):
    # Not an ApiBody: its check of every string would cost more than the search in _parse.
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=512)
    required_scopes: list[str] = Field(default_factory=list, max_length=100)
    workspace_id: str | None = Field(default=None, max_length=64)
    require_workspace: bool = False
    client_ip: str | None = Field(default=None, max_length=64)
    # Uses to count at once: a caller that served some requests from its own cache reports
    # them with its next verification (all are counted, or none).
    uses: int = Field(default=1, ge=1, le=10_000)


class VerifyEndpoint:
    """The endpoint: a plain ASGI handler (``web/fastpath.py``)."""

    reads_body = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tessera: Tessera = scope["app"].state.tessera
        payload = await answer(tessera, scope, await _read_body(receive))
        await _JsonResponse(payload)(scope, receive, send)

    def ask(self, scope: Scope, body: bytes) -> bytes | None:
        return ask_of(scope, body)

    def render(self, allowed: Allowed) -> tuple[RawHeaders, bytes]:
        if allowed.quota is None:  # not for a key: every key has a quota
            payload = orjson.dumps(verdict_body(allowed))
        else:
            payload = _valid_verdict(allowed.principal, allowed.quota)
        return [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))], payload


def verify_key() -> None:
    """Say whether a key may do something; counts as a use of the key."""


route = HandledRoute(
    PATH,
    verify_key,
    handler=VerifyEndpoint(),
    methods=["POST"],
    tags=["verification"],
    response_model=resources.Verdict,
    responses=problems(*JSON_BODY, 401, 403, 503),
    openapi_extra={
        **SERVICE_TOKEN,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VerifyBody.model_json_schema()}},
        },
    },
)
JSON_HEADERS = [(b"content-type", b"application/json")]


async def answer(tessera: Tessera, scope: Scope, raw_body: bytes) -> bytes:
    """The JSON verdict for one request."""
    token = _bearer(scope)
    body = _parse(raw_body)
    try:  # from the caches, on the event loop
        _service(tessera, scope, token, allow_database=False)
    except WouldBlock:  # a cache missed: ask the database from a worker thread
        await run_in_threadpool(_service, tessera, scope, token, True)
    facts = RequestFacts(
        body.key,
        tuple(body.required_scopes),
        None,
        body.workspace_id,
        body.require_workspace,
        None,
        body.client_ip,
        keys_only=True,
        uses=body.uses,
    )
    asked = ask_of(scope, raw_body)
    ask = Ask(asked, token) if asked is not None and token is not None else None
    decision = await tessera.authorizer.decide_on_loop(facts, run_in_threadpool, ask=ask)
    if isinstance(decision, Allowed) and decision.quota is not None:
        return _valid_verdict(decision.principal, decision.quota)
    return orjson.dumps(verdict_body(decision))


def ask_of(scope: Scope, body: bytes) -> bytes | None:
    """The digest that names a verification for the pipeline (``Authorizer.decide_again``):
    of its ``Authorization`` header (the service token) and its body, which holds every fact
    of a verification (the key, scopes, workspace, address and uses). No raw key is kept."""
    return ask_digest(scope, b"verify", _AUTHORIZATION, b"authorization", body)


_AUTHORIZATION = frozenset((b"authorization",))
_VALID: dict[int, tuple[Principal, bytes]] = {}


def _valid_verdict(principal: Principal, quota: RateLimitDecision) -> bytes:
    """:func:`verdict_body` of a valid key as JSON: what the key is, rendered once per
    principal (a cached key answers with the same principal object each time), and its
    figures. A principal acting in a workspace is a new object: rendered whole each time."""
    found = _VALID.get(id(principal))
    if found is None or found[0] is not principal:
        whole = orjson.dumps(verdict_body(Allowed(principal, principal.workspace_id, None)))
        if len(_VALID) >= 4096:
            _VALID.clear()
        found = _VALID[id(principal)] = (principal, whole[:-1])
    figures = {
        "limit": quota.limit,
        "remaining": quota.remaining,
        "reset_seconds": quota.reset_seconds,
    }
    if not quota.allowed:
        figures["retry_after"] = quota.retry_after
    return found[1] + b',"rate_limit":' + orjson.dumps(figures) + b"}"


class _JsonResponse(Response):
    """A 200 JSON response sent as two raw ASGI messages, without header processing."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = (b"content-length", str(len(self.payload)).encode())
        await send(
            {"type": "http.response.start", "status": 200, "headers": [*JSON_HEADERS, length]}
        )
        await send({"type": "http.response.body", "body": self.payload})


def _service(tessera: Tessera, scope: Scope, token: str | None, allow_database: bool) -> None:
    """The caller must be one of the platform's services."""
    if token is None:
        raise Unauthorized(
            "The verification API needs a service token.", credential_presented=False
        )
    if not token.startswith("svc_"):
        raise Forbidden("The verification API accepts only service tokens.")
    trusted = tessera.config.trusted_proxies
    caller = tessera.authorizer.service(
        token, lambda: client_ip(HTTPConnection(scope), trusted), allow_database=allow_database
    )
    if isinstance(caller, Refused):
        raise refusal_error(caller)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _bearer(scope: Scope) -> str | None:
    """The service token of ``Authorization: Bearer``, read from the raw headers."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthorized("The Authorization header must be 'Bearer <service token>'.")
            return credential.strip()
    return None


def _parse(raw: bytes) -> VerifyBody:
    if _ESCAPE_OR_SURROGATE.search(raw):
        _refuse_unclean(raw)
    try:
        return VerifyBody.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise invalid_body(exc.errors()) from None


def _refuse_unclean(raw: bytes) -> None:
    """Refuse a body with a string holding a NUL or a lone surrogate, as ``ApiBody`` does.

    The standard library's parser keeps lone surrogates (the body's parser calls them invalid
    JSON), so both spellings of one, escaped and raw, are named as the same error."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return  # not JSON: the body's parser says so
    field = unclean_field(parsed)
    if field is not None:
        raise ValidationFailed(
            "The request is not valid.", errors=[FieldError(field, UNCLEAN_MESSAGE)]
        )


def verdict_body(decision: Decision) -> dict[str, Any]:
    """The verdict on a key (SPEC section 5): its code, and what the key is when it exists."""
    refused = decision if isinstance(decision, Refused) else None
    body: dict[str, Any] = {"valid": refused is None, "code": refused.code if refused else "valid"}
    found = decision.principal or (refused.key if refused else None)
    if found is not None:
        workspaces = found.workspace_ids
        body.update(
            key_id=found.id,
            organization_id=found.organization_id,
            environment=found.environment,
            scopes=sorted(found.scopes) if found.scopes is not None else None,
            workspace_ids=list(workspaces) if workspaces is not None else None,
            workspace_id=decision.principal.workspace_id if decision.principal else None,
            expires_at=rfc3339(found.expires_at),
        )
    if refused is not None and refused.missing_scopes:
        body["missing_scopes"] = list(refused.missing_scopes)
    quota = decision.quota
    if quota is not None:
        body["rate_limit"] = {
            "limit": quota.limit,
            "remaining": quota.remaining,
            "reset_seconds": quota.reset_seconds,
        }
        if not quota.allowed:
            body["rate_limit"]["retry_after"] = quota.retry_after
    return body
