"""Protect a FastAPI or Starlette application with Tessera.

``Authenticator.local(config)`` reads the same database and Redis as the Tessera server and
accepts every credential (API keys, user tokens); it loads the server's code
(``integrations/local.py``), which remote mode never does.
``Authenticator.remote(url, service_token)`` asks the verification API and accepts API keys
only (a user's or an OAuth access token is refused, ``401``, without asking);
it caches answers for ``cache_seconds`` and forgets a key as soon as it is told of its
revocation (``forget()``, or the Redis eviction channel when ``redis_url`` is given).

    auth = Authenticator.local(load_config("tessera.toml"))
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal: Principal = Depends(auth.requires("contacts:read"))): ...

Errors are answered in Tessera's format (``application/problem+json``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.authz.decision import Refused, refusal_error, verdict_refusal
from tessera.clock import Clock, SystemClock
from tessera.edge.clientip import scope_client_ip
from tessera.edge.facts import credential_of, header_map
from tessera.edge.problems import problem_of, problem_response
from tessera.errors import (
    InternalError,
    ServiceUnavailable,
    TesseraError,
    Unauthorized,
)
from tessera.ids import digest, next_request_id
from tessera.integrations.checks import Check, Checked, Presented
from tessera.keys.cache import EvictionBus, TtlCache
from tessera.keys.format import KEY_PATTERN
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision
from tessera.ratelimit.headers import RAW_NAMES, rate_limit_headers, raw_rate_limit_headers

if TYPE_CHECKING:
    from tessera.config import Config

log = logging.getLogger("tessera.integration")
Dependency = Callable[..., Awaitable[Principal]]


class Authenticator:
    """Use :meth:`local` or :meth:`remote` to make one."""

    def __init__(self, check: Check, trusted_proxies: list[str]) -> None:
        self._check = check
        self._trusted = trusted_proxies
        self._installed = False

    @classmethod
    def local(cls, config: Config, *, clock: Clock | None = None) -> Authenticator:
        from tessera.integrations.local import LocalCheck  # the server: only for local mode

        return cls(LocalCheck(config, clock), config.trusted_proxies)

    @classmethod
    def remote(
        cls,
        base_url: str,
        service_token: str,
        *,
        cache_seconds: float = 5.0,
        cache_size: int = 10_000,
        redis_url: str = "",
        trusted_proxies: list[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> Authenticator:
        check = _RemoteCheck(
            base_url,
            service_token,
            cache_seconds,
            cache_size,
            redis_url,
            transport,
            clock or SystemClock(),
        )
        return cls(check, trusted_proxies or [])

    def requires(self, *scopes: str) -> Dependency:
        """A dependency yielding the caller when it holds every scope named.

        After :meth:`install`, the rate-limit headers are added to the answer by the middleware
        it installs; before it, by the dependency itself (FastAPI's response parameter, which
        costs more per request)."""
        if self._installed:

            async def light(request: Request) -> Principal:
                return await self._caller(request, scopes)

            return light

        async def dependency(request: Request, response: Response) -> Principal:
            principal = await self._caller(request, scopes)
            quota = request.scope.get("state", {}).get("rate_limit")
            if quota is not None:
                for name, value in rate_limit_headers(quota):
                    response.headers[name] = value
            return principal

        return dependency

    async def _caller(self, request: Request, scopes: tuple[str, ...]) -> Principal:
        try:
            checked = await self._check(self._presented(request.scope), scopes)
        except TesseraError:
            raise
        except Exception as unexpected:
            raise _internal_error(request) from unexpected
        quota = checked.quota if isinstance(checked, Refused) else checked.rate_limit
        if quota is not None:  # for the answer, whichever it is
            request.scope.setdefault("state", {})["rate_limit"] = quota
        if isinstance(checked, Refused):
            raise refusal_error(checked)
        return checked.principal

    def forget(self, key: str) -> None:
        """Drop what is cached about ``key``, after hearing it was revoked elsewhere (with
        ``redis_url`` configured, revocations arrive by themselves)."""
        self._check.forget(digest(key))

    def install(self, app: Any) -> None:
        """Answer Tessera's errors in Tessera's format, with the rate-limit headers."""

        async def handler(request: Request, error: Exception) -> Response:
            assert isinstance(error, TesseraError)
            request_id = request.scope.get("state", {}).get("request_id")
            response = problem_response(problem_of(error), request_id)
            decision = request.scope.get("state", {}).get("rate_limit")
            if decision is not None:
                for name, value in rate_limit_headers(decision):
                    response.headers.setdefault(name, value)
            return response

        app.add_exception_handler(TesseraError, handler)
        app.add_middleware(RateLimitHeaders)
        self._installed = True

    def _presented(self, scope: Scope) -> Presented:
        headers = header_map(scope)
        credential = credential_of(headers)
        if not credential:
            raise Unauthorized("This endpoint needs an API key.", credential_presented=False)
        return Presented(
            credential,
            headers.get("x-workspace-id"),
            headers.get("x-organization-id"),
            scope_client_ip(scope, headers, self._trusted),
        )


class RateLimitHeaders:
    """Pure ASGI middleware: the rate-limit headers of the request's decision on its answer,
    leaving out any the answer already has (an error's Retry-After)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get("rate_limit")
                if decision is not None:
                    headers = list(message.get("headers", ()))
                    present = {bytes(name).lower() for name, _ in headers} & RAW_NAMES
                    limits = raw_rate_limit_headers(decision)
                    headers += [(n, v) for n, v in limits if n not in present]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_limits)


