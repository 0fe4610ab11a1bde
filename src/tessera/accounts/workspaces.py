"""Workspaces: containers inside an organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tessera.clock import rfc3339
from tessera.errors import NotFound
from tessera.ids import new_id
from tessera.storage.models import Workspace
from tessera.text import checked_name


def list_workspaces(session: Session, organization_id: str) -> list[Workspace]:
    query = (
        select(Workspace)
        .where(Workspace.organization_id == organization_id)
        .order_by(Workspace.created_at, Workspace.id)
    )
    return list(session.scalars(query))


def get_workspace(session: Session, organization_id: str, workspace_id: str) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or workspace.organization_id != organization_id:
        raise NotFound(f"No workspace {workspace_id} in this organization.")
    return workspace


def create_workspace(session: Session, organization_id: str, name: str, now: datetime) -> Workspace:
    workspace = Workspace(
        id=new_id("ws"), organization_id=organization_id, name=checked_name(name), created_at=now
    )
    session.add(workspace)
    session.flush()
    return workspace


def rename_workspace(workspace: Workspace, name: str) -> None:
    workspace.name = checked_name(name)


def existing_ids(session: Session, organization_id: str, ids: list[str]) -> set[str]:
    query = select(Workspace.id).where(
        Workspace.organization_id == organization_id, Workspace.id.in_(ids)
    )
    return set(session.scalars(query))


def workspace_resource(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "object": "workspace",
        "name": workspace.name,
        "organization_id": workspace.organization_id,
        "created_at": rfc3339(workspace.created_at),
    }
