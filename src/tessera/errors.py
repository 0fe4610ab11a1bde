"""The one exception tree of Tessera.

Every error the core raises is a :class:`TesseraError` carrying a stable ``code`` from SPEC
section 6. The core never speaks HTTP: the web layer maps ``status`` and ``headers`` to a
``application/problem+json`` response in one place (:mod:`tessera.web.problems`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class TesseraError(Exception):
    """Base of every error Tessera reports to a caller."""

    code: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]  # an instance may narrow its class's code
        self.errors = errors or []


class InvalidRequest(TesseraError):
    code = "invalid_request"


class WorkspaceRequired(TesseraError):
    code = "workspace_required"


class Unauthorized(TesseraError):
    """Missing, malformed, unknown, expired or revoked credential."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, credential_presented: bool = True) -> None:
        super().__init__(detail)
        self.credential_presented = credential_presented


class Forbidden(TesseraError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class InsufficientScope(Forbidden):
    """A valid credential lacking one or more scopes."""

    def __init__(self, required_scopes: list[str], detail: str | None = None) -> None:
        self.required_scopes = sorted(required_scopes)
        super().__init__(
            detail or f"This credential lacks the scope {' '.join(self.required_scopes)}."
        )


class NotFound(TesseraError):
    code = "not_found"
    status = 404
    title = "Not Found"


class Conflict(TesseraError):
    code = "conflict"
    status = 409
    title = "Conflict"


class EmailTaken(Conflict):
    code = "email_taken"


class OrganizationExists(Conflict):
    """An organization of that name exists, and joining it was not asked for."""


class ValidationFailed(TesseraError):
    code = "validation_error"
    status = 422
    title = "Unprocessable Content"


class UnknownScope(ValidationFailed):
    code = "unknown_scope"


class UnknownWorkspace(ValidationFailed):
    code = "unknown_workspace"


class InvalidExpiry(ValidationFailed):
    code = "invalid_expiry"


class ImmutableField(ValidationFailed):
    code = "immutable_field"


class RateLimited(TesseraError):
    code = "rate_limited"
    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(TesseraError):
    code = "unavailable"
    status = 503
    title = "Service Unavailable"


class WouldBlock(Exception):
    """An answer needs the database or Redis, and the caller asked for one without waiting.

    Raised by the hot paths' look-ups when told to answer from memory alone (they run on the
    event loop); the caller retries in a worker thread. Never reaches a client.
    """


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""
