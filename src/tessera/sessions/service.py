"""Server-side browser sessions (SPEC section 3).

The cookie carries a random token; the database keeps only its digest. A session ends after
``max_age_days`` without use (the idle limit, pushed back at most once a minute) or
``absolute_max_days`` after sign-in, whichever comes first. Every sign-in makes a new session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tessera import audit
from tessera.accounts.store import AccountStore
from tessera.clock import Clock, rfc3339
from tessera.config import SessionConfig
from tessera.errors import NotFound
from tessera.ids import digest, new_id
from tessera.principal import ClientInfo
from tessera.sessions.store import BrowserSession, SessionStore
from tessera.tokens.store import TokenStore

REFRESH_EVERY_SECONDS = 60


@dataclass(frozen=True)
class ActiveSession:
    id: str
    user_id: str
    refreshed: bool  # the idle limit moved: the cookie should be sent again


class BrowserSessions:
    def __init__(
        self,
        config: SessionConfig,
        store: SessionStore,
        tokens: TokenStore,
        accounts: AccountStore,
        clock: Clock,
    ) -> None:
        self._config = config
        self._store = store
        self._accounts = accounts  # a session's events go to each organization of its person
        self._tokens = tokens  # signing out everywhere ends the refresh tokens too
        self._clock = clock

    @property
    def max_age_seconds(self) -> int:
        return self._config.max_age_days * 86400

    def start(
        self, user_id: str, client: ClientInfo, *, provider: str | None = None
    ) -> tuple[BrowserSession, str]:
        """A new session (a new id and token at every sign-in); returns it and the cookie value.
        ``provider``: the sign-in provider that vouched for the person, if one did."""
        now = self._clock.now()
        raw = secrets.token_urlsafe(32)
        started = BrowserSession(
            id=new_id("ses"),
            digest=digest(raw),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            idle_expires_at=now + timedelta(days=self._config.max_age_days),
            absolute_expires_at=now + timedelta(days=self._config.absolute_max_days),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:400] or None,
        )
        with self._store.transaction() as tx:
            tx.add(started)
            # Like the end of a session: every organization of the person sees it begin.
            for event in audit.in_organizations(
                "user.logged_in",
                self._accounts.organization_ids(user_id),
                now=now,
                actor=("user", user_id),
                target=("session", started.id),
                client=client,
                details={"via": "session", **({"provider": provider} if provider else {})},
            ):
                tx.record(event)
        return started, raw

    def authenticate(self, raw: str) -> ActiveSession | None:
        """The live session behind a cookie value, its idle limit pushed back if due."""
        now = self._clock.now()
        found = self._store.by_digest(digest(raw))
        if found is None or not found.alive(now):
            return None
        if (now - found.last_seen_at).total_seconds() < REFRESH_EVERY_SECONDS:
            return ActiveSession(found.id, found.user_id, refreshed=False)
        idle_until = now + timedelta(days=self._config.max_age_days)
        self._store.extend(found.id, now, idle_until)
        return ActiveSession(found.id, found.user_id, refreshed=True)

    def list(self, user_id: str) -> list[BrowserSession]:
        now = self._clock.now()
        return [s for s in self._store.open_sessions(user_id) if s.alive(now)]

    def end(self, user_id: str, session_id: str, client: ClientInfo) -> None:
        now = self._clock.now()
        with self._store.transaction() as tx:
            found = tx.get(session_id)
            if found is None or found.user_id != user_id or found.ended_at is not None:
                raise NotFound(f"No session {session_id}.")
            tx.end(session_id, now)
            organizations = self._accounts.organization_ids(user_id)
            for event in _ended(user_id, session_id, organizations, now, client):
                tx.record(event)

    def end_all(self, user_id: str, client: ClientInfo) -> int:
        """Sign out everywhere: every session and every refresh-token family of the user, in
        one transaction."""
        now = self._clock.now()
        with self._store.transaction() as tx, self._tokens.transaction() as tokens:
            ended = tx.open_sessions(user_id)
            organizations = self._accounts.organization_ids(user_id)
            for each in ended:
                tx.end(each.id, now)
                for event in _ended(user_id, each.id, organizations, now, client):
                    tx.record(event)
            tokens.revoke_families_of(user_id, now)
        return len(ended)


def _ended(
    user_id: str, session_id: str, organizations: list[str], now: datetime, client: ClientInfo
) -> list[audit.AuditEvent]:
    """In each organization of the person: the session could act in every one of them."""
    return audit.in_organizations(
        "session.ended",
        organizations,
        now=now,
        actor=("user", user_id),
        target=("session", session_id),
        client=client,
    )


def session_resource(session: BrowserSession, current_id: str | None) -> dict[str, Any]:
    return {
        "id": session.id,
        "object": "session",
        "created_at": rfc3339(session.created_at),
        "last_seen_at": rfc3339(session.last_seen_at),
        "expires_at": rfc3339(min(session.idle_expires_at, session.absolute_expires_at)),
        "ip": session.ip,
        "user_agent": session.user_agent,
        "current": session.id == current_id,
    }
