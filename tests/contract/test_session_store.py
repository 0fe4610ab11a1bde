"""SessionStore: browser sessions read back as written, and end together with refresh tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tessera.accounts.records import User
from tessera.sessions.store import BrowserSession
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database
from tessera.storage.sessions import SqlSessionStore
from tessera.storage.tokens import SqlTokenStore
from tessera.tokens.store import RefreshTokenFamily


@pytest.fixture
def sessions(db: Database, now: datetime) -> SqlSessionStore:
    """A session store whose database holds the user usr_ada."""
    with SqlAccountStore(db).transaction() as tx:
        tx.add_user(User("usr_ada", "ada@example.com", "Ada", now))
    return SqlSessionStore(db)


def _session(now: datetime, number: int = 1, **fields: object) -> BrowserSession:
    values: dict[str, object] = {
        "id": f"ses_{number}",
        "digest": f"{number:064x}",
        "user_id": "usr_ada",
        "created_at": now + timedelta(seconds=number),
        "last_seen_at": now + timedelta(seconds=number),
        "idle_expires_at": now + timedelta(days=7),
        "absolute_expires_at": now + timedelta(days=30),
        "ip": "2001:db8::1",
        "user_agent": "Mozilla/5.0 (ünïcode)",
    }
    values.update(fields)
    return BrowserSession(**values)


def _add(sessions: SqlSessionStore, *added: BrowserSession) -> None:
    with sessions.transaction() as tx:
        for each in added:
            tx.add(each)


def test_a_session_reads_back_as_it_was_written(sessions: SqlSessionStore, now: datetime) -> None:
    """Every field survives, by digest and by id; an unknown digest is None."""
    started = _session(now)
    _add(sessions, started)
    assert sessions.by_digest(started.digest) == started
    with sessions.transaction() as tx:
        assert tx.get(started.id) == started and tx.get("ses_none") is None
    assert sessions.by_digest("f" * 64) is None


def test_extending_moves_only_the_use_and_the_idle_limit(
    sessions: SqlSessionStore, now: datetime
) -> None:
    """extend changes last_seen_at and idle_expires_at, nothing else."""
    started = _session(now)
    _add(sessions, started)
    seen, idle = now + timedelta(days=1, microseconds=7), now + timedelta(days=8)
    sessions.extend(started.id, seen, idle)
    assert sessions.by_digest(started.digest) == replace(
        started, last_seen_at=seen, idle_expires_at=idle
    )


def test_open_sessions_are_newest_first_and_exclude_ended_ones(
    sessions: SqlSessionStore, now: datetime
) -> None:
    """Ended sessions are left out; the rest come newest first."""
    _add(sessions, *(_session(now, n) for n in (1, 2, 3)))
    with sessions.transaction() as tx:
        tx.end("ses_2", now)
    assert [s.id for s in sessions.open_sessions("usr_ada")] == ["ses_3", "ses_1"]
    assert sessions.open_sessions("usr_other") == []


def test_sessions_and_refresh_tokens_end_in_one_transaction(
    db: Database, sessions: SqlSessionStore, now: datetime
) -> None:
    """A token store transaction opened inside a session store one commits or fails with it."""
    tokens = SqlTokenStore(db)
    family = RefreshTokenFamily(
        "rtf_1", "usr_ada", None, "tessera", "", now, now + timedelta(days=1)
    )
    _add(sessions, _session(now))
    with tokens.transaction() as tx:
        tx.add_family(family)
    with pytest.raises(RuntimeError), sessions.transaction() as tx, tokens.transaction() as t:
        tx.end("ses_1", now)
        t.revoke_families_of("usr_ada", now)
        raise RuntimeError
    assert sessions.open_sessions("usr_ada") and tokens.family("rtf_1") == family
    with sessions.transaction() as tx, tokens.transaction() as t:
        tx.end("ses_1", now)
        t.revoke_families_of("usr_ada", now)
    assert sessions.open_sessions("usr_ada") == []
    assert tokens.family("rtf_1").revoked_at == now
