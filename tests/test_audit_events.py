"""The audit log (SPEC section 7), and that no raw key is written anywhere."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import MetaData, select
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo
from tessera.storage.audit import SqlChanges
from tests.helpers import assert_problem, create_key, log_in, service_token, sign_up


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
