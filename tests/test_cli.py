"""The command line of SPEC section 9, run as users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tessera.cli import app
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.errors import Unauthorized
from tessera.keys import format as key_format

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tessera.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path}/tessera.db"\npassword_profile = "cheapest"\n'
        'key_prefix = "acme"\n'
    )
    return path


def test_migrate_then_user_create_then_login(config_file: Path) -> None:
    """`user create` makes a user who can log in; the organization is created when new."""
    assert runner.invoke(app, ["migrate", "--config", str(config_file)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--password",
            "0123456789abc",
            "--organization",
            "Acme",
            "--config",
            str(config_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "owner of Acme" in result.output
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        from tessera.principal import ClientInfo

        pair = tessera.tokens.login("ops@example.com", "0123456789abc", ClientInfo())
        assert pair.refresh_token.startswith("rt_")
    finally:
        tessera.close()


def test_user_create_refuses_a_taken_email_with_exit_1(config_file: Path) -> None:
    """A second user with the same email is a clear error, not a traceback."""
    args = [
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        "0123456789abc",
        "--organization",
        "Acme",
        "--config",
        str(config_file),
    ]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert "Traceback" not in again.output


def test_service_token_is_printed_once_and_authenticates(config_file: Path) -> None:
    """The printed svc_ token is accepted by the deployment."""
    result = runner.invoke(
        app, ["service-token", "create", "--name", "billing", "--config", str(config_file)]
    )
    assert result.exit_code == 0, result.output
    raw = result.stdout.strip().splitlines()[-1]
    assert raw.startswith("svc_")
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        assert tessera.service_tokens.authenticate(raw).kind == "service"
    finally:
        tessera.close()


def _service_token(config_file: Path, name: str) -> str:
    args = ["service-token", "create", "--name", name, "--config", str(config_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_service_token_list_names_tokens_without_their_values(config_file: Path) -> None:
    """`service-token list` shows each token's id, name and state, never its value."""
    raw = _service_token(config_file, "billing")
    _service_token(config_file, "search")
    result = runner.invoke(app, ["service-token", "list", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [(row[0][:4], row[1], row[3]) for row in rows] == [
        ("svc_", "billing", "active"),
        ("svc_", "search", "active"),
    ]
    assert raw not in result.stdout
    assert raw.split("_", 1)[1][:12] not in result.stdout


def test_service_token_revoke_ends_a_token_a_running_deployment_remembers(
    config_file: Path,
) -> None:
    """A revoked token is refused at once, even by a deployment that had just accepted it."""
    raw = _service_token(config_file, "billing")
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        token_id = tessera.service_tokens.authenticate(raw).id
        tessera.service_tokens.revoke(token_id)
        with pytest.raises(Unauthorized):
            tessera.service_tokens.authenticate(raw)
    finally:
        tessera.close()
    revoked = runner.invoke(
        app, ["service-token", "revoke", token_id, "--config", str(config_file)]
    )
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(app, ["service-token", "list", "--config", str(config_file)])
    assert listed.stdout.split("\t")[3].strip() != "active"


def test_service_token_revoke_of_an_unknown_id_fails_cleanly(config_file: Path) -> None:
    """An unknown id exits 1 with a message, not a traceback."""
    _service_token(config_file, "billing")
    result = runner.invoke(
        app, ["service-token", "revoke", "svc_nope", "--config", str(config_file)]
    )
    assert result.exit_code == 1
    assert "No service token svc_nope" in result.output
    assert "Traceback" not in result.output


def test_keys_check_accepts_a_real_key_and_refuses_a_changed_one(config_file: Path) -> None:
    """`keys check` exits 0 for a well-formed key of this deployment and 1 otherwise."""
    key = key_format.generate("acme", "live")
    assert runner.invoke(app, ["keys", "check", key, "--config", str(config_file)]).exit_code == 0
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert (
        runner.invoke(app, ["keys", "check", broken, "--config", str(config_file)]).exit_code == 1
    )
    other = key_format.generate("zeta", "live")
    assert runner.invoke(app, ["keys", "check", other, "--config", str(config_file)]).exit_code == 1


def test_rotate_signing_makes_a_new_current_key(config_file: Path) -> None:
    """`keys rotate-signing` adds a key that then signs new tokens."""
    result = runner.invoke(app, ["keys", "rotate-signing", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    kid = result.output.split()[3]
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        assert tessera.signing.jwks()["keys"][0]["kid"] == kid
    finally:
        tessera.close()


def test_bad_config_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """A broken config exits 2 naming the key."""
    path = tmp_path / "bad.toml"
    path.write_text('signup = "maybe"\n')
    result = runner.invoke(app, ["migrate", "--config", str(path)])
    assert result.exit_code == 2
    assert "signup" in result.output and "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_with_two_workers_answers_and_logs_without_secrets(tmp_path: Path) -> None:
    """`serve --workers 2` migrates a fresh database, serves, and logs lines free of secrets."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_PASSWORD_PROFILE"] = "cheapest"
    process = subprocess.Popen(
        [sys.executable, "-m", "tessera", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, process)
        assert httpx.get(base + "/readyz").json()["status"] == "ok"
        password = "a very secret password"
        created = httpx.post(
            base + "/v1/auth/signup",
            json={"email": "ada@example.com", "password": password, "organization_name": "Acme"},
        )
        assert created.status_code == 201
        tokens = httpx.post(
            base + "/v1/auth/token", json={"email": "ada@example.com", "password": password}
        ).json()
        me = httpx.get(
            base + "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert (tmp_path / "tessera.db").exists()
    assert '"path": "/v1/me"' in output and '"status": 200' in output
    for secret in (password, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in output


def _wait_until_up(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else "server exited")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not start")


def _user_create(config_file: Path, email: str, *extra: str) -> Any:
    args = ["user", "create", "--email", email, "--password", "0123456789abc"]
    return runner.invoke(app, [*args, *extra, "--config", str(config_file)])


def test_user_create_refuses_an_existing_organization_without_join(config_file: Path) -> None:
    """A second user for an existing organization name fails in one line naming --join."""
    assert _user_create(config_file, "ops@example.com", "--organization", "Acme").exit_code == 0
    again = _user_create(config_file, "dev@example.com", "--organization", "Acme")
    assert again.exit_code == 1
    assert "--join" in again.output and len(again.output.strip().splitlines()) == 1
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        assert tessera.accounts.user_by_email("dev@example.com") is None
    finally:
        tessera.close()


def test_user_create_with_join_adds_the_user_to_the_existing_organization(
    config_file: Path,
) -> None:
    """--join makes the user a member of the organization of that name, with --role."""
    assert _user_create(config_file, "ops@example.com", "--organization", "Acme").exit_code == 0
    joined = _user_create(
        config_file, "dev@example.com", "--organization", "Acme", "--role", "member", "--join"
    )
    assert joined.exit_code == 0, joined.output
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        ops, dev = (
            tessera.accounts.user_by_email(e) for e in ("ops@example.com", "dev@example.com")
        )
        assert ops is not None and dev is not None
        (home,) = tessera.accounts.memberships(ops.id)
        assert [(m.organization.id, m.role) for m in tessera.accounts.memberships(dev.id)] == [
            (home.organization.id, "member")
        ]
    finally:
        tessera.close()


def test_user_create_is_audited_as_a_sign_up_by_the_system(config_file: Path) -> None:
    """`user create` writes user.signed_up with the system as actor, like sign-up does."""
    from sqlalchemy import select

    from tessera.storage.models import AuditEvent, User

    assert _user_create(config_file, "ops@example.com", "--organization", "Acme").exit_code == 0
    tessera = Tessera(load_config(config_file, environ={}))
    try:
        with tessera.db.read() as session:
            user_id = session.scalars(select(User.id)).one()
            events = session.execute(
                select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.target_id)
            ).all()
    finally:
        tessera.close()
    assert [tuple(e) for e in events] == [("user.signed_up", "system", user_id)]


def test_user_create_gives_a_new_organization_an_owner(config_file: Path) -> None:
    """A new organization's first member is its owner: another role is refused, nothing made."""
    result = _user_create(
        config_file, "ops@example.com", "--organization", "Acme", "--role", "member"
    )
    assert result.exit_code == 1 and "owner" in result.output
    assert _user_create(config_file, "ops@example.com", "--organization", "Acme").exit_code == 0
