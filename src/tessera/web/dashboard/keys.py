"""Settings → API Keys: list and filter, create, see once, rename, roll, revoke (SPEC 10).

Creating and rolling answer with a redirect to a page that shows the new secret once (it travels
in a cookie that page clears, ``carried.py``): reloading that page never makes another key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tessera.deployment import Tessera
from tessera.edge.problems import status_of
from tessera.errors import TesseraError
from tessera.keys.records import ApiKey, key_resource
from tessera.keys.rules import KeySpec
from tessera.scopes import ADMIN_ROLES
from tessera.web.dashboard import carried, forms
from tessera.web.dashboard.key_views import KeyFilter, key_views, scope_heading
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
    usage_chart,
    workspace_names,
)
from tessera.web.deps import client_info, tessera_of

router = APIRouter(include_in_schema=False)
KEYS = "/settings/api-keys"
NO_STORE = {"Cache-Control": "no-store"}


@router.get(KEYS)
def keys_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    organization_id = organization_of(who)
    rows = _every_key(tessera, organization_id)
    _, names = workspace_names(tessera, organization_id)
    chosen = KeyFilter.of(request.query_params)
    views = key_views(rows, tessera.clock.now())
    return render(
        request,
        "keys.html",
        **page_context(who, "keys"),
        keys=[v for v in views if chosen.keeps(v)],
        any_keys=bool(views),
        chosen=chosen,
        workspace_names=names,
        can_write="api_keys:write" in who.principal.scopes,
    )


def _every_key(tessera: Tessera, organization_id: str) -> list[ApiKey]:
    found: list[ApiKey] = []
    cursor: str | None = None
    while True:
        page = tessera.api_keys.page(
            organization_id, limit=100, cursor=cursor, include_revoked=True
        )
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None or len(found) >= 1000:
            return found


@router.get(KEYS + "/new")
def new_key_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _new_key_form(request, who, {})


def _new_key_form(
    request: Request,
    who: Visitor,
    form: dict[str, Any],
    error: TesseraError | None = None,
) -> Response:
    tessera = tessera_of(request)
    workspaces, _ = workspace_names(tessera, organization_of(who))
    is_admin = who.principal.role in ADMIN_ROLES
    groups = [
        (
            scope_heading(resource),
            [
                s
                for s in scopes
                if s.name in who.principal.scopes and (is_admin or not s.admin_only)
            ],
        )
        for resource, scopes in tessera.catalog.grouped().items()
    ]
    return render(
        request,
        "key_new.html",
        status=status_of(error) if error else 200,
        error=error.detail if error else None,
        errors=forms.field_errors(error) if error else {},
        **page_context(who, "keys"),
        form=form,
        scope_groups=[(r, s) for r, s in groups if s],
        workspaces=workspaces,
        max_days=tessera.config.max_key_lifetime_days,
    )


@router.post(KEYS)
def create_key(
    request: Request, who: Visitor = Depends(signed_in), form: FormData = Depends(posted_form)
) -> Response:
    tessera = tessera_of(request)
    kept = {
        "name": str(form.get("name", "")),
        "environment": str(form.get("environment", "live")),
        "expires_in_days": str(form.get("expires_in_days", "")),
        "scopes": [str(s) for s in form.getlist("scopes")],
        "workspace_ids": [str(w) for w in form.getlist("workspace_ids")],
    }
    try:
        check_form(request, who, form)
        new = tessera.api_keys.create(who.principal, _spec(tessera, kept), client_info(request))
    except TesseraError as refused:
        return _new_key_form(request, who, kept, refused)
    return _show_once(request, who, new.key.id, new.raw, "API key created.")


def _spec(tessera: Tessera, form: dict[str, Any]) -> KeySpec:
    days = form["expires_in_days"].strip()
    expires = tessera.clock.now() + timedelta(days=int(days)) if days.isdigit() else None
    return KeySpec(
        name=form["name"],
        scopes=form["scopes"] or None,
        workspace_ids=form["workspace_ids"] or None,
        environment=form["environment"],
        expires_at=expires,
    )


def _show_once(request: Request, who: Visitor, key_id: str, raw: str, notice: str) -> Response:
    """Redirect to the page that shows the new key's secret, carried there once."""
    session_id = who.principal.facts["session_id"]
    secret = carried.carry(tessera_of(request), session_id, carried.SHOWN_ONCE, f"{key_id} {raw}")
    return redirect(request, who, f"{KEYS}/{key_id}/created", notice, secret)


