"""Health, readiness, redirects, log lines, and login's equal treatment of unknown and known
emails."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.logs import configure_logging
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.helpers import assert_problem, sign_up


def test_healthz_and_readyz_answer_200(client: TestClient) -> None:
    """A running deployment with its database is alive and ready."""
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] is True


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    """Readiness fails, without a 500, when PostgreSQL cannot be reached."""
    tessera = Tessera(make_config("postgresql://postgres@127.0.0.1:1/none"))
    try:
        with TestClient(create_app(tessera)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"]["database"] is False
            assert client.get("/healthz").status_code == 200
    finally:
        tessera.close()


def test_unknown_email_costs_one_argon2_verification_like_a_known_one(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login runs the same Argon2 work whether the email exists or not."""
    sign_up(client)
    calls: list[str] = []
    original = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: Any, password: Any) -> Any:
        calls.append("verify")
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    client.post("/v1/auth/token", json={"email": "ada@example.com", "password": "wrong password"})
    known = len(calls)
    client.post("/v1/auth/token", json={"email": "ghost@example.com", "password": "wrong password"})
    assert known == 1 and len(calls) - known == 1


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"rate_limit": {"failures_per_ip": 3, "failed_logins_per_email": 100}}


def test_failed_logins_are_throttled_per_client_ip(client: TestClient) -> None:
    """Past its failures across many emails, an address may not guess again for an email it
    has failed for (an email it has not failed for is still checked: test_throttling.py)."""
    sign_up(client)
    for index in range(3):
        client.post(
            "/v1/auth/token", json={"email": f"u{index}@example.com", "password": "wrong pass"}
        )
    throttled = client.post(
        "/v1/auth/token", json={"email": "u0@example.com", "password": "wrong pass"}
    )
    assert_problem(throttled, 429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) >= 1


def test_login_upgrades_a_hash_made_with_weaker_parameters(
    client: TestClient, tessera: Tessera
) -> None:
    """A password hashed with older, cheaper Argon2 settings is re-hashed at the next login."""
    from argon2 import profiles

    from tessera.storage.models import User

    account = sign_up(client)
    weaker = PasswordHasher.from_parameters(profiles.PRE_21_2).hash("correct horse battery")
    with tessera.db.session() as session:
        user = session.get(User, account.user_id)
        assert user is not None
        user.password_hash = weaker
    assert (
        client.post(
            "/v1/auth/token", json={"email": account.email, "password": "correct horse battery"}
        ).status_code
        == 200
    )
    with tessera.db.read() as session:
        user = session.get(User, account.user_id)
        assert user is not None and user.password_hash != weaker
        assert PasswordHasher().verify(user.password_hash, "correct horse battery")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/login/", "/login"),
        ("/v1/api-keys/?limit=3", "/v1/api-keys?limit=3"),
        ("/v1/api-keys/key_a%20b%0d%0a/", "/v1/api-keys/key_a%20b%0D%0A"),
    ],
)
def test_trailing_slash_redirect_never_takes_its_location_from_host(
    client: TestClient, path: str, location: str
) -> None:
    """A forged Host cannot aim the slash redirect elsewhere: Location is a relative path."""
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == location


def test_a_path_starting_with_two_slashes_is_not_redirected(client: TestClient) -> None:
    """ "//evil.example/" would be read as another host; it is a plain 404."""
    response = client.get("http://127.0.0.1:8000//evil.example/", follow_redirects=False)
    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The server's logging set up as `tessera serve` does; yields what it writes."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    configure_logging("info")
    yield stderr
    root.handlers[:] = saved
    root.setLevel(level)


def test_log_lines_carry_no_ansi_escape(json_logs: io.StringIO) -> None:
    """uvicorn's coloured copy of its messages, and escapes in a message, never reach a line."""
    socket = uvicorn.Config(
        "tessera.web.asgi:create", host="127.0.0.1", port=0, log_config=None
    ).bind_socket()  # logs "Uvicorn running on …" with a coloured copy
    socket.close()
    logging.getLogger("tessera").warning("\x1b[31mred\x1b[0m and plain")
    lines = json_logs.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert any(e["message"].startswith("Uvicorn running on") for e in entries)
    assert any(e["message"] == "red and plain" for e in entries)
    for line in lines:
        assert "\x1b" not in line and "\\u001b" not in line, line
