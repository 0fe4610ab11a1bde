"""Reaching the real PostgreSQL and Redis servers the suite runs against.

Where a server is down, the suite starts it with the machine's own command. When it still
cannot be reached, a test that needs it fails under CI (``CI=true``) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest

POSTGRES_URL = os.environ.get("TSR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TSR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_postgres() -> None:
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").glob("*"))
        if Path("/etc/postgresql").exists()
        else []
    )
    if versions and shutil.which("pg_ctlcluster"):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
            capture_output=True,
        )


def _start_redis() -> None:
    if shutil.which("redis-server"):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/tmp",
            ],
            check=False,
            capture_output=True,
        )


def _ensure(name: str, port: int, start: object) -> None:
    if _reachable(port):
        return
    start()  # type: ignore[operator]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _reachable(port):
            return
        time.sleep(0.2)
    unavailable(f"{name} is not reachable on 127.0.0.1:{port} and could not be started")


def unavailable(message: str) -> NoReturn:
    """A part a test needs is missing: a failure under CI (which installs every part), a skip
    on a developer's machine that lacks it."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_postgres() -> str:
    _ensure("PostgreSQL", 5432, _start_postgres)
    return POSTGRES_URL


def require_redis() -> str:
    _ensure("Redis", 6379, _start_redis)
    return REDIS_URL
