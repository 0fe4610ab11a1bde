"""What the keys capability needs from storage: its keys, and their usage counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from tessera.audit import AuditWriter
from tessera.keys.records import ApiKey
from tessera.pagination import Page


class KeyChanges(AuditWriter, Protocol):
    """One transaction: its changes and its audit events commit together or not at all."""

    def get(self, key_id: str) -> ApiKey | None: ...

    def existing_workspaces(self, organization_id: str, workspace_ids: list[str]) -> set[str]:
        """Which of ``workspace_ids`` are workspaces of the organization."""
        ...

    def add(self, key: ApiKey) -> None: ...

    def rename(self, key_id: str, name: str) -> None: ...

    def revoke(self, key_id: str, at: datetime) -> None: ...

    def set_expiry(self, key_id: str, expires_at: datetime) -> None: ...


class KeyStore(Protocol):
    def by_digest(self, digest: str) -> ApiKey | None: ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def page(
        self, organization_id: str, *, limit: int, cursor: str | None, include_revoked: bool
    ) -> Page[ApiKey]:
        """The organization's keys, newest first."""
        ...

    def transaction(self) -> AbstractContextManager[KeyChanges]: ...


@dataclass(frozen=True)
class KeyUse:
    """Uses of one key counted in memory: (accepted, refused) per day, and the last accepted."""

    key_id: str
    days: Mapping[date, tuple[int, int]]
    last_used_at: datetime | None
    last_used_network: str | None = None  # the network of the last accepted use


class UsageStore(Protocol):
    def add(self, uses: Sequence[KeyUse]) -> None:
        """Add the counts to those stored (per key and day) and move each key's last use, in
        one transaction."""
        ...

    def days(self, key_id: str, since: date) -> dict[date, tuple[int, int]]:
        """(accepted, refused) per day from ``since`` on; days without uses are left out."""
        ...
