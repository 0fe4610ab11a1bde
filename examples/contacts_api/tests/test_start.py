"""The commands of this example's README, run as written: Tessera with the example's
configuration, a service token, and the contacts API in remote and in local mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, free_port, running

README = Path(__file__).resolve().parent.parent / "README.md"
TESSERA = ".venv/bin/tessera serve --config examples/contacts_api/tessera.toml"
SERVICE_TOKEN = (
    ".venv/bin/tessera service-token create --name contacts-api "
    "--config examples/contacts_api/tessera.toml"
)
API = ".venv/bin/uvicorn --factory examples.contacts_api.app:from_environment --port 9000"
LOCAL_CONFIG = "TESSERA_CONFIG=examples/contacts_api/tessera.toml"
PASSWORD = "correct horse battery"


def _argv(command: str, port: int | None = None) -> list[str]:
    """A documented command as this test runs it: the running environment's executables, and
    a free port in place of the documented one (another may be using it)."""
    words = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/").split()
    if port is None:
        return words
    if "--port" in words:
        words[words.index("--port") + 1] = str(port)
        return words
    return [*words, "--port", str(port)]


def test_the_readme_documents_these_commands() -> None:
    """What this suite runs is what the README tells people to type."""
    text = README.read_text()
    for command in (TESSERA, SERVICE_TOKEN, API, f"{LOCAL_CONFIG} {API}"):
        assert command in text, command


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """Tessera started as the README says, on a database of this test's own."""
    folder = tmp_path_factory.mktemp("contacts")
    env = {
        "TESSERA_DATABASE_URL": f"sqlite:///{folder}/tessera.db",
        "TESSERA_PASSWORD_PROFILE": "cheapest",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(_argv(TESSERA, port), base + "/healthz", env, folder / "tessera.log"):
        yield base, env


@pytest.fixture(scope="module")
def key(tessera: tuple[str, dict[str, str]]) -> str:
    """An API key with the example's scopes, made through Tessera's API."""
    base, _ = tessera
    login = {"email": "ada@example.com", "password": PASSWORD}
    signup = httpx.post(base + "/v1/auth/signup", json=login | {"organization_name": "Acme"})
    assert signup.status_code == 201, signup.text
    access = httpx.post(base + "/v1/auth/token", json=login).json()["access_token"]
    created = httpx.post(
        base + "/v1/api-keys",
        json={"name": "Contacts", "scopes": ["contacts:read", "contacts:write"]},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert created.status_code == 201, created.text  # 422 unknown_scope without the catalog
    raw: str = created.json()["key"]
    return raw


def _contacts_answer(command: str, env: dict[str, str], key: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(_argv(command, port), base + "/docs", env):
        headers = {"X-API-Key": key}
        added = httpx.post(base + "/v1/contacts", json={"name": "Grace"}, headers=headers)
        assert added.status_code == 201, added.text
        listed = httpx.get(base + "/v1/contacts", headers=headers)
        assert listed.status_code == 200, listed.text
        assert [c["name"] for c in listed.json()["data"]] == ["Grace"]
        assert httpx.get(base + "/v1/contacts").status_code == 401


def test_remote_mode_starts_as_documented_and_answers(
    tessera: tuple[str, dict[str, str]], key: str
) -> None:
    """With a service token from the documented command, the documented start command serves
    the contacts API, and the key made in Tessera reads and writes contacts."""
    base, env = tessera
    made = subprocess.run(
        _argv(SERVICE_TOKEN),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip()
    assert token.startswith("svc_")
    remote = {"TESSERA_URL": base, "TESSERA_SERVICE_TOKEN": token}
    _contacts_answer(API, remote, key)


def test_local_mode_starts_as_documented_and_answers(
    tessera: tuple[str, dict[str, str]], key: str
) -> None:
    """With TESSERA_CONFIG naming the example's configuration, the same command serves the
    contacts API on Tessera's own database."""
    _, env = tessera
    name, value = LOCAL_CONFIG.split("=", 1)
    _contacts_answer(API, {**env, name: value}, key)