def _internal_error(request: Request) -> InternalError:
    """What the caller is told of an exception nobody expected; the log has the traceback,
    under the request id the answer carries."""
    request_id = next_request_id()
    request.scope.setdefault("state", {})["request_id"] = request_id
    log.exception("unhandled error", extra={"request_id": request_id})
    return InternalError("An unexpected error occurred.")


class _RemoteCheck:
    """Asks ``POST /v1/keys/verify``; valid answers are cached for a short, bounded time."""

    def __init__(
        self,
        base_url: str,
        service_token: str,
        cache_seconds: float,
        cache_size: int,
        redis_url: str,
        transport: httpx.AsyncBaseTransport | None,
        clock: Clock,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=5.0,
            headers={"Authorization": f"Bearer {service_token}"},
        )
        self.cache: TtlCache[Checked] = TtlCache(clock, ttl=cache_seconds, max_entries=cache_size)
        self._bus = EvictionBus(redis_url, "api_key", self.cache) if redis_url else None

    def forget(self, key_digest: str) -> None:
        self.cache.evict(key_digest)

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked | Refused:
        if KEY_PATTERN.match(presented.credential) is None:
            # A user's or an OAuth access token, or anything else that is no API key: the
            # verification API judges keys only, so this is refused as an unknown key is.
            return verdict_refusal("malformed", workspace_id=presented.workspace_id)
        key_digest = digest(presented.credential)
        cached = self.cache.get(key_digest)
        if cached is not None and _still_fits(cached, presented, scopes) and cached.budget > 0:
            # Spend the quota the server reported as left; the uses are reported next time.
            self.cache.update(
                key_digest,
                cached._replace(budget=cached.budget - 1, unreported=cached.unreported + 1),
            )
            return Checked(cached.principal, None)
        uses = 1 + (cached.unreported if cached is not None else 0)
        self.cache.evict(key_digest)
        checked = _from_answer(await self._ask(presented, scopes, uses), presented)
        if isinstance(checked, Checked) and presented.workspace_id is None:
            self.cache.put(key_digest, checked)
        return checked

    async def _ask(
        self, presented: Presented, scopes: tuple[str, ...], uses: int
    ) -> dict[str, Any]:
        body = {
            "key": presented.credential,
            "required_scopes": list(scopes),
            "workspace_id": presented.workspace_id,
            "client_ip": presented.client_ip,
            "uses": uses,
        }
        try:
            response = await self._client.post("/v1/keys/verify", json=body)
        except httpx.HTTPError:
            raise ServiceUnavailable("The authentication service cannot be reached.") from None
        if response.status_code != 200:
            raise ServiceUnavailable("The authentication service refused this application.")
        result: dict[str, Any] = response.json()
        return result


def _still_fits(cached: Checked, presented: Presented, scopes: tuple[str, ...]) -> bool:
    """A cached answer serves only requests it fully answers: the scopes held, no workspace
    named, and the same client address (keys may be limited to networks)."""
    return (
        not cached.principal.missing_scopes(scopes)
        and presented.workspace_id is None
        and presented.client_ip == cached.client_ip
    )


def _from_answer(answer: dict[str, Any], presented: Presented) -> Checked | Refused:
    """The server's verdict: the caller, or the refusal its code stands for."""
    code = answer.get("code")
    limit = answer.get("rate_limit")
    decision = _decision(limit, code == "rate_limited") if limit else None
    if code != "valid":
        missing = tuple(answer.get("missing_scopes") or ())
        return verdict_refusal(
            str(code), missing_scopes=missing, quota=decision, workspace_id=presented.workspace_id
        )
    principal = Principal(
        kind="api_key",
        id=answer["key_id"],
        organization_id=answer["organization_id"],
        scopes=frozenset(answer.get("scopes") or ()),
        workspace_id=answer.get("workspace_id"),
        environment=answer.get("environment"),
        workspace_ids=tuple(answer["workspace_ids"]) if answer.get("workspace_ids") else None,
        via="api_key",
    )
    budget = decision.remaining if decision else 0
    return Checked(principal, decision, presented.client_ip, budget)


def _decision(limit: dict[str, Any], refused: bool) -> RateLimitDecision:
    return RateLimitDecision(
        allowed=not refused,
        limit=int(limit["limit"]),
        remaining=int(limit["remaining"]),
        reset_seconds=int(limit["reset_seconds"]),
        retry_after=int(limit.get("retry_after", 0)),
        window=int(limit.get("window", 60)),
    )


__all__ = ["Authenticator"]
