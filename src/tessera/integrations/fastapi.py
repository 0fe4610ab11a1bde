"""Protect a FastAPI or Starlette application with Tessera.

``Authenticator.local(config)`` reads the same database and Redis as the Tessera server and
accepts every credential (API keys, user tokens). ``Authenticator.remote(url, service_token)``
asks the verification API and accepts API keys; it caches answers for ``cache_seconds`` and
forgets a key as soon as it is told of its revocation (``forget()``, or the Redis eviction
channel when ``redis_url`` is given).

    auth = Authenticator.local(load_config("tessera.toml"))
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal: Principal = Depends(auth.requires("contacts:read"))): ...

Errors are answered in Tessera's format (``application/problem+json``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from tessera.clock import Clock, SystemClock
from tessera.config import Config
from tessera.errors import (
    Forbidden,
    InsufficientScope,
    ServiceUnavailable,
    TesseraError,
    Unauthorized,
    WorkspaceRequired,
    WouldBlock,
)
from tessera.ids import digest
from tessera.keys.cache import EvictionBus, TtlCache
from tessera.principal import ClientInfo, Principal
from tessera.ratelimit.gcra import RateLimitDecision
from tessera.ratelimit.headers import rate_limit_headers
from tessera.ratelimit.policy import RateLimitExceeded
from tessera.web.clientip import client_ip
from tessera.web.deps import presented_credential
from tessera.web.problems import problem_response

Dependency = Callable[[Request, Response], Awaitable[Principal]]
REFUSALS: dict[str, type[TesseraError]] = {
    "workspace_forbidden": Forbidden,
    "ip_forbidden": Forbidden,
    "workspace_required": WorkspaceRequired,
}


@dataclass(frozen=True)
class Presented:
    credential: str
    workspace_id: str | None
    organization_id: str | None
    client: ClientInfo


class Authenticator:
    """Use :meth:`local` or :meth:`remote` to make one."""

    def __init__(
        self,
        check: _LocalCheck | _RemoteCheck,
        trusted_proxies: list[str],
    ) -> None:
        self._check = check
        self._trusted = trusted_proxies

    @classmethod
    def local(cls, config: Config, *, clock: Clock | None = None) -> Authenticator:
        from tessera.deployment import Tessera

        return cls(_LocalCheck(Tessera(config, clock=clock)), config.trusted_proxies)

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
        """A dependency yielding the caller when it holds every scope named."""

        async def dependency(request: Request, response: Response) -> Principal:
            checked = await self._check(self._presented(request), scopes)
            if checked.rate_limit is not None:
                request.scope.setdefault("state", {})["rate_limit"] = checked.rate_limit
                for name, value in rate_limit_headers(checked.rate_limit):
                    response.headers[name] = value
            return checked.principal

        return dependency

    def forget(self, key: str) -> None:
        """Drop what is cached about ``key``, after hearing it was revoked elsewhere (with
        ``redis_url`` configured, revocations arrive by themselves)."""
        self._check.forget(digest(key))

    def install(self, app: Any) -> None:
        """Answer Tessera's errors in Tessera's format, with the rate-limit headers."""

        async def handler(request: Request, error: Exception) -> Response:
            assert isinstance(error, TesseraError)
            response = problem_response(error, None)
            decision = getattr(error, "decision", None) or request.scope.get("state", {}).get(
                "rate_limit"
            )
            if decision is not None:
                for name, value in rate_limit_headers(decision):
                    response.headers.setdefault(name, value)
            return response

        app.add_exception_handler(TesseraError, handler)

    def _presented(self, request: HTTPConnection) -> Presented:
        credential = presented_credential(request)
        if not credential:
            raise Unauthorized("This endpoint needs an API key.", credential_presented=False)
        return Presented(
            credential=credential,
            workspace_id=request.headers.get("x-workspace-id"),
            organization_id=request.headers.get("x-organization-id"),
            client=ClientInfo(client_ip(request, self._trusted), request.headers.get("user-agent")),
        )


@dataclass(frozen=True)
class Checked:
    principal: Principal
    rate_limit: RateLimitDecision | None
    client_ip: str | None = None
    # Uses a cached answer may still serve: the quota the server reported as remaining.
    budget: int = 0
    unreported: int = 0  # uses served from the cache that the server has not counted yet


class _LocalCheck:
    """The same checks as Tessera's own endpoints, on the same database and Redis."""

    def __init__(self, tessera: Any) -> None:
        self.tessera = tessera

    def forget(self, key_digest: str) -> None:
        self.tessera.key_verifier.forget(key_digest)

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked:
        try:  # from the caches, on the event loop
            return self._check(presented, scopes, allow_database=False)
        except WouldBlock:  # a look-up must wait: in a worker thread
            return await run_in_threadpool(self._check, presented, scopes, True)

    def _check(
        self, presented: Presented, scopes: tuple[str, ...], allow_database: bool
    ) -> Checked:
        tessera = self.tessera
        if not allow_database and not tessera.rate_limits.in_process:
            raise WouldBlock
        try:
            principal = tessera.credentials.authenticate(
                presented.credential,
                organization_id=presented.organization_id,
                client=presented.client,
                allow_database=allow_database,
            )
        except Unauthorized:
            tessera.rate_limits.count_failure(presented.client.ip)
            raise
        principal = tessera.credentials.in_workspace(
            principal, presented.workspace_id, allow_database=allow_database
        )
        missing = principal.has_scopes(scopes)
        if missing:
            raise InsufficientScope(missing)
        return Checked(principal, tessera.rate_limits.charge(principal))


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
        self._bus = EvictionBus(redis_url, self.forget, self.cache.clear) if redis_url else None

    def forget(self, key_digest: str) -> None:
        self.cache.evict(key_digest)

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked:
        key_digest = digest(presented.credential)
        cached = self.cache.get(key_digest)
        if cached is not None and _still_fits(cached, presented, scopes) and cached.budget > 0:
            # Spend the quota the server reported as left; the uses are reported next time.
            self.cache.update(
                key_digest,
                replace(cached, budget=cached.budget - 1, unreported=cached.unreported + 1),
            )
            return Checked(cached.principal, None)
        uses = 1 + (cached.unreported if cached is not None else 0)
        self.cache.evict(key_digest)
        checked = _from_answer(await self._ask(presented, scopes, uses), presented.client.ip)
        if presented.workspace_id is None:
            self.cache.put(key_digest, checked)
        return checked

    async def _ask(
        self, presented: Presented, scopes: tuple[str, ...], uses: int
    ) -> dict[str, Any]:
        body = {
            "key": presented.credential,
            "required_scopes": list(scopes),
            "workspace_id": presented.workspace_id,
            "client_ip": presented.client.ip,
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
        not cached.principal.has_scopes(scopes)
        and presented.workspace_id is None
        and presented.client.ip == cached.client_ip
    )


def _from_answer(answer: dict[str, Any], client_ip: str | None) -> Checked:
    code = answer.get("code")
    limit = answer.get("rate_limit")
    decision = _decision(limit, code == "rate_limited") if limit else None
    if code == "rate_limited" and decision is not None:
        raise RateLimitExceeded(decision)
    if code == "insufficient_scope":
        raise InsufficientScope(list(answer.get("missing_scopes", [])))
    if code in REFUSALS:
        raise REFUSALS[code](f"This API key is refused: {code}.")
    if code != "valid":
        raise Unauthorized("The API key is not valid.")
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
    return Checked(principal, decision, client_ip, decision.remaining if decision else 0)


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
