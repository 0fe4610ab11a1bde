"""A revocation in the dashboard may wait for the fleet's acknowledgements (up to one cache
lease); the instance keeps answering every other request meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.keys.cache import INSTANCES
from tests.services import require_redis
from tests.test_dashboard_forms import csrf, signed_in
from tests.test_dashboard_keys import _create

LEASE_MS = 1500


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"redis_url": require_redis(), "cache_lease_ms": LEASE_MS}


@pytest.fixture
def silent_instance(tessera: Tessera) -> Iterator[None]:
    """A live instance, known from its heartbeat, that never acknowledges an eviction."""
    assert tessera.fleet is not None
    deadline = time.monotonic() + 10
    while not tessera.fleet.lease.held():
        assert time.monotonic() < deadline, "no cache lease was granted"
        time.sleep(0.01)
    client = redis.Redis.from_url(require_redis())
    client.zadd(INSTANCES, {"silent-instance": int(client.time()[0]) * 1000 + 20_000})
    yield
    client.zrem(INSTANCES, "silent-instance")
    client.close()


def test_other_requests_are_answered_while_a_revocation_waits(
    client: TestClient, silent_instance: None
) -> None:
    headers = signed_in(client)
    answer, _ = _create(client, headers)
    key_id = answer.headers["location"].split("/")[-2]
    token = csrf(client, headers)
    finished: dict[str, float] = {}

    def revoke() -> None:
        started = time.monotonic()
        response = client.post(
            f"/settings/api-keys/{key_id}/revoke",
            data={"csrf_token": token},
            headers=headers,
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        finished["revoke"] = time.monotonic() - started

    revoking = threading.Thread(target=revoke)
    revoking.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    health = time.monotonic() - started
    revoking.join(timeout=10)
    assert finished["revoke"] >= LEASE_MS / 1000  # it did wait for the silent instance
    assert health < 0.5, f"/healthz took {health:.2f} s while a revocation waited"
