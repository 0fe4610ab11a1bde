"""Fixtures: a deployment on SQLite or PostgreSQL with an injected clock, and its HTTP app."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.config import Config, load_config
from tessera.deployment import Tessera
from tessera.storage.db import engine_url
from tessera.storage.models import Base
from tessera.web.app import create_app
from tests.browser import chromium
from tests.services import require_postgres

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
# The databases the suite may use. HTTP tests run on the first; those marked ``postgres``
# (where the database itself matters) and the store contract suites run on each.
BACKENDS = os.environ.get("TSR_TEST_DATABASES", "sqlite,postgres").split(",")
# Tables kept between tests: the signing key is costly to make and harmless to share.
KEPT_TABLES = {"signing_keys", "alembic_version"}


def make_config(database_url: str, **overrides: Any) -> Config:
    base: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "password_profile": "cheapest",
        "scope": [
            {"name": "contacts:read", "description": "Read contact data"},
            {"name": "contacts:write", "description": "Create and change contacts"},
            {
                "name": "admin:marketing",
                "description": "Run the marketing workflow",
                "admin_only": True,
            },
        ],
    }
    base.update(overrides)
    return load_config(environ={}, overrides=base)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with a signing key, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "tessera.db"
    tessera = Tessera(make_config(f"sqlite:///{path}"))
    tessera.start()
    tessera.close()
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id: str) -> Iterator[str]:
    """A database of this test process's own, migrated once and dropped at the end.

    The name carries the process id, so suites running side by side never share one.
    """
    admin_url = require_postgres()
    name = f"tessera_test_{worker_id}_{os.getpid()}".replace("-", "_")
    admin = create_engine(engine_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        _drop_abandoned(connection)
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    tessera = Tessera(make_config(url))
    tessera.start()
    tessera.close()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _drop_abandoned(connection: Any) -> None:
    """Drop test databases left by runs whose process no longer exists."""
    names = connection.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE 'tessera_test_%'")
    ).scalars()
    for name in list(names):
        pid = name.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend`` is the first database, or each one for tests marked ``postgres``."""
    if "backend" not in metafunc.fixturenames:
        return
    every = metafunc.definition.get_closest_marker("postgres") is not None
    metafunc.parametrize("backend", BACKENDS if every else BACKENDS[:1], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind a test runs on (parametrized by ``pytest_generate_tests``)."""
    name: str = request.param
    return name


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    return fresh_database(request, backend, tmp_path)


def fresh_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """The URL of a migrated database with no rows but the shared signing key."""
    if backend == "sqlite":
        path = tmp_path / "tessera.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    return url


def _truncate(url: str) -> None:
    engine = create_engine(engine_url(url))
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in KEPT_TABLES]
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE " + ", ".join(tables) + " CASCADE"))
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Tests override this to change the deployment's configuration."""
    return {}


@pytest.fixture
def tessera(
    database_url: str, clock: ManualClock, config_overrides: dict[str, Any]
) -> Iterator[Tessera]:
    deployment = Tessera(make_config(database_url, **config_overrides), clock=clock)
    deployment.start(migrate=False)
    yield deployment
    deployment.close()


@pytest.fixture
def client(tessera: Tessera) -> Iterator[TestClient]:
    with TestClient(create_app(tessera), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per test module; a module that needs other flags defines its own."""
    with chromium() as running:
        yield running
