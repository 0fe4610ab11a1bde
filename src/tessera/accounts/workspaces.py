"""Workspaces: containers inside an organization."""

from __future__ import annotations

from dataclasses import replace

from tessera import audit
from tessera.accounts.records import Workspace, workspace_resource
from tessera.accounts.store import AccountReads, AccountStore
from tessera.clock import Clock
from tessera.errors import NotFound
from tessera.ids import new_id
from tessera.principal import ClientInfo, Principal
from tessera.text import checked_name

__all__ = ["Workspaces", "workspace_resource"]


class Workspaces:
    def __init__(self, store: AccountStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def visible_to(self, actor: Principal) -> list[Workspace]:
        """The organization's workspaces the actor may reach, oldest first."""
        return [
            w
            for w in self.in_organization(actor.organization())
            if actor.workspace_ids is None or w.id in actor.workspace_ids
        ]

    def in_organization(self, organization_id: str) -> list[Workspace]:
        return self._store.workspaces(organization_id)

    def get(self, actor: Principal, workspace_id: str) -> Workspace:
        return _find(self._store, actor.organization(), workspace_id)

    def create(self, actor: Principal, name: str, client: ClientInfo) -> Workspace:
        now = self._clock.now()
        workspace = Workspace(new_id("ws"), actor.organization(), checked_name(name), now)
        with self._store.transaction() as tx:
            tx.add_workspace(workspace)
            tx.record(self._event("workspace.created", actor, workspace, client))
        return workspace

    def rename(
        self, actor: Principal, workspace_id: str, name: str, client: ClientInfo
    ) -> Workspace:
        with self._store.transaction() as tx:
            workspace = _find(tx, actor.organization(), workspace_id)
            workspace = replace(workspace, name=checked_name(name))
            tx.rename_workspace(workspace.id, workspace.name)
            tx.record(self._event("workspace.updated", actor, workspace, client))
        return workspace

    def delete(self, actor: Principal, workspace_id: str, client: ClientInfo) -> Workspace:
        with self._store.transaction() as tx:
            workspace = _find(tx, actor.organization(), workspace_id)
            tx.delete_workspace(workspace.id)
            tx.record(self._event("workspace.deleted", actor, workspace, client))
        return workspace

    def _event(
        self, action: audit.Action, actor: Principal, workspace: Workspace, client: ClientInfo
    ) -> audit.AuditEvent:
        target = ("workspace", workspace.id)
        details = {"name": workspace.name}
        return audit.by_principal(
            action, actor, target, now=self._clock.now(), client=client, details=details
        )


def _find(store: AccountReads, organization_id: str, workspace_id: str) -> Workspace:
    workspace = store.workspace(workspace_id)
    if workspace is None or workspace.organization_id != organization_id:
        raise NotFound(f"No workspace {workspace_id} in this organization.")
    return workspace
