"""The contract suites: each store Protocol's promises, checked on every database it runs on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tessera.storage.db import Database
from tests.fixtures import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each kind."""
    database = Database(fresh_database(request, request.param, tmp_path))
    yield database
    database.dispose()


@pytest.fixture
def now() -> datetime:
    """A moment with microseconds, which every database must give back as it was given."""
    return datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
