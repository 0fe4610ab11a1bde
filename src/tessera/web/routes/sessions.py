"""The caller's browser sessions: list, end one, end all ("sign out everywhere")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tessera.errors import Forbidden
from tessera.principal import Principal
from tessera.sessions.service import session_resource
from tessera.web import resources
from tessera.web.cookies import add_response_header, clear_cookie_header
from tessera.web.deps import authenticate, client_info, tessera_of
from tessera.web.openapi import AUTHENTICATED, USER_CREDENTIALS, problems

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def _user(principal: Principal) -> str:
    if principal.user_id is None or principal.kind != "user":
        raise Forbidden("Sessions belong to users; this credential is not one.")
    if principal.client_id is not None:  # an app acting for the person may not end them
        raise Forbidden("An OAuth app's token cannot see or end the person's sessions.")
    return principal.user_id


@router.get(
    "",
    response_model=resources.SessionList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def list_sessions(request: Request, principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    rows = tessera_of(request).sessions.list(_user(principal))
    current = principal.facts.get("session_id")
    return {"data": [session_resource(r, current) for r in rows], "next_cursor": None}


@router.delete(
    "/{session_id}",
    status_code=204,
    response_class=Response,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def end_session(
    session_id: str, request: Request, principal: Principal = Depends(authenticate)
) -> Response:
    tessera = tessera_of(request)
    tessera.sessions.end(_user(principal), session_id, client_info(request))
    if session_id == principal.facts.get("session_id"):
        add_response_header(request, "set-cookie", clear_cookie_header(tessera))
    return Response(status_code=204)


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    responses=problems(*AUTHENTICATED),
    openapi_extra=USER_CREDENTIALS,
)
def end_all_sessions(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    tessera = tessera_of(request)
    tessera.sessions.end_all(_user(principal), client_info(request))
    add_response_header(request, "set-cookie", clear_cookie_header(tessera))
    return Response(status_code=204)
