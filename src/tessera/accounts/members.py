"""Members of an organization and their roles.

Only owners and admins change roles; only an owner grants or takes away ``owner``; the last
owner can be neither demoted nor removed, so an organization is never left without one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tessera import audit
from tessera.accounts.records import Member
from tessera.accounts.store import AccountChanges, AccountStore
from tessera.clock import Clock
from tessera.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ADMIN_ROLES, ScopeCatalog
from tessera.tokens.store import TokenStore


class Members:
    def __init__(
        self, store: AccountStore, tokens: TokenStore, catalog: ScopeCatalog, clock: Clock
    ) -> None:
        self._store = store
        self._tokens = tokens  # a member who leaves loses their tokens for the organization
        self._catalog = catalog
        self._clock = clock

    def list(self, organization_id: str) -> list[Member]:
        return self._store.members(organization_id)

    def add(self, actor: Principal, *, email: str, role: str, client: ClientInfo) -> Member:
        """Add an existing user to the actor's organization."""
        organization_id = actor.organization()
        self._check_may_assign(actor, role)
        now = self._clock.now()
        with self._store.transaction() as tx:
            user = tx.user_by_email(email)
            if user is None:
                raise NotFound("No user with this email; they must sign up first.")
            if tx.member(organization_id, user.id) is not None:
                raise Conflict("This user is already a member.")
            tx.add_member(organization_id, user.id, role, now)
            tx.record(self._event("member.added", actor, user.id, client, {"role": role}))
        return Member(user, organization_id, role, now)

    def change_role(
        self, actor: Principal, *, user_id: str, role: str, client: ClientInfo
    ) -> Member:
        with self._store.transaction() as tx:
            member = _find(tx, actor.organization(), user_id)
            self._check_may_assign(actor, role)
            _check_may_touch(actor, member)
            if member.role == "owner" and role != "owner":
                _keep_an_owner(tx, member.organization_id)
            tx.set_role(member.organization_id, user_id, role)
            details = {"from": member.role, "to": role}
            tx.record(self._event("member.role_changed", actor, user_id, client, details))
        return replace(member, role=role)

    def remove(self, actor: Principal, *, user_id: str, client: ClientInfo) -> Member:
        now = self._clock.now()
        with self._store.transaction() as tx, self._tokens.transaction() as tokens:
            member = _find(tx, actor.organization(), user_id)
            if actor.kind != "user" or actor.user_id != user_id:  # only people leave by themselves
                _check_may_touch(actor, member)
            if member.role == "owner":
                _keep_an_owner(tx, member.organization_id)
            tx.remove_member(member.organization_id, user_id)
            # Their tokens for this organization are refused from now on, not at their expiry.
            tokens.revoke_families_in(user_id, member.organization_id, now)
            details = {"role": member.role}
            tx.record(self._event("member.removed", actor, user_id, client, details))
        return member

    def _check_may_assign(self, actor: Principal, role: str) -> None:
        if role not in self._catalog.roles:
            raise ValidationFailed(
                f"Unknown role '{role}'.",
                errors=[FieldError("role", f"one of {sorted(self._catalog.roles)}")],
            )
        if actor.role not in ADMIN_ROLES:
            raise Forbidden("Only owners and admins manage members.")
        if role == "owner" and actor.role != "owner":
            raise Forbidden("Only an owner can make someone an owner.")

    def _event(
        self,
        action: audit.Action,
        actor: Principal,
        user_id: str,
        client: ClientInfo,
        details: dict[str, Any],
    ) -> audit.AuditEvent:
        target = ("user", user_id)
        return audit.by_principal(
            action, actor, target, now=self._clock.now(), client=client, details=details
        )


def _find(tx: AccountChanges, organization_id: str, user_id: str) -> Member:
    member = tx.member(organization_id, user_id)
    if member is None:
        raise NotFound(f"No member {user_id} in this organization.")
    return member


def _check_may_touch(actor: Principal, member: Member) -> None:
    if actor.role not in ADMIN_ROLES:
        raise Forbidden("Only owners and admins manage members.")
    if member.role == "owner" and actor.role != "owner":
        raise Forbidden("Only an owner can change or remove an owner.")


def _keep_an_owner(tx: AccountChanges, organization_id: str) -> None:
    if tx.owner_count(organization_id) <= 1:
        raise Conflict("An organization needs at least one owner.")
