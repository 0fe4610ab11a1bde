"""FastAPI dependencies: the deployment, and the caller as the authorization pipeline decides."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection, Request
from starlette.types import Scope

from tessera.authz import Decision, Refused, RequestFacts, refusal_error
from tessera.deployment import Tessera
from tessera.edge.clientip import client_ip
from tessera.edge.facts import request_facts
from tessera.principal import ClientInfo, Principal
from tessera.web.cookies import set_cookie_header


def tessera_of(request: HTTPConnection) -> Tessera:
    tessera: Tessera = request.app.state.tessera
    return tessera


def client_info(request: HTTPConnection) -> ClientInfo:
    return ClientInfo(
        ip=client_ip(request, tessera_of(request).config.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


def authenticate(request: Request) -> Principal:
    """The caller of this request: any credential, or the session cookie."""
    return _caller(request, ())


def in_workspace(request: Request) -> Principal:
    """For routes that act inside a workspace: the caller, with the workspace resolved."""
    return _caller(request, (), require_workspace=True)


def requires(*scopes: str) -> Callable[[Request], Principal]:
    """A dependency that yields the caller when it holds every scope named."""

    def check(request: Request) -> Principal:
        return _caller(request, scopes)

    return check


def _caller(
    request: Request, scopes: tuple[str, ...], *, require_workspace: bool = False
) -> Principal:
    tessera = tessera_of(request)
    facts = request_facts(
        request,
        trusted_proxies=tessera.config.trusted_proxies,
        cookie_name=tessera.config.session.cookie_name,
        required_scopes=scopes,
    )
    if require_workspace:
        facts = facts._replace(require_workspace=True)
    return admit(request, facts, tessera.authorizer.decide(facts))


def admit(request: HTTPConnection, facts: RequestFacts, decision: Decision) -> Principal:
    """The caller a decision allows; a refusal is raised as its error. Either way the quota's
    figures go out as headers on whatever response this request gets (``web/middleware.py``),
    and so does the session cookie when its idle limit moved."""
    return admit_scope(request.scope, tessera_of(request), facts, decision)


def admit_scope(
    scope: Scope, tessera: Tessera, facts: RequestFacts, decision: Decision
) -> Principal:
    """:func:`admit` for a plain ASGI handler."""
    if decision.quota is not None:
        scope.setdefault("state", {})["rate_limit"] = decision.quota
    if decision.renew_session and facts.session is not None:
        cookie = set_cookie_header(tessera, facts.session)
        scope.setdefault("state", {}).setdefault("headers", []).append(("set-cookie", cookie))
    if isinstance(decision, Refused):
        raise refusal_error(decision)
    return decision.principal
