"""Dashboard pages for OAuth (SPEC section 10): Settings → OAuth Apps (register an app, its
client id, the secret shown once, rotate, delete) and Settings → Authorized apps (the apps a
person allowed, revocable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tessera.errors import Forbidden, TesseraError
from tessera.oauth.clients import ClientSpec, NewClient
from tessera.oauth.records import OPENID_SCOPES, ClientType, client_resource
from tessera.scopes import ADMIN_ROLES
from tessera.web.dashboard.pages import (
    Visitor,
    check_form,
    organization_of,
    page_context,
    posted_form,
    redirect,
    render,
    require_scope,
    signed_in,
)
from tessera.web.deps import client_info, tessera_of
from tessera.web.routes.grants import grant_resource

router = APIRouter(include_in_schema=False)
APPS = "/settings/oauth-apps"
AUTHORIZED = "/settings/authorized-apps"


def _scope_choices(request: Request, who: Visitor) -> list[tuple[str, str, bool]]:
    """The scopes this person may give an app: the protocol's, then their own."""
    catalog = tessera_of(request).catalog.scopes
    is_admin = who.principal.role in ADMIN_ROLES
    own = [
        (s.name, s.description, s.admin_only)
        for s in sorted(catalog.values(), key=lambda s: s.name)
        if s.name in who.principal.scopes and (is_admin or not s.admin_only)
    ]
    return [(name, text, False) for name, text in OPENID_SCOPES.items()] + own


def _apps_page(request: Request, who: Visitor, error: str | None = None) -> Response:
    tessera = tessera_of(request)
    require_scope(who, "oauth_clients:read")
    apps = tessera.oauth_clients.of_organization(organization_of(who))
    return render(
        request,
        "oauth_apps.html",
        status=422 if error else 200,
        error=error,
        **page_context(who, "oauth_apps"),
        apps=[client_resource(a) for a in apps],
        can_manage="oauth_clients:write" in who.principal.scopes,
        scope_choices=_scope_choices(request, who),
    )


def _created(request: Request, who: Visitor, new: NewClient, heading: str) -> Response:
    return render(
        request,
        "oauth_app_created.html",
        **page_context(who, "oauth_apps"),
        app=client_resource(new.client),
        secret=new.secret,
        heading=heading,
    )


@router.get(APPS)
def apps_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _apps_page(request, who)


@router.post(APPS)
def register_app(
    request: Request, who: Visitor = Depends(signed_in), form: FormData = Depends(posted_form)
) -> Response:
    check_form(request, who, form)
    require_scope(who, "oauth_clients:write")
    uris = [u.strip() for u in str(form.get("redirect_uris", "")).splitlines() if u.strip()]
    kind: ClientType = "public" if form.get("type") == "public" else "confidential"
    spec = ClientSpec(
        name=str(form.get("name", "")),
        redirect_uris=uris,
        scopes=[str(s) for s in form.getlist("scopes")],
        type=kind,
    )
    try:
        new = tessera_of(request).oauth_clients.create(who.principal, spec, client_info(request))
    except TesseraError as refused:
        if isinstance(refused, Forbidden):
            raise
        return _apps_page(request, who, refused.detail)
    return _created(request, who, new, "App registered")


@router.post(APPS + "/{client_id}/rotate")
def rotate_secret(
    client_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    clients = tessera_of(request).oauth_clients
    new = clients.rotate_secret(who.principal, client_id, client_info(request))
    return _created(request, who, new, "New client secret")


@router.post(APPS + "/{client_id}/delete")
def delete_app(
    client_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    tessera_of(request).oauth_clients.delete(who.principal, client_id, client_info(request))
    return redirect(request, who, APPS)


@router.get(AUTHORIZED)
def authorized_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    grants: list[dict[str, Any]] = [
        grant_resource(tessera, g) for g in tessera.oauth_grants.of_person(who.user.id)
    ]
    return render(
        request, "authorized_apps.html", **page_context(who, "authorized_apps"), grants=grants
    )


@router.post(AUTHORIZED + "/{grant_id}/revoke")
def revoke_grant(
    grant_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    tessera_of(request).oauth_grants.revoke(who.user.id, grant_id, client_info(request))
    return redirect(request, who, AUTHORIZED)
