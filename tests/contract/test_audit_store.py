"""AuditStore: events come back as written, newest first, and only with their transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from tessera import audit
from tessera.errors import InvalidRequest
from tessera.principal import ClientInfo
from tessera.storage.audit import SqlAuditStore, SqlChanges
from tessera.storage.db import Database


def _event(
    now: datetime, action: audit.Action = "api_key.created", org: str = "org_a"
) -> audit.AuditEvent:
    return audit.event(
        action,
        now=now,
        organization_id=org,
        actor=("user", "usr_1"),
        target=("api_key", "key_1"),
        client=ClientInfo("203.0.113.7", "curl/8"),
        details={"name": "ünïcode", "scopes": ["a:b"], "nested": {"n": 1}},
    )


def test_an_event_reads_back_as_it_was_written(db: Database, now: datetime) -> None:
    """Every field, the aware UTC time to the microsecond and the details survive the round trip."""
    store = SqlAuditStore(db)
    written = _event(now)
    store.record(written)
    assert store.page("org_a", limit=10, cursor=None, action=None).items == (written,)


def test_pages_are_newest_first_and_walk_by_cursor(db: Database, now: datetime) -> None:
    """Five events in pages of two: newest first, each once, the last page without a cursor."""
    store = SqlAuditStore(db)
    events = [_event(now + timedelta(seconds=i)) for i in range(5)]
    for written in events:
        store.record(written)
    seen, cursor = [], None
    for _ in range(3):
        page = store.page("org_a", limit=2, cursor=cursor, action=None)
        seen += page.items
        cursor = page.next_cursor
    assert seen == events[::-1] and cursor is None


def test_action_picks_one_action_or_a_family(db: Database, now: datetime) -> None:
    """``api_key`` matches every api_key.* action; a full name matches only itself."""
    store = SqlAuditStore(db)
    for action in ("api_key.created", "api_key.revoked", "member.added"):
        store.record(_event(now, action))
    family = store.page("org_a", limit=10, cursor=None, action="api_key").items
    one = store.page("org_a", limit=10, cursor=None, action="api_key.revoked").items
    assert {e.action for e in family} == {"api_key.created", "api_key.revoked"}
    assert [e.action for e in one] == ["api_key.revoked"]


def test_actor_and_time_span_pick_their_events(db: Database, now: datetime) -> None:
    """``actor_id`` keeps one actor's events; ``since`` is included and ``before`` is not."""
    store = SqlAuditStore(db)
    first, second = _event(now), _event(now + timedelta(hours=1))
    other = replace(_event(now + timedelta(hours=2)), actor_id="usr_2")
    store.record(first, second, other)

    def ids(**query: Any) -> list[str]:
        page = store.page("org_a", limit=10, cursor=None, action=None, **query)
        return [e.id for e in page.items]

    assert ids(actor_id="usr_2") == [other.id]
    assert ids(since=second.created_at) == [other.id, second.id]
    assert ids(before=second.created_at) == [first.id]
    assert ids(actor_id="usr_1", since=now, before=now + timedelta(hours=3)) == [
        second.id,
        first.id,
    ]


def test_other_organizations_events_are_not_listed(db: Database, now: datetime) -> None:
    """A page holds only the organization's own events."""
    store = SqlAuditStore(db)
    store.record(_event(now, org="org_b"))
    assert store.page("org_a", limit=10, cursor=None, action=None).items == ()


def test_a_bad_cursor_is_an_invalid_request(db: Database) -> None:
    """A cursor that does not decode is the caller's error, not the database's."""
    with pytest.raises(InvalidRequest):
        SqlAuditStore(db).page("org_a", limit=10, cursor="@@@", action=None)


def test_an_event_recorded_in_a_failed_transaction_is_not_kept(db: Database, now: datetime) -> None:
    """An error inside the transaction drops the event with everything else."""
    with pytest.raises(RuntimeError), db.session() as session:
        SqlChanges(session).record(_event(now))
        raise RuntimeError
    assert SqlAuditStore(db).page("org_a", limit=10, cursor=None, action=None).items == ()


def test_a_transaction_opened_inside_another_joins_it(db: Database, now: datetime) -> None:
    """An inner transaction commits nothing by itself: an error in the outer drops both."""
    store = SqlAuditStore(db)
    with pytest.raises(RuntimeError), db.session() as outer:
        SqlChanges(outer).record(_event(now))
        store.record(_event(now + timedelta(seconds=1)))  # a transaction of its own, joined
        raise RuntimeError
    assert store.page("org_a", limit=10, cursor=None, action=None).items == ()
    with db.session() as outer:
        SqlChanges(outer).record(_event(now))
        store.record(_event(now + timedelta(seconds=1)))
    assert len(store.page("org_a", limit=10, cursor=None, action=None).items) == 2
