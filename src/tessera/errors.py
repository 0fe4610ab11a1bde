"""The one exception tree of Tessera.

Every error the core raises is a :class:`TesseraError` carrying a stable ``code`` from SPEC
section 6 and the data its answer needs (the scopes missing, the seconds to wait). Nothing here
speaks HTTP: the edge turns a code into a status, a title, headers and a body in one table
(:mod:`tessera.edge.problems`).
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

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidRequest(TesseraError):
    code = "invalid_request"


class WorkspaceRequired(TesseraError):
    code = "workspace_required"


class Unauthorized(TesseraError):
    """Missing, malformed, unknown, expired or revoked credential."""

    code = "unauthorized"

    def __init__(self, detail: str, *, credential_presented: bool = True) -> None:
        super().__init__(detail)
        self.credential_presented = credential_presented


class Forbidden(TesseraError):
    code = "forbidden"


class InsufficientScope(Forbidden):
    """A valid credential lacking one or more scopes."""

    def __init__(self, required_scopes: list[str], detail: str | None = None) -> None:
        self.required_scopes = sorted(required_scopes)
        super().__init__(
            detail or f"This credential lacks the scope {' '.join(self.required_scopes)}."
        )


class NotFound(TesseraError):
    code = "not_found"


class Conflict(TesseraError):
    code = "conflict"


class EmailTaken(Conflict):
    code = "email_taken"


class OrganizationExists(Conflict):
    """An organization of that name exists, and joining it was not asked for."""


class ValidationFailed(TesseraError):
    code = "validation_error"


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

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(TesseraError):
    code = "unavailable"


class InternalError(TesseraError):
    """What a caller is told of an exception nobody expected (logged with its traceback)."""

    code = "internal_error"


class WouldBlock(Exception):
    """An answer needs the database or Redis, and the caller asked for one without waiting.

    Raised by the hot paths' look-ups when told to answer from memory alone (they run on the
    event loop); the caller retries in a worker thread. Never reaches a client.
    """


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""
