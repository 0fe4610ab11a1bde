"""The audit log (SPEC section 7), and that no raw key is written anywhere."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo
from tessera.storage.audit import SqlChanges
from tests.helpers import (
    PASSWORD,
    Account,
    assert_problem,
    create_key,
    log_in,
    service_token,
    sign_up,
)


def test_key_lifecycle_is_audited_with_actor_and_target(
    client: TestClient, clock: ManualClock
) -> None:
    """create, update, roll and revoke each leave an event naming who did it to what."""
    account = sign_up(client)
    created = create_key(client, account)
    clock.advance(1)
    client.patch(f"/v1/api-keys/{created['id']}", json={"name": "B"}, headers=account.headers)
    clock.advance(1)
    rolled = client.post(f"/v1/api-keys/{created['id']}/roll", headers=account.headers).json()
    clock.advance(1)
    client.delete(f"/v1/api-keys/{rolled['id']}", headers=account.headers)
    events = client.get("/v1/audit-events?action=api_key", headers=account.headers).json()["data"]
    assert [e["action"] for e in events] == [
        "api_key.revoked",
        "api_key.rolled",
        "api_key.updated",
        "api_key.created",
    ]
    assert all(e["actor"] == {"kind": "user", "id": account.user_id} for e in events)
    assert events[-1]["target"] == {"kind": "api_key", "id": created["id"]}
    assert events[-1]["ip"] == "testclient" and events[-1]["created_at"].endswith("Z")


@pytest.mark.postgres
def test_a_key_change_and_its_event_commit_together(
    client: TestClient, tessera: Tessera, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the audit event cannot be written, the key change it records is rolled back."""
    account = sign_up(client)
    created = create_key(client, account)
    owner = tessera.credentials.user_principal(account.user_id, account.organization_id)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(SqlChanges, "record", broken)
    with pytest.raises(RuntimeError):
        tessera.api_keys.create(owner, KeySpec(name="never", scopes=None), ClientInfo())
    with pytest.raises(RuntimeError):
        tessera.api_keys.revoke(owner, created["id"], ClientInfo())
    monkeypatch.undo()
    listed = client.get("/v1/api-keys?include_revoked=true", headers=account.headers).json()
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert listed["data"][0]["revoked_at"] is None


@pytest.mark.postgres
def test_login_failures_and_reuse_are_audited(client: TestClient) -> None:
    """Failed logins and refresh-token reuse are security events."""
    account = sign_up(client)
    client.post("/v1/auth/token", json={"email": account.email, "password": "wrong password"})
    body = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    client.post("/v1/auth/token", json=body)
    client.post("/v1/auth/token", json=body)
    fresh = {"Authorization": "Bearer " + log_in(client, account.email)["access_token"]}
    events = client.get("/v1/audit-events?limit=100", headers=fresh).json()["data"]
    actions = {e["action"] for e in events}
    assert {"user.signed_up", "user.logged_in", "refresh_token.reuse_detected"} <= actions


