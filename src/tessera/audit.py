"""The audit log: append-only events, each written in the transaction of the change it records.

A service builds an :class:`AuditEvent` with :func:`event` and hands it to the transaction of
its store (every store transaction is an :class:`AuditWriter`), so the change and its record
commit together or not at all. Facts with no change to go with them (a failed login) go to
:meth:`AuditStore.record` on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

from tessera.clock import rfc3339
from tessera.ids import new_id
from tessera.pagination import Page, check_limit
from tessera.principal import ClientInfo, Principal

Action = Literal[
    "api_key.created",
    "api_key.updated",
    "api_key.rolled",
    "api_key.revoked",
    "user.signed_up",
    "user.logged_in",
    "user.login_failed",
    "user.identity_linked",
    "user.identity_unlinked",
    "session.ended",
    "refresh_token.reuse_detected",
    "member.role_changed",
    "member.added",
    "member.removed",
    "workspace.created",
    "workspace.updated",
    "workspace.deleted",
    "service_token.created",
    "service_token.revoked",
    "signing_key.rotated",
    "invitation.created",
    "invitation.accepted",
    "invitation.revoked",
    "user.password_reset_requested",
    "user.password_reset",
    "user.email_verified",
    "oauth_client.created",
    "oauth_client.updated",
    "oauth_client.secret_rotated",
    "oauth_client.deleted",
    "oauth_grant.created",
    "oauth_grant.revoked",
    "oauth_code.replayed",
]
ACTIONS: tuple[str, ...] = get_args(Action)
Actor = tuple[str, str | None]
SYSTEM: Actor = ("system", None)


@dataclass(frozen=True)
class AuditEvent:
    id: str
    action: str
    organization_id: str | None
    actor_kind: str
    actor_id: str | None
    target_kind: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    details: dict[str, Any] = field(default_factory=dict)


class AuditWriter(Protocol):
    def record(self, event: AuditEvent) -> None:
        """Add ``event`` to the transaction this writer belongs to."""
        ...


class AuditStore(Protocol):
    def record(self, *events: AuditEvent) -> None:
        """Write ``events`` in a transaction of their own."""
        ...

    def page(
        self,
        organization_id: str,
        *,
        limit: int,
        cursor: str | None,
        action: str | None,
        actor_id: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> Page[AuditEvent]:
        """Newest first; ``action`` picks one action (``api_key.revoked``) or a family
        (``api_key``), ``actor_id`` one actor, ``since``/``before`` a span of time (from
        ``since`` included to ``before`` excluded)."""
        ...


class AuditLog:
    """Reading the log, and recording the facts that change nothing else."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def record(self, *events: AuditEvent) -> None:
        self._store.record(*events)

    def page(
        self,
        organization_id: str,
        *,
        limit: int,
        cursor: str | None,
        action: str | None,
        actor_id: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> Page[AuditEvent]:
        limit = check_limit(limit)
        return self._store.page(
            organization_id,
            limit=limit,
            cursor=cursor,
            action=action,
            actor_id=actor_id,
            since=since,
            before=before,
        )


def actor_of(principal: Principal | None) -> Actor:
    if principal is None:
        return SYSTEM
    kind = {
        "api_key": "api_key",
        "user": "user",
        "service": "service",
        "oauth_client": "oauth_client",
    }[principal.kind]
    return kind, principal.id


def by_principal(
    action: Action,
    actor: Principal,
    target: tuple[str, str],
    *,
    now: datetime,
    client: ClientInfo,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A change a caller made in the organization it acts in."""
    return event(
        action,
        now=now,
        organization_id=actor.organization_id,
        actor=actor_of(actor),
        target=target,
        client=client,
        details=details,
    )


def event(
    action: Action,
    *,
    now: datetime,
    organization_id: str | None,
    actor: Actor,
    target: tuple[str, str] | None = None,
    client: ClientInfo | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    client = client or ClientInfo()
    return AuditEvent(
        id=new_id("evt"),
        action=action,
        organization_id=organization_id,
        actor_kind=actor[0],
        actor_id=actor[1],
        target_kind=target[0] if target else None,
        target_id=target[1] if target else None,
        ip=client.ip,
        user_agent=(client.user_agent or "")[:400] or None,
        created_at=now,
        details=details or {},
    )


def in_organizations(
    action: Action, organization_ids: list[str], **fields: Any
) -> list[AuditEvent]:
    """An event about one person, once in each of their organizations so that each one's log
    shows it; with none, once, in no organization's log."""
    targets: list[str | None] = [*organization_ids] or [None]
    return [event(action, organization_id=o, **fields) for o in targets]


def to_resource(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "audit_event",
        "action": event.action,
        "actor": {"kind": event.actor_kind, "id": event.actor_id},
        "target": {"kind": event.target_kind, "id": event.target_id} if event.target_id else None,
        "organization_id": event.organization_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "created_at": rfc3339(event.created_at),
        "details": event.details,
    }
