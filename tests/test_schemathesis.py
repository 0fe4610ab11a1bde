"""Schemathesis against a real ``tessera serve``: every operation of the OpenAPI description,
called as a user and as an API key (and with service tokens where those are the credential),
with every answer checked against the description: no 5xx, no body outside its schema, no
status or header the description does not declare.

The run is bounded and reproducible: a fixed number of examples per operation, generated
deterministically, one request at a time, on PostgreSQL (the strictest of the stores about
what it accepts). On failure the assertion shows Schemathesis's report, with a curl command
for each case, and the end of the server's log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.storage.db import engine_url
from tests.provisioning import PASSWORD, new_key, new_owner, new_service_token
from tests.servers import free_port, running
from tests.services import require_postgres

MAX_EXAMPLES = 20
EMAIL = "ops@example.com"
SERVER_CONFIG = """
database_url = "{database_url}"
public_url = "{base}"
secret_key = "schemathesis-secret-0123456789abcdef"
password_profile = "cheapest"
forward_auth_default = "authenticate"
log_level = "warning"

[rate_limit]  # generous, so that limits do not hide the answers behind them
requests = 1000000
per_seconds = 60
failures_per_ip = 1000000
failed_logins_per_email = 1000000

[[scope]]
name = "contacts:read"
description = "Read contact data"

[[route]]
methods = ["GET"]
path = "/v1/contacts*"
scopes = ["contacts:read"]
"""
SCHEMATHESIS_CONFIG = """
[generation]
deterministic = true
database = "none"

[cache]
enabled = false

# Every check, but for two that judge which requests are accepted rather than what is
# answered: positive_data_acceptance (sign-up, scopes, roles and emails have rules a JSON
# schema cannot state, and refusing what breaks them is the point) and negative_data_rejection
# (the request models coerce "5" to 5 and 0 to false, which it counts as accepting bad data).
# use_after_free is off too: DELETE /v1/api-keys/{{key_id}} revokes a key, and a revoked key stays
# readable (SPEC section 2: the answer is the resource with revoked_at set).
[checks]
positive_data_acceptance.enabled = false
negative_data_rejection.enabled = false
use_after_free.enabled = false

[auth]
auto-signup = false

[auth.openapi.serviceToken]
bearer = "{service_token}"

[auth.openapi.proxyServiceToken]
api_key = "{service_token}"
"""
# The user signs in again whenever its token stops working: "sign out everywhere"
# (DELETE /v1/sessions) is one of the operations under test.
AS_USER = f"""
[auth.dynamic.openapi.bearer]
path = "/v1/auth/token"
payload = {{email = "{EMAIL}", password = "{PASSWORD}"}}
extract_selector = "/access_token"
"""
AS_API_KEY = """
[auth.openapi.apiKey]
api_key = "{api_key}"
"""


@dataclass(frozen=True)
class Deployment:
    base: str
    api_key: str
    service_token: str
    log: Path


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped at the end."""
    admin_url = require_postgres()
    name = f"tessera_test_schemathesis_{os.getpid()}"
    admin = create_engine(engine_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Deployment]:
    """``tessera serve`` on a free loopback port, with an owner, an API key and a service token."""
    folder = tmp_path_factory.mktemp("schemathesis-server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = folder / "tessera.toml"
    config.write_text(SERVER_CONFIG.format(database_url=database_url, base=base))
    tessera = Tessera(load_config(config, environ={}))
    tessera.start()
    try:
        owner = new_owner(tessera, EMAIL)
        api_key, _ = new_key(tessera, owner, KeySpec(name="schemathesis"))
        service_token = new_service_token(tessera)
    finally:
        tessera.close()
    command = [sys.executable, "-m", "tessera", "serve", "--port", str(port)]
    command += ["--config", str(config)]
    log = folder / "server.log"
    with running(command, f"{base}/healthz", log=log):
        yield Deployment(base, api_key, service_token, log)


@pytest.mark.parametrize("caller", ["user", "api_key"])
def test_every_answer_conforms_to_the_openapi_description(
    deployment: Deployment, caller: str, tmp_path: Path
) -> None:
    """Schemathesis finds no 5xx, no answer outside its schema and no undocumented status."""
    credential = AS_USER if caller == "user" else AS_API_KEY.format(api_key=deployment.api_key)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        SCHEMATHESIS_CONFIG.format(service_token=deployment.service_token) + credential
    )
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
    command += [f"{deployment.base}/openapi.json"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    server_log = deployment.log.read_text(errors="replace")[-5000:]
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nserver log:\n{server_log}"
