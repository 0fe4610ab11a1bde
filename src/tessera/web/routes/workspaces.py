"""Workspaces of the caller's organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tessera.accounts.records import workspace_resource
from tessera.principal import Principal
from tessera.web.deps import client_info, requires, tessera_of

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])


class WorkspaceBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.get("")
def list_workspaces(
    request: Request, principal: Principal = Depends(requires("workspaces:read"))
) -> dict[str, Any]:
    rows = tessera_of(request).workspaces.visible_to(principal)
    return {"data": [workspace_resource(w) for w in rows], "next_cursor": None}


@router.post("", status_code=201)
def create_workspace(
    body: WorkspaceBody,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    workspaces = tessera_of(request).workspaces
    return workspace_resource(workspaces.create(principal, body.name, client_info(request)))


@router.get("/{workspace_id}")
def get_workspace(
    workspace_id: str, request: Request, principal: Principal = Depends(requires("workspaces:read"))
) -> dict[str, Any]:
    return workspace_resource(tessera_of(request).workspaces.get(principal, workspace_id))


@router.patch("/{workspace_id}")
def rename_workspace(
    workspace_id: str,
    body: WorkspaceBody,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    workspaces = tessera_of(request).workspaces
    renamed = workspaces.rename(principal, workspace_id, body.name, client_info(request))
    return workspace_resource(renamed)


@router.delete("/{workspace_id}")
def delete_workspace(
    workspace_id: str,
    request: Request,
    principal: Principal = Depends(requires("workspaces:write")),
) -> dict[str, Any]:
    deleted = tessera_of(request).workspaces.delete(principal, workspace_id, client_info(request))
    return {**workspace_resource(deleted), "deleted": True}
