"""``POST /v1/keys/verify``: the verification API for the product's own services.

This is the hot path. The route is asynchronous and stays on the event loop while the service
token and the key are cached; only a cache miss goes to a worker thread for the database.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tessera.clock import rfc3339
from tessera.deployment import Tessera
from tessera.errors import FieldError, Forbidden, Unauthorized, ValidationFailed
from tessera.keys.verify import Verdict
from tessera.web.deps import presented_credential, tessera_of

router = APIRouter(tags=["verification"])


class VerifyBody(BaseModel):
    key: str = Field(max_length=512)
    required_scopes: list[str] = Field(default_factory=list, max_length=100)
    workspace_id: str | None = Field(default=None, max_length=64)
    require_workspace: bool = False
    client_ip: str | None = Field(default=None, max_length=64)


@router.post(
    "/v1/keys/verify",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VerifyBody.model_json_schema()}},
        }
    },
)
async def verify_key(request: Request) -> Response:
    """Say whether a key may do something; counts as a use of the key."""
    tessera = tessera_of(request)
    await _require_service_token(request, tessera)
    body = _parse(await request.body())
    verifier = tessera.key_verifier
    arguments: dict[str, Any] = {
        "required_scopes": tuple(body.required_scopes),
        "workspace_id": body.workspace_id,
        "require_workspace": body.require_workspace,
        "client_ip": body.client_ip,
    }
    if verifier.needs_database(body.key):
        verdict = await run_in_threadpool(lambda: verifier.verify(body.key, **arguments))
    else:
        verdict = verifier.verify(body.key, **arguments)
    return Response(json.dumps(verdict_body(verdict)), media_type="application/json")


async def _require_service_token(request: Request, tessera: Tessera) -> None:
    credential = presented_credential(request)
    if credential is None:
        raise Unauthorized(
            "The verification API needs a service token.", credential_presented=False
        )
    tokens = tessera.service_tokens
    if tokens.is_cached(credential):
        principal = tokens.authenticate(credential)
    else:
        principal = await run_in_threadpool(tessera.credentials.authenticate, credential)
    if principal.kind != "service":
        raise Forbidden("The verification API accepts only service tokens.")


def _parse(raw: bytes) -> VerifyBody:
    try:
        return VerifyBody.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()
        ]
        raise ValidationFailed("The request is not valid.", errors=errors) from None


def verdict_body(verdict: Verdict) -> dict[str, Any]:
    body: dict[str, Any] = {"valid": verdict.valid, "code": verdict.code}
    record, principal = verdict.record, verdict.principal
    if record is not None:
        body.update(
            key_id=record.id,
            organization_id=record.organization_id,
            environment=record.environment,
            scopes=sorted(principal.scopes) if principal else _scopes(record.scopes),
            workspace_ids=list(record.workspace_ids) if record.workspace_ids is not None else None,
            workspace_id=principal.workspace_id if principal else None,
            expires_at=rfc3339(record.expires_at),
        )
    if verdict.missing_scopes:
        body["missing_scopes"] = list(verdict.missing_scopes)
    decision = verdict.rate_limit
    if decision is not None:
        body["rate_limit"] = {
            "limit": decision.limit,
            "remaining": decision.remaining,
            "reset_seconds": decision.reset_seconds,
        }
        if not decision.allowed:
            body["rate_limit"]["retry_after"] = decision.retry_after
    return body


def _scopes(scopes: frozenset[str] | None) -> list[str] | None:
    return sorted(scopes) if scopes is not None else None
