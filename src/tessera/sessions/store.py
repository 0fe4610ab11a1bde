"""What browser sessions need from storage."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tessera.audit import AuditWriter


@dataclass(frozen=True)
class BrowserSession:
    id: str
    digest: str = field(repr=False)
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    ended_at: datetime | None = None
    ip: str | None = None
    user_agent: str | None = None

    def alive(self, now: datetime) -> bool:
        return (
            self.ended_at is None and self.idle_expires_at > now and self.absolute_expires_at > now
        )


class SessionChanges(AuditWriter, Protocol):
    """One transaction: its changes and its audit events commit together or not at all."""

    def get(self, session_id: str) -> BrowserSession | None: ...

    def open_sessions(self, user_id: str) -> list[BrowserSession]:
        """The user's sessions not ended, the newest first."""
        ...

    def add(self, session: BrowserSession) -> None: ...

    def end(self, session_id: str, at: datetime) -> None: ...


class SessionStore(Protocol):
    def by_digest(self, digest: str) -> BrowserSession | None: ...

    def open_sessions(self, user_id: str) -> list[BrowserSession]:
        """The user's sessions not ended, the newest first."""
        ...

    def extend(self, session_id: str, last_seen_at: datetime, idle_expires_at: datetime) -> None:
        """Record a use and push back the idle limit."""
        ...

    def transaction(self) -> AbstractContextManager[SessionChanges]: ...