def test_audit_log_needs_audit_read_and_stays_in_the_organization(client: TestClient) -> None:
    """A key without audit:read is refused; another organization's events never show."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    create_key(client, bob)
    key = create_key(client, ada, scopes=["contacts:read"])
    assert_problem(
        client.get("/v1/audit-events", headers={"X-API-Key": key["key"]}), 403, "forbidden"
    )
    events = client.get("/v1/audit-events?limit=100", headers=ada.headers).json()["data"]
    assert events and all(e["organization_id"] == ada.organization_id for e in events)


@pytest.mark.postgres
def test_audit_log_paginates(client: TestClient) -> None:
    """Cursors walk the log without repeats."""
    account = sign_up(client)
    for index in range(4):
        create_key(client, account, name=f"k{index}")
    first = client.get("/v1/audit-events?limit=3", headers=account.headers).json()
    second = client.get(
        "/v1/audit-events",
        params={"limit": 3, "cursor": first["next_cursor"]},
        headers=account.headers,
    ).json()
    ids = [e["id"] for e in first["data"] + second["data"]]
    assert len(ids) == len(set(ids)) == 6
    assert_problem(
        client.get("/v1/audit-events?cursor=@@@", headers=account.headers), 400, "invalid_request"
    )


@pytest.mark.postgres
def test_raw_keys_and_tokens_are_nowhere_in_the_database_or_logs(
    client: TestClient, tessera: Tessera, caplog: pytest.LogCaptureFixture
) -> None:
    """A scan of every table and every log line finds no raw key, refresh token or password."""
    caplog.set_level(logging.DEBUG)
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    rolled = client.post(f"/v1/api-keys/{created['id']}/roll", headers=account.headers).json()
    client.get("/v1/workspaces", headers={"X-API-Key": rolled["key"]})
    client.post(
        "/v1/keys/verify",
        json={"key": rolled["key"]},
        headers={"Authorization": f"Bearer {service_token(tessera)}"},
    )
    tessera.usage.flush_all()
    secrets = [created["key"], rolled["key"], account.refresh_token, "correct horse battery"]
    dump = _dump(tessera)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in dump and secret not in logs
    assert created["key"][len("tsr_live_") + 6 :] not in dump


def _dump(tessera: Tessera) -> str:
    metadata = MetaData()
    metadata.reflect(tessera.db.engine)
    rows = []
    with tessera.db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows += [repr(tuple(r)) for r in connection.execute(select(table))]
    return "\n".join(rows)


def _actions_for(client: TestClient, headers: dict[str, str], action: str) -> list[dict[str, Any]]:
    query = {"action": action, "limit": 100}
    events: list[dict[str, Any]] = client.get(
        "/v1/audit-events", params=query, headers=headers
    ).json()["data"]
    return events


def _team(client: TestClient) -> tuple[Account, Account]:
    """Ada owns Acme; Bob owns Bobco and is a member of Acme too."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Bobco")
    client.post("/v1/members", json={"email": bob.email}, headers=ada.headers)
    return ada, bob


def _dashboard_sign_in(client: TestClient, email: str) -> str:
    """Sign in through the dashboard's form; the session cookie's value (not kept by client)."""
    signed_in = client.post(
        "/login",
        data={"email": email, "password": PASSWORD},
        headers={"Origin": "http://127.0.0.1:8000"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    client.cookies.clear()
    cookie: str = signed_in.cookies["tsr_session"]
    return cookie


def test_a_failed_login_is_in_the_log_of_each_organization_of_the_person(
    client: TestClient,
) -> None:
    """A wrong password for Bob shows in Acme's and Bobco's logs, naming Bob as the target."""
    ada, bob = _team(client)
    client.post("/v1/auth/token", json={"email": "BOB@example.com", "password": "wrong password"})
    for account in (ada, bob):
        [event] = _actions_for(client, account.headers, "user.login_failed")
        assert event["target"] == {"kind": "user", "id": bob.user_id}
        assert event["details"] == {"email": "BOB@example.com"}
        assert event["organization_id"] == account.organization_id


def test_a_failed_login_for_an_unknown_email_is_in_no_organizations_log(
    client: TestClient,
) -> None:
    """An email nobody has is recorded, but in no organization's log."""
    ada, bob = _team(client)
    client.post("/v1/auth/token", json={"email": "ghost@example.com", "password": "wrong password"})
    for account in (ada, bob):
        assert _actions_for(client, account.headers, "user.login_failed") == []


def test_an_ended_session_is_in_the_log_of_each_organization_of_the_person(
    client: TestClient,
) -> None:
    """Bob signing out of the dashboard shows in Acme's and Bobco's logs."""
    ada, bob = _team(client)
    session_cookie = _dashboard_sign_in(client, bob.email)
    ended = client.post(
        "/v1/auth/logout",
        headers={"Cookie": f"tsr_session={session_cookie}", "Origin": "http://127.0.0.1:8000"},
    )
    assert ended.status_code == 204
    for account in (ada, bob):
        [event] = _actions_for(client, account.headers, "session.ended")
        assert event["actor"] == {"kind": "user", "id": bob.user_id}
        assert event["organization_id"] == account.organization_id


def test_a_dashboard_sign_in_is_in_the_log_of_each_organization_of_the_person(
    client: TestClient,
) -> None:
    """Bob signing in to the dashboard shows in Acme's and Bobco's logs, naming the session."""
    ada, bob = _team(client)
    _dashboard_sign_in(client, bob.email)
    for account in (ada, bob):
        events = _actions_for(client, account.headers, "user.logged_in")
        [event] = [e for e in events if e["details"] == {"via": "session"}]
        assert event["actor"] == {"kind": "user", "id": bob.user_id}
        assert event["target"]["kind"] == "session"
        assert event["organization_id"] == account.organization_id
