"""The engine and sessions: SQLite (WAL) by default, PostgreSQL when configured.

A database that cannot be reached (a restart, a network fault) surfaces as
:class:`~tessera.errors.ServiceUnavailable` (``503``), never as a ``500``; the pool checks each
connection before lending it (``pool_pre_ping``), so it recovers once the server is back without
restarting Tessera."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from tessera.errors import ServiceUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
UNREACHABLE = "The database cannot be reached right now; try again shortly."
# What a database that is down, restarting or unreachable raises (SQLite's OperationalError
# also names programming errors, such as a missing table: those stay unexpected).
OUTAGES = (OperationalError, InterfaceError)


def engine_url(database_url: str) -> str:
    """``postgresql://`` means the psycopg 3 driver; SQLite URLs pass as they are."""
    if database_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return database_url


class Database:
    def __init__(self, database_url: str) -> None:
        self.url = engine_url(database_url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = _make_engine(self.url, self.is_sqlite)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        reading: dict[str, Any] = {"tessera_read_only": True}
        if not self.is_sqlite:
            reading["isolation_level"] = "AUTOCOMMIT"
        self._reading = self.engine.execution_options(**reading)
        self._readers = sessionmaker(self._reading, expire_on_commit=False)
        self._open = threading.local()  # the transaction this thread is in, if any

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on error.

        Opened inside another one on the same thread, it joins it: the stores of several
        capabilities then write in one transaction, committed when the outermost block ends.
        """
        current: Session | None = getattr(self._open, "session", None)
        if current is not None:
            yield current
            return
        with self._reachable(), self._sessions() as session, session.begin():
            self._open.session = session
            try:
                yield session
            finally:
                self._open.session = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only look-up. On SQLite it takes no write lock, so it may run while another
        session of this process holds one (a write session taking the lock up front would wait
        for that session, and that session for it). Inside a unit of work it reads in it, and
        so sees what the unit of work has written."""
        current: Session | None = getattr(self._open, "session", None)
        if current is not None:
            yield current
            return
        with self._reachable(), self._readers() as session, session.begin():
            yield session

    def first(self, statement: Executable, parameters: dict[str, Any]) -> Row[Any] | None:
        """The first row of one read-only statement, on a connection of its own (no session),
        or in the unit of work this thread is in."""
        current: Session | None = getattr(self._open, "session", None)
        if current is not None:
            return current.execute(statement, parameters).first()
        with self._reachable(), self._reading.connect() as connection:
            return connection.execute(statement, parameters).first()

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """A database that cannot be reached, raised as :class:`ServiceUnavailable` (``503``)."""
        try:
            yield
        except OUTAGES as error:
            if not self._is_outage(error):
                raise
            raise ServiceUnavailable(UNREACHABLE) from error

    def _is_outage(self, error: OperationalError | InterfaceError) -> bool:
        return not self.is_sqlite or error.connection_invalidated

    def migrate(self) -> None:
        with self.engine.begin() as connection:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, is_sqlite: bool) -> Engine:
    # A statement's parameters hold digests, password hashes and emails: an error's message
    # (which reaches the logs with its traceback) must not carry them.
    if not is_sqlite:
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
        )
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # Transactions are begun by hand (below) so that writers queue on the lock up front
    # instead of failing with "database is locked" when a read upgrades to a write.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    read_only = connection.get_execution_options().get("tessera_read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
