"""Database's reads: a look-up is one statement outside any transaction, and inside a unit of
work it reads in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event, select, text

from tessera.service_tokens import ServiceToken
from tessera.storage import models
from tessera.storage.db import Database
from tessera.storage.service_tokens import SqlServiceTokenStore
from tests.fixtures import fresh_database


@pytest.fixture
def postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = Database(fresh_database(request, "postgres", tmp_path))
    yield database
    database.dispose()


def test_a_look_up_on_postgresql_runs_outside_a_transaction(postgres: Database) -> None:
    """A read sends no BEGIN and no COMMIT, two round trips of four: its one statement is
    atomic by itself, and under READ COMMITTED a transaction would give each statement its
    own snapshot anyway. A unit of work stays one transaction."""
    statuses: list[TransactionStatus] = []

    def after(_conn: Any, cursor: Any, *_: Any) -> None:
        statuses.append(cursor.connection.info.transaction_status)  # psycopg's, as it is now

    event.listen(postgres.engine, "after_cursor_execute", after)
    assert postgres.first(text("SELECT 1"), {}) is not None
    with postgres.read() as session:
        session.execute(text("SELECT 1"))
    with postgres.session() as session:
        session.execute(text("SELECT 1"))
    idle, busy = TransactionStatus.IDLE, TransactionStatus.INTRANS
    assert statuses == [idle, idle, busy]


def test_a_look_up_inside_a_unit_of_work_sees_what_it_wrote(db: Database, now: datetime) -> None:
    """``first`` on a thread in a unit of work reads in it, uncommitted rows included; once
    the unit of work fails, the row is gone."""
    tokens = SqlServiceTokenStore(db)
    token = ServiceToken("svc_1", "proxy", "c" * 64, now, None)
    query = select(models.ServiceToken.id).where(models.ServiceToken.digest == token.digest)
    with pytest.raises(RuntimeError), tokens.transaction() as tx:
        tx.add(token)
        row = db.first(query, {})
        assert row is not None and row.id == "svc_1"
        raise RuntimeError
    assert db.first(query, {}) is None
