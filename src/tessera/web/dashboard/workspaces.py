"""Settings → Workspaces (worded with the deployment's ``workspace_label``): create, rename and
delete, through the same services and body model as ``/v1/workspaces``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tessera.edge.problems import status_of
from tessera.errors import TesseraError
from tessera.web.dashboard import forms
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
from tessera.web.routes.workspaces import WorkspaceBody

router = APIRouter(include_in_schema=False)
PAGE = "/settings/workspaces"


@router.get(PAGE)
def workspaces_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _page(request, who)


def _page(
    request: Request,
    who: Visitor,
    error: TesseraError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    require_scope(who, "workspaces:read")
    tessera = tessera_of(request)
    return render(
        request,
        "workspaces.html",
        status=status_of(error) if error else 200,
        error=error.detail if error else None,
        errors=forms.field_errors(error) if error else {},
        form=form or {},
        **page_context(who, "workspaces"),
        workspaces=tessera.workspaces.in_organization(organization_of(who)),
        can_write="workspaces:write" in who.principal.scopes,
    )


@router.post(PAGE)
def create_workspace(
    request: Request, who: Visitor = Depends(signed_in), form: FormData = Depends(posted_form)
) -> Response:
    label = tessera_of(request).config.workspace_label
    try:
        check_form(request, who, form)
        require_scope(who, "workspaces:write")
        body = forms.read(WorkspaceBody, form)
        made = tessera_of(request).workspaces.create(who.principal, body.name, client_info(request))
    except TesseraError as refused:
        return _page(request, who, refused, {"name": str(form.get("name", ""))})
    return redirect(request, who, PAGE, f"{label.capitalize()} {made.name} created.")


@router.post(PAGE + "/{workspace_id}/rename")
def rename_workspace(
    workspace_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    try:
        check_form(request, who, form)
        require_scope(who, "workspaces:write")
        body = forms.read(WorkspaceBody, form)
        renamed = tessera_of(request).workspaces.rename(
            who.principal, workspace_id, body.name, client_info(request)
        )
    except TesseraError as refused:
        return _page(request, who, refused)
    return redirect(request, who, PAGE, f"Renamed to {renamed.name}.")


@router.get(PAGE + "/{workspace_id}/delete")
def delete_page(workspace_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    require_scope(who, "workspaces:write")
    workspace = tessera_of(request).workspaces.get(who.principal, workspace_id)
    return render(
        request, "workspace_delete.html", **page_context(who, "workspaces"), workspace=workspace
    )


@router.post(PAGE + "/{workspace_id}/delete")
def delete_workspace(
    workspace_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    require_scope(who, "workspaces:write")
    gone = tessera_of(request).workspaces.delete(who.principal, workspace_id, client_info(request))
    label = tessera_of(request).config.workspace_label
    return redirect(request, who, PAGE, f"{label.capitalize()} {gone.name} deleted.")
