"""Workspaces of the caller's organization."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tessera import audit
from tessera.accounts import workspaces
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
    with tessera_of(request).db.session() as session:
        rows = workspaces.list_workspaces(session, principal.organization())
        visible = [
            w for w in rows if principal.workspace_ids is None or w.id in principal.workspace_ids
        ]
        return {"data": [workspaces.workspace_resource(w) for w in visible], "next_cursor": None}


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
    tessera = tessera_of(request)
    now = tessera.clock.now()
    with tessera.db.session() as session:
        workspace = workspaces.create_workspace(session, principal.organization(), body.name, now)
        _audit(
            session, "workspace.created", principal, workspace.id, request, {"name": workspace.name}
        )
        return workspaces.workspace_resource(workspace)


@router.get(
    "/{workspace_id}",
    response_model=resources.Workspace,
    responses=problems(*AUTHENTICATED),
    openapi_extra=CREDENTIALS,
)
def get_workspace(
    workspace_id: str, request: Request, principal: Principal = Depends(requires("workspaces:read"))
) -> dict[str, Any]:
    with tessera_of(request).db.session() as session:
        workspace = workspaces.get_workspace(session, principal.organization(), workspace_id)
        return workspaces.workspace_resource(workspace)


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
    tessera = tessera_of(request)
    with tessera.db.session() as session:
        workspace = workspaces.get_workspace(session, principal.organization(), workspace_id)
        workspaces.rename_workspace(workspace, body.name)
        _audit(
            session, "workspace.updated", principal, workspace.id, request, {"name": workspace.name}
        )
        return workspaces.workspace_resource(workspace)


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
    tessera = tessera_of(request)
    with tessera.db.session() as session:
        workspace = workspaces.get_workspace(session, principal.organization(), workspace_id)
        resource = workspaces.workspace_resource(workspace)
        session.delete(workspace)
        _audit(
            session, "workspace.deleted", principal, workspace_id, request, {"name": workspace.name}
        )
        return {**resource, "deleted": True}


def _audit(
    session: Any,
    action: str,
    principal: Principal,
    target: str,
    request: Request,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        action,
        now=tessera_of(request).clock.now(),
        organization_id=principal.organization_id,
        actor=audit.actor_of(principal),
        target=("workspace", target),
        client=client_info(request),
        details=details,
    )
