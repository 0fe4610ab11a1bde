"""What the pipeline reads (:class:`RequestFacts`) and what it answers (:class:`Allowed` or
:class:`Refused`): frozen data, and the one table from a refusal to the error the edge answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from tessera.errors import (
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    NotFound,
    RateLimited,
    TesseraError,
    Unauthorized,
    WorkspaceRequired,
)
from tessera.keys.records import KeyRecord
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision

# The verification API's codes (SPEC section 5): "valid", or the refusal of a key.
VerificationCode = Literal[
    "valid",
    "malformed",
    "not_found",
    "expired",
    "revoked",
    "insufficient_scope",
    "workspace_forbidden",
    "workspace_required",
    "ip_forbidden",
    "rate_limited",
]
RefusalCode = Literal[
    # No credential, or one that authenticates no one (a bad token, a dead session).
    "unauthorized",
    # What a presented API key is (the verification API's codes, SPEC section 5).
    "malformed",
    "not_found",
    "expired",
    "revoked",
    "ip_forbidden",
    # What the request asks of a valid credential.
    "insufficient_scope",
    "workspace_forbidden",
    "workspace_required",
    "rate_limited",
    "unknown_organization",  # X-Organization-ID names an organization the credential is not in
    "forbidden",  # no route allows the request, or the session cookie came from another site
    "invalid_request",  # the request's path has no canonical form
]


class RequestFacts(NamedTuple):
    """A request, as far as authorization goes; the edge reads it from the request once.

    Immutable like the frozen dataclasses around it, but a named tuple: one is built for every
    request on the hot paths, in a third of a frozen dataclass's time.

    ``credential`` is what ``X-API-Key`` or ``Authorization: Bearer`` carried, as presented;
    ``session`` the session cookie, where a cookie may stand in for it. The scopes the request
    needs are ``required_scopes``, plus those of the forward-auth route table when ``route``
    (the original method and URI) is given.
    """

    credential: str | None
    required_scopes: tuple[str, ...] = ()
    route: tuple[str, str] | None = None
    workspace_id: str | None = None
    require_workspace: bool = False
    organization_id: str | None = None
    client_ip: str | None = None
    session: str | None = None
    method: str = "GET"
    origin: str | None = None  # the Origin header, for a request the session cookie authenticates
    fetch_site: str | None = None  # Sec-Fetch-Site, likewise
    # The verification API: only an API key is judged, its failures are the asking service's
    # to throttle, and ``uses`` uses are counted at once.
    keys_only: bool = False
    uses: int = 1


class Ask(NamedTuple):
    """How an edge names a request for ``Authorizer.decide_again``: the digest of everything
    it reads of the request (the service token that asks included), so that the same digest
    means the same facts; and that service token, or None for an application deciding for
    itself beside the server (the integration's local mode)."""

    digest: bytes
    service_token: str | None


class Allowed(NamedTuple):
    """Immutable; a named tuple, like :class:`RequestFacts`: one is built for every request
    the hot paths allow."""

    principal: Principal  # acting in ``workspace``
    workspace: str | None
    quota: RateLimitDecision | None  # the credential's figures after this request
    renew_session: bool = False  # the session's idle limit moved: send its cookie again


@dataclass(frozen=True)
class Refused:
    code: RefusalCode
    detail: str
    quota: RateLimitDecision | None = None  # the credential's figures, once it was charged
    retry_after: int = 0  # for ``rate_limited``: seconds until a request would be allowed
    missing_scopes: tuple[str, ...] = ()
    credential_presented: bool = True
    principal: Principal | None = None  # who was refused, when that was established
    key: KeyRecord | None = None  # the API key presented, when it exists
    renew_session: bool = False


Decision = Allowed | Refused


def _unauthorized(refused: Refused) -> TesseraError:
    return Unauthorized(refused.detail, credential_presented=refused.credential_presented)


def _rate_limited(refused: Refused) -> TesseraError:
    return RateLimited(refused.detail, retry_after=refused.retry_after)


def _forbidden(refused: Refused) -> TesseraError:
    return Forbidden(refused.detail)


ERRORS: dict[RefusalCode, Callable[[Refused], TesseraError]] = {
    "unauthorized": _unauthorized,
    "malformed": _unauthorized,
    "not_found": _unauthorized,
    "expired": _unauthorized,
    "revoked": _unauthorized,
    "ip_forbidden": _forbidden,
    "insufficient_scope": lambda r: InsufficientScope(list(r.missing_scopes), r.detail),
    "workspace_forbidden": _forbidden,
    "workspace_required": lambda r: WorkspaceRequired(r.detail),
    "rate_limited": _rate_limited,
    "unknown_organization": lambda r: NotFound(r.detail),
    "forbidden": _forbidden,
    "invalid_request": lambda r: InvalidRequest(r.detail),
}


def refusal_error(refused: Refused) -> TesseraError:
    """The error an edge answers a refusal with (its status and headers: the one error map)."""
    return ERRORS[refused.code](refused)


NOT_VALID = "The API key is not valid."
KEY_REFUSALS = {
    "expired": "The API key has expired.",
    "revoked": "The API key has been revoked.",
    "ip_forbidden": "This API key may not be used from this address.",
}
NAME_ONE = "Name the workspace with X-Workspace-ID."


def lacking(missing: tuple[str, ...]) -> str:
    return f"This credential lacks the scope {' '.join(sorted(missing))}."


def outside(workspace_id: str | None) -> str:
    return f"This credential may not act in workspace {workspace_id}."


def over(quota: RateLimitDecision) -> Refused:
    detail = f"Rate limit of {quota.limit} requests per {quota.window} s exceeded."
    return Refused("rate_limited", detail, quota=quota, retry_after=quota.retry_after)


def verdict_refusal(
    code: str,
    *,
    missing_scopes: tuple[str, ...] = (),
    quota: RateLimitDecision | None = None,
    workspace_id: str | None = None,
) -> Refused:
    """The refusal a verification code stands for, as the pipeline words it (for a caller
    that asked the verification API instead of deciding itself)."""
    if code == "rate_limited" and quota is not None:
        return over(quota)
    if code == "insufficient_scope":
        detail = lacking(missing_scopes)
        return Refused("insufficient_scope", detail, quota, missing_scopes=missing_scopes)
    if code == "workspace_forbidden":
        return Refused("workspace_forbidden", outside(workspace_id), quota)
    if code == "workspace_required":
        return Refused("workspace_required", NAME_ONE, quota)
    if code == "expired":
        return Refused("expired", KEY_REFUSALS[code], quota)
    if code == "revoked":
        return Refused("revoked", KEY_REFUSALS[code], quota)
    if code == "ip_forbidden":
        return Refused("ip_forbidden", KEY_REFUSALS[code], quota)
    return Refused("not_found", NOT_VALID, quota)
