"""``GET /v1/forward-auth`` for nginx ``auth_request`` and Traefik ForwardAuth.

Like the verification API it sits in front of every request of the protected API, so it is
one plain ASGI handler on the application's fast path (``web/fastpath.py``): from the caches on
the event loop, in a worker thread only when a look-up must wait.

The handler reads only the headers in :data:`ASKED` (and the peer's address), so their digest
names the request for the pipeline (:func:`ask_of`): a request the pipeline allowed before is
answered from that digest alone (``web/hotpaths.py``).

Its 200 has no body: the identity is in the fields SPEC names, which is all nginx's
``auth_request`` and Traefik's ForwardAuth pass on (both discard a 2xx body).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tessera.authz import Allowed, Ask, Refused, RequestFacts, refusal_error
from tessera.deployment import Tessera
from tessera.edge.clientip import scope_client_ip, scope_forwarded_client_ip
from tessera.edge.facts import ask_digest, ask_peer, header_map, scope_facts
from tessera.errors import Unauthorized, WouldBlock
from tessera.principal import Principal
from tessera.ratelimit.headers import raw_rate_limit_headers
from tessera.web.deps import admit_scope
from tessera.web.fastpath import HandledRoute, RawHeaders
from tessera.web.openapi import AUTHENTICATED, error_response, problems

PATH = "/v1/forward-auth"
# Every header the decision reads: the proxy's token, the client's credential or cookie, the
# original method and URI, the client's address, the workspace and organization named, and
# what the session cookie's cross-site rule reads. (X-Tessera-Proxy shapes only a refusal.)
ASKED = frozenset(
    (
        b"x-tessera-service-token",
        b"x-api-key",
        b"authorization",
        b"cookie",
        b"x-original-method",
        b"x-original-uri",
        b"x-forwarded-method",
        b"x-forwarded-uri",
        b"x-forwarded-for",
        b"x-real-ip",
        b"x-workspace-id",
        b"x-organization-id",
        b"origin",
        b"sec-fetch-site",
    )
)


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": False, "schema": {"type": "string"}}


def _parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", **_header(description)}


DESCRIPTION = {
    # The proxy's service token and the client's credential as the client sent it.
    "security": [
        {"proxyServiceToken": [], client: []} for client in ("bearer", "apiKey", "sessionCookie")
    ],
    "parameters": [
        _parameter("X-Original-Method", "The client's method (nginx)."),
        _parameter("X-Original-URI", "The client's URI (nginx)."),
        _parameter("X-Forwarded-Method", "The client's method (Traefik)."),
        _parameter("X-Forwarded-Uri", "The client's URI (Traefik)."),
        _parameter("X-Forwarded-For", "The client's address."),
        _parameter("X-Tessera-Proxy", "nginx: send a 429 as 403 with X-Tessera-Status."),
    ],
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    # 400: a path that stays ambiguous once normalized (an encoded "/", a backslash, a NUL).
    **problems(400, *AUTHENTICATED),
    200: {
        "description": "The request may go on; the caller's identity is in the headers and the "
        "answer has no body.",
        "headers": {
            "X-Tessera-Organization-Id": _header("The caller's organization."),
            "X-Tessera-Principal": _header("The caller: key_…, usr_… or cli_…"),
            "X-Tessera-Scopes": _header("The caller's scopes, space-separated."),
            "X-Tessera-Workspace-Id": _header("The workspace, when one is resolved."),
            "X-Tessera-Environment": _header("live or test, for an API key."),
            "X-Tessera-Client-Id": _header("The OAuth client, for an OAuth token."),
        },
    },
    403: {
        **error_response(403),
        "headers": {
            **error_response(403)["headers"],
            "X-Tessera-Status": _header(
                "With X-Tessera-Proxy: nginx, the status meant (400, 429 or 503)."
            ),
            "Retry-After": _header("With X-Tessera-Status: 429, seconds to wait."),
        },
    },
}


class ForwardAuthEndpoint:
    """The endpoint: a plain ASGI handler (``web/fastpath.py``). The headers are read once into
    a dict, and the answer for a principal is rendered once and sent as raw ASGI messages."""

    reads_body = False  # a forward-auth request's body means nothing

    def __init__(self) -> None:
        self._rendered = _Renderings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tessera: Tessera = scope["app"].state.tessera
        headers = {name: value for name, value in header_map(scope).items() if name in _NAMES}
        try:  # from the caches, on the event loop
            facts = _facts(tessera, scope, headers, allow_database=False)
        except WouldBlock:  # a look-up must wait: in a worker thread
            facts = await run_in_threadpool(_facts, tessera, scope, headers, True)
        asked, token = ask_of(scope), headers.get("x-tessera-service-token")
        ask = Ask(asked, token) if asked is not None and token else None
        decision = await tessera.authorizer.decide_on_loop(facts, run_in_threadpool, ask=ask)
        raw = self._rendered.of(admit_scope(scope, tessera, facts, decision))
        await send({"type": "http.response.start", "status": 200, "headers": list(raw)})
        await send({"type": "http.response.body", "body": b""})

    def ask(self, scope: Scope, body: bytes) -> bytes | None:
        return ask_of(scope)

    def render(self, allowed: Allowed) -> tuple[RawHeaders, bytes]:
        raw = self._rendered.of(allowed.principal)
        limits = raw_rate_limit_headers(allowed.quota) if allowed.quota is not None else []
        return [*raw, *limits], b""


_NAMES = frozenset(name.decode() for name in ASKED)


def ask_of(scope: Scope) -> bytes | None:
    """The digest that names the request for the pipeline (``Authorizer.decide_again``): of
    the peer's address and of every value of every header in :data:`ASKED`, which is all the
    handler reads. No raw credential is kept. None without a service token."""
    tag = b"forward-auth " + ask_peer(scope)
    return ask_digest(scope, tag, ASKED, b"x-tessera-service-token")


RawFields = tuple[tuple[bytes, bytes], ...]


class _Renderings:
    """The 200 answer's identity fields per principal, kept while the principal object lives
    in the key cache (a cached key answers with the same object each time), bounded."""

    MAX = 4096

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Principal, RawFields]] = {}

    def of(self, principal: Principal) -> RawFields:
        found = self._by_id.get(id(principal))
        if found is not None and found[0] is principal:
            return found[1]
        raw = (
            *(
                (n.lower().encode(), v.encode("latin-1"))
                for n, v in identity_headers(principal).items()
            ),
            (b"content-length", b"0"),  # no body: the fields are the answer
        )
        if len(self._by_id) >= self.MAX:
            self._by_id.clear()
        self._by_id[id(principal)] = (principal, raw)
        return raw


def forward_auth() -> None:
    """200 with the caller's identity in headers and no body, or 400 / 401 / 403 / 429 with the
    error body.

    The 200's fields name the caller: ``X-Tessera-Principal``, ``X-Tessera-Organization-Id``,
    ``X-Tessera-Scopes``, ``X-Tessera-Workspace-Id`` and ``X-Tessera-Environment`` (for an API
    key), ``X-Tessera-Client-Id`` (for an OAuth token), with the rate-limit fields. nginx's
    ``auth_request`` turns any answer but 2xx, 401 and 403 into a 500, so when the proxy says
    it is nginx (``X-Tessera-Proxy: nginx``) a 400, 429 or 503 is sent as 403 with
    ``X-Tessera-Status``, which the example configuration turns back into the original status.
    """


route = HandledRoute(
    PATH,
    forward_auth,
    handler=ForwardAuthEndpoint(),
    methods=["GET"],
    response_class=Response,  # documented without a body: the 200 has none
    tags=["forward auth"],
    responses=ANSWERS,
    openapi_extra=DESCRIPTION,
)


def _facts(
    tessera: Tessera, scope: Scope, headers: dict[str, str], allow_database: bool
) -> RequestFacts:
    """The facts of the request the proxy asks about, once the proxy has proved who it is."""
    trusted = tessera.config.trusted_proxies
    _check_proxy(tessera, scope, headers, allow_database)
    method = headers.get("x-original-method") or headers.get("x-forwarded-method")
    uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri")
    if not method or not uri:
        raise Unauthorized("The proxy must send the original method and URI.")
    return scope_facts(
        scope,
        headers,
        trusted_proxies=trusted,
        cookie_name=tessera.config.session.cookie_name,
        # The proxy has proved who it is, so the client it names is the client (SPEC 5).
        address=scope_forwarded_client_ip(scope, headers, trusted),
        route=(method, uri),
    )


def _check_proxy(
    tessera: Tessera, scope: Scope, headers: dict[str, str], allow_database: bool
) -> None:
    """The caller's service token; a wrong one counts against the caller's own address."""
    token = headers.get("x-tessera-service-token")
    if not token:
        raise Unauthorized("The proxy must send a service token in X-Tessera-Service-Token.")

    def caller_ip() -> str | None:  # read only when the token is refused
        return scope_client_ip(scope, headers, tessera.config.trusted_proxies)

    proxy = tessera.authorizer.service(token, caller_ip, allow_database=allow_database)
    if isinstance(proxy, Refused):
        raise refusal_error(proxy)


def identity_headers(principal: Principal) -> dict[str, str]:
    headers = {
        "X-Tessera-Organization-Id": principal.organization_id or "",
        "X-Tessera-Principal": principal.id,
        "X-Tessera-Scopes": " ".join(sorted(principal.scopes)),
    }
    if principal.workspace_id:
        headers["X-Tessera-Workspace-Id"] = principal.workspace_id
    if principal.environment:
        headers["X-Tessera-Environment"] = principal.environment
    if principal.client_id:
        headers["X-Tessera-Client-Id"] = principal.client_id
    return headers
