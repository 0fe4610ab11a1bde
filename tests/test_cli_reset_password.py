"""`tessera user reset-password`: the operator's one-time link when no mail server is set."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tessera.cli import app
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.principal import ClientInfo
from tests.mailbox import token_of

runner = CliRunner()
PASSWORD = "0123456789abc"


def test_reset_password_prints_a_link_that_works_once(tmp_path: Path) -> None:
    """The printed link sets a new password once; an unknown email exits 1."""
    config_file = tmp_path / "tessera.toml"
    config_file.write_text(
        f'database_url = "sqlite:///{tmp_path}/tessera.db"\npassword_profile = "cheapest"\n'
        'public_url = "http://localhost:8611"\n'
    )
    config = ["--config", str(config_file)]
    user = ["--email", "ops@example.com", "--password", PASSWORD, "--organization", "Acme"]
    created = runner.invoke(app, ["user", "create", *user, *config])
    assert created.exit_code == 0, created.output
    result = runner.invoke(app, ["user", "reset-password", "--email", "OPS@example.com", *config])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith("http://localhost:8611/password-reset/confirm?token=")

    tessera = Tessera(load_config(config_file, environ={}))
    try:
        tessera.password_resets.confirm(token_of(link), "a new passphrase!", ClientInfo())
        assert tessera.accounts.check_password("ops@example.com", "a new passphrase!")
    finally:
        tessera.close()
    unknown = runner.invoke(app, ["user", "reset-password", "--email", "no@example.com", *config])
    assert unknown.exit_code == 1 and "No user" in unknown.output
