"""What a request says about its caller, read the same way by every edge."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from tessera.errors import Unauthorized


def presented_credential(request: HTTPConnection) -> str | None:
    """The credential in ``X-API-Key`` or ``Authorization: Bearer``, if any."""
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        return api_key.strip()
    authorization = request.headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <credential>'.")
    return value.strip()
