"""A database that cannot be reached: 503 problem+json, never a 500, and no usage lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys import format as key_format
from tessera.keys.store import KeyUse
from tessera.keys.usage import UsageRecorder
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.servers import free_port

KEY = key_format.generate("tsr", "live")


def test_an_unreachable_database_answers_503_problem_json() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    tessera = Tessera(make_config(url), clock=ManualClock(datetime.now(UTC)))
    try:
        with TestClient(create_app(tessera), base_url="http://127.0.0.1:8000") as client:
            for path in ("/v1/workspaces", "/v1/api-keys"):
                response = client.get(path, headers={"X-API-Key": KEY})
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"] == "unavailable"
            assert client.get("/readyz").status_code == 503
    finally:
        tessera.usage.stop(patience=0)
        tessera.close()


class FlakyUsageStore:
    """Refuses writes while ``down``; keeps what it was given otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.written: list[KeyUse] = []

    def add(self, uses: Sequence[KeyUse]) -> None:
        if self.down:
            raise ConnectionError("the database is restarting")
        self.written.extend(uses)

    def days(self, key_id: str, since: date) -> dict[date, tuple[int, int]]:
        return {}


def test_usage_whose_write_failed_is_written_after_recovery() -> None:
    clock = ManualClock(datetime.now(UTC))
    store = FlakyUsageStore()
    usage = UsageRecorder(store, clock)
    usage.record("key_1", accepted=True, count=3)
    usage.record("key_1", accepted=False, count=1)
    with pytest.raises(ConnectionError):
        usage.flush_due()
    usage.record("key_1", accepted=True, count=2)
    last_use = clock.now()
    store.down = False
    clock.advance(1)
    assert usage.flush_due() == 1  # due again at once: it was never written
    (written,) = store.written
    assert written.days == {clock.now().date(): (5, 1)}
    assert written.last_used_at == last_use


def test_shutdown_keeps_trying_while_the_database_is_down() -> None:
    store = FlakyUsageStore()
    usage = UsageRecorder(store, ManualClock(datetime.now(UTC)))
    usage.record("key_1", accepted=True, count=7)
    usage.stop(patience=0)  # gives up at once, logging it, without raising
    assert store.written == []
    store.down = False
    usage.stop(patience=0)
    assert sum(u.days[d][0] for u in store.written for d in u.days) == 7
