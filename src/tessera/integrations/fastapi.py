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
    @auth.protect("contacts:read")
    async def contacts(principal: Principal): ...

    @app.post("/v1/contacts")  # the same check as a dependency
    async def add(principal: Principal = Depends(auth.requires("contacts:write"))): ...

Errors are answered in Tessera's format (``application/problem+json``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.authz.decision import Allowed, Refused, refusal_error, verdict_refusal
from tessera.clock import Clock, SystemClock
from tessera.edge.clientip import scope_client_ip
from tessera.edge.facts import ask_digest, ask_peer, credential_of, header_map
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
Endpoint = Callable[..., Any]


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
        tag = _scopes_tag(scopes)
        if self._installed:

            async def light(request: Request) -> Principal:
                return await self._caller(request.scope, scopes, tag)

            return light

        async def dependency(request: Request, response: Response) -> Principal:
            principal, quota = await self._checked(request.scope, scopes, tag)
            if quota is not None:
                for name, value in rate_limit_headers(quota):
                    response.headers[name] = value
            return principal

        return dependency

    def protect(self, *scopes: str) -> Callable[[Endpoint], Endpoint]:
        """A decorator for an endpoint taking the caller as its parameter annotated
        :class:`Principal`, which is given the caller when it holds every scope named:

            @app.get("/v1/contacts")
            @auth.protect("contacts:read")
            async def contacts(principal: Principal): ...

        The same check as ``Depends(auth.requires(...))`` without FastAPI's resolution of a
        dependency, which costs about as much as the check itself: FastAPI sees the endpoint's
        other parameters and the request. Needs :meth:`install` first (for the headers)."""
        if not self._installed:
            raise RuntimeError("Call install(app) before protect(): it adds the headers.")
        tag = _scopes_tag(scopes)

        def decorate(endpoint: Endpoint) -> Endpoint:
            caller, signature = _protected_signature(endpoint)
            request, signature, own_request = _given(signature, Request, "tessera_request")
            response, signature, own_response = _given(signature, Response, "tessera_response")
            is_async = inspect.iscoroutinefunction(endpoint)

            async def protected(**values: Any) -> Any:
                scope = (values[request] if own_request else values.pop(request)).scope
                answer = values[response] if own_response else values.pop(response)
                values[caller], quota = await self._checked(scope, scopes, tag)
                try:
                    if is_async:
                        result = await endpoint(**values)
                    else:
                        result = await run_in_threadpool(endpoint, **values)
                except BaseException:
                    _note_quota(scope, quota)  # for the error's answer
                    raise
                if quota is not None:
                    if isinstance(result, Response):
                        _note_quota(scope, quota)  # the middleware adds those it has not set
                    else:  # FastAPI adds the response parameter's headers to its answer
                        answer.raw_headers.extend(raw_rate_limit_headers(quota))
                return result

            for name in ("__module__", "__name__", "__qualname__", "__doc__"):
                setattr(protected, name, getattr(endpoint, name, None))
            protected.__signature__ = signature  # type: ignore[attr-defined]
            return protected

        return decorate

    async def _caller(self, scope: Scope, scopes: tuple[str, ...], tag: bytes) -> Principal:
        principal, quota = await self._checked(scope, scopes, tag)
        _note_quota(scope, quota)  # the middleware puts the headers on the answer
        return principal

    async def _checked(
        self, scope: Scope, scopes: tuple[str, ...], tag: bytes
    ) -> tuple[Principal, RateLimitDecision | None]:
        """The caller and the quota's figures, or the refusal raised (with the figures noted
        for the error's answer)."""
        try:
            ask = None
            if self._check.remembers:
                asker = b"integration %s %s" % (ask_peer(scope), tag)
                ask = ask_digest(scope, asker, _ASKED, None)
                if ask is not None:
                    again = await self._check.again(ask)
                    if again is not None:
                        return again.principal, again.quota
            checked = await self._check(self._presented(scope, ask), scopes)
        except TesseraError:
            raise
        except Exception as unexpected:
            raise _internal_error(scope) from unexpected
        if isinstance(checked, Refused):
            _note_quota(scope, checked.quota)
            raise refusal_error(checked)
        return checked.principal, checked.quota

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

    def _presented(self, scope: Scope, ask: bytes | None) -> Presented:
        headers = header_map(scope)
        credential = credential_of(headers)
        if not credential:
            raise Unauthorized("This endpoint needs an API key.", credential_presented=False)
        return Presented(
            credential,
            headers.get("x-workspace-id"),
            headers.get("x-organization-id"),
            scope_client_ip(scope, headers, self._trusted),
            ask,
        )


# Every header :meth:`Authenticator._presented` reads: a request's ask digest covers them all.
_ASKED = frozenset(
    {b"authorization", b"x-api-key", b"x-workspace-id", b"x-organization-id"}
    | {b"x-forwarded-for", b"x-real-ip"}  # the client's address, behind trusted proxies
)


def _scopes_tag(scopes: tuple[str, ...]) -> bytes:
    """The scopes an endpoint asks for, as they are named in its requests' ask digest."""
    if any(not scope or any(c.isspace() for c in scope) for scope in scopes):
        raise ValueError(f"A scope is a name without spaces: {scopes!r}")
    return " ".join(scopes).encode()


def _protected_signature(endpoint: Endpoint) -> tuple[str, inspect.Signature]:
    """The name of ``endpoint``'s parameter for the caller, and the signature FastAPI is shown:
    every parameter but that one, keyword-only (FastAPI passes them by name)."""
    signature = inspect.signature(endpoint, eval_str=True)
    parameters = signature.parameters.values()
    callers = [p.name for p in parameters if p.annotation is Principal]
    if len(callers) != 1 or any(p.kind in _VARIADIC for p in parameters):
        raise TypeError(
            f"{endpoint.__qualname__} must take exactly one parameter annotated Principal, "
            "and no *args or **kwargs"
        )
    shown = [p.replace(kind=_KEYWORD_ONLY) for p in parameters if p.name != callers[0]]
    return callers[0], signature.replace(parameters=shown)


def _given(
    signature: inspect.Signature, kind: type, name: str
) -> tuple[str, inspect.Signature, bool]:
    """The name of the parameter FastAPI fills with its ``kind`` (the request, or the response
    whose headers it adds to its answer), added as ``name`` when the endpoint has none (False)."""
    for parameter in signature.parameters.values():
        if parameter.annotation is kind:
            return parameter.name, signature, True
    added = inspect.Parameter(name, _KEYWORD_ONLY, annotation=kind)
    return name, signature.replace(parameters=[*signature.parameters.values(), added]), False


def _note_quota(scope: Scope, quota: RateLimitDecision | None) -> None:
    """The figures for :class:`RateLimitHeaders` and the error handler to add to the answer."""
    if quota is not None:
        scope.setdefault("state", {})["rate_limit"] = quota


_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


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


def _internal_error(scope: Scope) -> InternalError:
    """What the caller is told of an exception nobody expected; the log has the traceback,
    under the request id the answer carries."""
    request_id = next_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    log.exception("unhandled error", extra={"request_id": request_id})
    return InternalError("An unexpected error occurred.")


class _RemoteCheck:
    """Asks ``POST /v1/keys/verify``; valid answers are cached for a short, bounded time."""

    remembers = False

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

    async def again(self, ask: bytes) -> Checked | Allowed | None:
        return None  # answers are cached by key (``cache``), with the uses they may serve

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
