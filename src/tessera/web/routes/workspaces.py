"""Workspaces of the caller's organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tessera.accounts.records import workspace_resource
from tessera.principal import Principal
from tessera.web import resources
from tessera.web.deps import client_info, requires, tessera_of
from tessera.web.inputs import ApiBody, Name
from tessera.web.openapi import AUTHENTICATED, CREDENTIALS, JSON_BODY, problems

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])


class WorkspaceBody(ApiBody):
    name: Name


@router.get(
    "",
    response_model=resources.WorkspaceList,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def list_workspaces(
    request: Request, principal: Principal = Depends(requires("workspaces:read"))
) -> dict[str, Any]:
    rows = tessera_of(request).workspaces.visible_to(principal)
    return {"data": [workspace_resource(w) for w in rows], "next_cursor": None}


@router.post(
    "",
    status_code=201,
    response_model=resources.Workspace,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def create_workspace(
    body: WorkspaceBody,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    workspaces = tessera_of(request).workspaces
    return workspace_resource(workspaces.create(principal, body.name, client_info(request)))


@router.get(
    "/{workspace_id}",
    response_model=resources.Workspace,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def get_workspace(
    workspace_id: str, request: Request, principal: Principal = Depends(requires("workspaces:read"))
) -> dict[str, Any]:
    return workspace_resource(tessera_of(request).workspaces.get(principal, workspace_id))


@router.patch(
    "/{workspace_id}",
    response_model=resources.Workspace,
    responses=problems(*AUTHENTICATED, *JSON_BODY),
    openapi_extra=CREDENTIALS,
)
def rename_workspace(
    workspace_id: str,
    body: WorkspaceBody,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    workspaces = tessera_of(request).workspaces
    renamed = workspaces.rename(principal, workspace_id, body.name, client_info(request))
    return workspace_resource(renamed)


@router.delete(
    "/{workspace_id}",
    response_model=resources.DeletedWorkspace,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def delete_workspace(
    workspace_id: str,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    deleted = tessera_of(request).workspaces.delete(principal, workspace_id, client_info(request))
    return {**workspace_resource(deleted), "deleted": True}