@router.get(KEYS + "/{key_id}/created")
def key_created_page(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    row = tessera.api_keys.get(organization_of(who), key_id)
    session_id = who.principal.facts["session_id"]
    found = carried.take(request, tessera, session_id, carried.SHOWN_ONCE)
    raw = found.split(" ", 1)[1] if found and found.split(" ", 1)[0] == key_id else None
    response = render(
        request,
        "key_created.html",
        **page_context(who, "keys"),
        key=key_resource(row, tessera.clock.now()),
        raw=raw,
    )
    response.headers.update(NO_STORE)
    if carried.SHOWN_ONCE in request.cookies:
        response.headers.append("set-cookie", carried.cleared(tessera, carried.SHOWN_ONCE))
    return response


@router.get(KEYS + "/{key_id}")
def key_page(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    organization_id = organization_of(who)
    row = tessera.api_keys.get(organization_id, key_id)
    days = tessera.api_keys.usage(organization_id, key_id, 30)
    _, names = workspace_names(tessera, organization_id)
    view = key_views(_every_key(tessera, organization_id), tessera.clock.now())
    return render(
        request,
        "key_detail.html",
        **page_context(who, "keys"),
        key=next(v for v in view if v["id"] == row.id),
        creator=_creator(tessera, row, {v["id"]: v["name"] for v in view}),
        last_used_network=row.last_used_network,
        chart=usage_chart(days),
        workspace_names=names,
        total_requests=sum(d["requests"] for d in days),
        total_rejected=sum(d["rejected"] for d in days),
        can_write="api_keys:write" in who.principal.scopes,
    )


def _creator(tessera: Tessera, row: ApiKey, key_names: dict[str, str]) -> str:
    """Who created the key, by name: a person, or the key that created it."""
    if row.created_by.startswith("key_"):
        return f"API key {key_names.get(row.created_by, row.created_by)}"
    user = tessera.accounts.user(row.created_by)
    if user is None:
        return row.created_by
    return f"{user.name} ({user.email})" if user.name else user.email


@router.post(KEYS + "/{key_id}/rename")
def rename_key(
    key_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    require_scope(who, "api_keys:write")
    name = str(form.get("name", ""))
    tessera_of(request).api_keys.update(who.principal, key_id, {"name": name}, client_info(request))
    back = str(form.get("back", ""))
    path = KEYS if back == "list" else f"{KEYS}/{key_id}"
    return redirect(request, who, path, f"Renamed to {name.strip()}.")


@router.get(KEYS + "/{key_id}/revoke")
def revoke_page(key_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    tessera = tessera_of(request)
    row = tessera.api_keys.get(organization_of(who), key_id)
    return render(
        request,
        "key_revoke.html",
        **page_context(who, "keys"),
        key=key_resource(row, tessera.clock.now()),
    )


@router.post(KEYS + "/{key_id}/revoke")
def revoke_key(
    key_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    require_scope(who, "api_keys:write")
    row = tessera_of(request).api_keys.revoke(who.principal, key_id, client_info(request))
    return redirect(request, who, KEYS, f"{row.name} ({row.key_prefix}…) is revoked.")


@router.post(KEYS + "/{key_id}/roll")
def roll_key(
    key_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    require_scope(who, "api_keys:write")
    grace = str(form.get("expires_old_in_seconds", "0"))
    seconds = int(grace) if grace.isdigit() else 0
    new = tessera_of(request).api_keys.roll(who.principal, key_id, seconds, client_info(request))
    notice = (
        f"Key rolled. The old key keeps working for {_duration(seconds)}."
        if seconds
        else "Key rolled. The old key no longer works."
    )
    return _show_once(request, who, new.key.id, new.raw, notice)


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds} seconds"
