"""``GET /v1/forward-auth`` for nginx ``auth_request`` and Traefik ForwardAuth.

Like the verification API it sits in front of every request of the protected API, so it is
one plain ASGI handler on the application's fast path (``web/fastpath.py``): from the caches on
the event loop, in a worker thread only when a look-up must wait.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tessera.authz import Refused, refusal_error
from tessera.edge.clientip import forwarded_client_ip
from tessera.edge.facts import request_facts
from tessera.errors import Unauthorized, WouldBlock
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import admit, client_info, tessera_of
from tessera.web.fastpath import HandledRoute
from tessera.web.openapi import AUTHENTICATED, error_response, problems

PATH = "/v1/forward-auth"


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
        "description": "The request may go on, with the caller's identity in headers.",
        "model": resources.ForwardAuthIdentity,
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
    """The endpoint: a plain ASGI handler (``web/fastpath.py``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = decide(request, allow_database=False)
        except WouldBlock:
            response = await run_in_threadpool(decide, request, allow_database=True)
        await response(scope, receive, send)


def forward_auth() -> None:
    """200 with the caller's identity in headers and a JSON body, or 400 / 401 / 403 / 429
    with the error body.

    The body of a 200 says what the headers say: ``principal``, ``kind``, ``organization_id``,
    ``scopes``, ``workspace_id`` and ``environment``. nginx's ``auth_request`` turns any
    answer but 2xx, 401 and 403 into a 500, so when the proxy says it is nginx
    (``X-Tessera-Proxy: nginx``) a 400, 429 or 503 is sent as 403 with ``X-Tessera-Status``,
    which the example configuration turns back into the original status.
    """


route = HandledRoute(
    PATH,
    forward_auth,
    handler=ForwardAuthEndpoint(),
    methods=["GET"],
    tags=["forward auth"],
    responses=ANSWERS,
    openapi_extra=DESCRIPTION,
)


def decide(request: Request, *, allow_database: bool) -> Response:
    tessera = tessera_of(request)
    _check_proxy(request, allow_database)
    method = request.headers.get("x-original-method") or request.headers.get("x-forwarded-method")
    uri = request.headers.get("x-original-uri") or request.headers.get("x-forwarded-uri")
    if not method or not uri:
        raise Unauthorized("The proxy must send the original method and URI.")
    facts = request_facts(
        request,
        trusted_proxies=tessera.config.trusted_proxies,
        cookie_name=tessera.config.session.cookie_name,
        # The proxy has proved who it is, so the client it names is the client (SPEC 5).
        address=forwarded_client_ip(request, tessera.config.trusted_proxies),
        route=(method, uri),
    )
    decision = tessera.authorizer.decide(facts, allow_database=allow_database)
    principal = admit(request, facts, decision)
    body = orjson.dumps(identity_body(principal))
    return Response(body, media_type="application/json", headers=identity_headers(principal))


def _check_proxy(request: Request, allow_database: bool) -> None:
    """The caller's service token; a wrong one counts against the caller's own address."""
    token = request.headers.get("x-tessera-service-token")
    if not token:
        raise Unauthorized("The proxy must send a service token in X-Tessera-Service-Token.")

    def caller_ip() -> str | None:  # read only when the token is refused
        return client_info(request).ip

    proxy = tessera_of(request).authorizer.service(token, caller_ip, allow_database=allow_database)
    if isinstance(proxy, Refused):
        raise refusal_error(proxy)


def identity_body(principal: Principal) -> dict[str, Any]:
    """Who the caller is, as the identity headers say it; never a secret."""
    return {
        "principal": principal.id,
        "kind": principal.kind,
        "organization_id": principal.organization_id,
        "scopes": sorted(principal.scopes),
        "workspace_id": principal.workspace_id,
        "environment": principal.environment,
    }


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
