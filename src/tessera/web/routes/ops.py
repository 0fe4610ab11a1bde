"""Health, readiness and the public signing keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tessera.web import resources
from tessera.web.deps import tessera_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=resources.Health)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=resources.Readiness,
    responses={503: {"model": resources.Readiness, "description": "Not ready."}},
)
def readyz(request: Request) -> JSONResponse:
    """The database (and Redis, when configured) answer."""
    checks = tessera_of(request).readiness()
    ready = all(checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/.well-known/jwks.json", response_model=resources.Jwks)
def jwks(request: Request) -> JSONResponse:
    """The published signing keys, read from the database: a new key is listed at once."""
    tessera = tessera_of(request)
    keys: dict[str, Any] = tessera.signing.jwks()
    max_age = tessera.config.tokens.jwks_max_age_seconds
    return JSONResponse(keys, headers={"Cache-Control": f"public, max-age={max_age}"})
