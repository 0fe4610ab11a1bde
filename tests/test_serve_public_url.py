"""`tessera serve` on a port of its own: public_url follows --host/--port (SPEC section 9)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from tessera import cli
from tests.browser import chromium
from tests.servers import free_port, running

PASSWORD = "correct horse battery"
MISMATCH = "is not where this server listens"


def _config_file(folder: Path, extra: str = "") -> Path:
    path = folder / "tessera.toml"
    path.write_text(
        f'database_url = "sqlite:///{folder}/tessera.db"\n'
        'password_profile = "cheapest"\n'
        'secret_key = "serve-test-secret-0123456789abcdef"\n' + extra
    )
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`serve` run in this process up to the point where uvicorn would take over."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    for name in ("TESSERA_PUBLIC_URL", "TESSERA_CONFIG"):
        monkeypatch.setenv(name, "")  # recorded, so that serve's own setting is undone
        monkeypatch.delenv(name)
    return calls


def _serve(arguments: list[str]) -> None:
    result = CliRunner().invoke(cli.app, ["serve", *arguments])
    assert result.exit_code == 0, result.output


def test_serve_hands_workers_the_public_url_derived_from_its_port(
    tmp_path: Path,
    served: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without public_url, `serve --host 0.0.0.0 --port 8611` gives its workers
    http://127.0.0.1:8611, and warns about nothing."""
    config = _config_file(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tessera"):
        _serve(["--host", "0.0.0.0", "--port", "8611", "--config", str(config)])
    assert served and served[0]["port"] == 8611
    assert os.environ["TESSERA_PUBLIC_URL"] == "http://127.0.0.1:8611"
    assert not [r for r in caplog.records if MISMATCH in r.getMessage()]


def test_serve_warns_once_when_public_url_is_not_where_it_listens(
    tmp_path: Path, served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A configured public_url on another port is kept, and named in one warning line."""
    config = _config_file(tmp_path, 'public_url = "http://127.0.0.1:8000"\n')
    with caplog.at_level(logging.WARNING, logger="tessera"):
        _serve(["--port", "8611", "--config", str(config)])
    assert os.environ["TESSERA_PUBLIC_URL"] == "http://127.0.0.1:8000"
    warnings = [r for r in caplog.records if MISMATCH in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "http://127.0.0.1:8000" in warnings[0].getMessage()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A real `tessera serve --port <free port>` with no public_url in its configuration."""
    folder = tmp_path_factory.mktemp("serve")
    config = _config_file(folder)
    port = free_port()
    while port == 8000:
        port = free_port()
    log = folder / "serve.log"
    command = [sys.executable, "-m", "tessera", "serve", "--port", str(port)]
    with running([*command, "--config", str(config)], f"http://127.0.0.1:{port}/healthz", log=log):
        yield port, log


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context()
        yield context.new_page()
        context.close()


@pytest.mark.browser
def test_sign_up_and_sign_in_through_localhost_on_another_port(
    server: tuple[int, Path], page: Page
) -> None:
    """The dashboard reached at http://localhost:<port> signs a person up and in (no 403)."""
    port, log = server
    base = f"http://localhost:{port}"
    page.goto(base + "/signup")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys")).to_be_visible()
    assert MISMATCH not in log.read_text()


def test_tokens_name_the_derived_public_url_as_issuer(server: tuple[int, Path]) -> None:
    """The `iss` (and `aud`) of an access token is http://127.0.0.1:<port>, not :8000."""
    port, _ = server
    base = f"http://localhost:{port}"
    login = {"email": "iss@example.com", "password": PASSWORD}
    signup = httpx.post(base + "/v1/auth/signup", json=login | {"organization_name": "Acme"})
    assert signup.status_code == 201, signup.text
    answer = httpx.post(base + "/v1/auth/token", json=login)
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["iss"] == f"http://127.0.0.1:{port}"
    assert claims["aud"] == f"http://127.0.0.1:{port}"
