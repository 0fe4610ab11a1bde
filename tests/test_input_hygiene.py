"""Input hygiene at the edge (SPEC section 2): NUL and lone surrogates, unknown fields, lengths.

The walks read the application's own route table, so a route added later is walked too.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tessera.accounts import service as accounts
from tessera.accounts import workspaces
from tessera.deployment import Tessera
from tessera.errors import ValidationFailed
from tessera.logs import JsonFormatter
from tessera.web.app import create_app
from tests.helpers import PASSWORD

EMAIL_TOO_LONG = "e" * 64 + "@" + "d" * 186 + ".com"


def test_the_services_refuse_what_the_edge_refuses(tessera: Tessera) -> None:
    """The dashboard and the CLI call the services directly: the same limits hold there."""
    now, passwords = tessera.clock.now(), tessera.passwords
    cases = [
        lambda s: accounts.create_organization(s, "o" * 101, now),
        lambda s: accounts.create_organization(s, "Acme\x00", now),
        lambda s: workspaces.create_workspace(s, "org_0123456789abcdef", "w" * 101, now),
        lambda s: accounts.create_user(
            s, passwords, email=EMAIL_TOO_LONG, password=PASSWORD, name="", now=now
        ),
        lambda s: accounts.create_user(
            s, passwords, email="n@example.com", password=PASSWORD, name="p" * 201, now=now
        ),
        lambda s: accounts.create_user(
            s, passwords, email="n@example.com", password="\udc80" * 10, name="", now=now
        ),
    ]
    for case in cases:
        with pytest.raises(ValidationFailed), tessera.db.session() as session:
            case(session)
    with tessera.db.read() as session:
        assert accounts.find_user_by_email(session, "ada\x00@example.com") is None


def test_a_database_error_is_logged_without_its_parameters(
    tessera: Tessera, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed statement's log line names the statement, never the values it was given."""
    canary = "canary-5f3e0b1d@example.com"

    def failing_lookup(session: Session, email: str) -> None:
        session.execute(text("SELECT id FROM no_such_table WHERE email = :email"), {"email": email})

    monkeypatch.setattr(accounts, "find_user_by_email", failing_lookup)
    client = TestClient(create_app(tessera), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = client.post("/v1/auth/token", json={"email": canary, "password": PASSWORD})
    assert response.status_code == 500
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any("no_such_table" in line for line in lines), lines
    assert not any(canary in line for line in lines)
