"""Key usage is coalesced in memory: a burst costs a handful of writes, none per request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tessera.deployment import Tessera
from tests.helpers import create_key, sign_up

pytestmark = pytest.mark.postgres  # coalesced writes are dialect-specific upserts


def _count_writes(tessera: Tessera) -> list[str]:
    writes: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes.append(statement)

    event.listen(tessera.db.engine, "before_cursor_execute", before)
    return writes


def _verify(tessera: Tessera, raw: str) -> None:
    """One verification of a key, counted as a use the way the pipeline counts it."""
    identity = tessera.key_verifier.identify(raw, client_ip=None, allow_database=True)
    assert identity.record is not None
    tessera.key_verifier.record_use(identity.record.id, accepted=identity.code == "valid", count=1)


def test_ten_thousand_uses_cost_a_handful_of_writes(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """10,000 verifications over three minutes write usage at most once a minute."""
    account = sign_up(client)
    created = create_key(client, account)
    writes = _count_writes(tessera)
    for index in range(10_000):
        _verify(tessera, created["key"])
        if index % 50 == 0:
            clock.advance(1)
            tessera.usage.flush_due()
    tessera.usage.flush_all()
    assert 1 <= len(writes) <= 10
    usage = client.get(f"/v1/api-keys/{created['id']}/usage?days=1", headers=account.headers)
    assert usage.json()["data"][0]["requests"] == 10_000


def test_no_write_happens_on_the_request_path(client: TestClient, tessera: Tessera) -> None:
    """Verifying a cached key writes nothing until a flush."""
    account = sign_up(client)
    created = create_key(client, account)
    _verify(tessera, created["key"])
    writes = _count_writes(tessera)
    for _ in range(100):
        _verify(tessera, created["key"])
    assert writes == []


def test_last_used_at_appears_in_reads_before_the_flush(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """Reads add what is counted in memory, so the dashboard sees a use at once."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["workspaces:read"])
    client.get("/v1/workspaces", headers={"X-API-Key": created["key"]})
    fetched = client.get(f"/v1/api-keys/{created['id']}", headers=account.headers).json()
    assert fetched["last_used_at"] == rfc3339(clock.now())


def test_close_flushes_what_is_pending(client: TestClient, tessera: Tessera) -> None:
    """Shutting down writes the counts still in memory."""
    account = sign_up(client)
    created = create_key(client, account)
    _verify(tessera, created["key"])
    other = Tessera(tessera.config, clock=tessera.clock)
    tessera.usage.stop()
    usage = other.api_keys.usage(account.organization_id, created["id"], 1)
    other.close()
    assert usage[0]["requests"] == 1


def test_usage_lists_every_day_with_zeros(client: TestClient, clock: ManualClock) -> None:
    """usage?days=N has N entries, oldest first, ending today."""
    account = sign_up(client)
    created = create_key(client, account)
    data = client.get(f"/v1/api-keys/{created['id']}/usage?days=30", headers=account.headers).json()
    assert len(data["data"]) == 30
    assert data["data"][-1]["date"] == clock.now().date().isoformat()
    assert all(d["requests"] == 0 and d["rejected"] == 0 for d in data["data"])
