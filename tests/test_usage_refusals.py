"""Usage counts every request of a known key, and every refusal of it as rejected (SPEC 2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tests.helpers import Account, create_key, sign_up

PATH = "/v1/workspaces"


def _today(client: TestClient, account: Account, key_id: str) -> tuple[int, int]:
    answer = client.get(f"/v1/api-keys/{key_id}/usage?days=1", headers=account.headers)
    day: dict[str, Any] = answer.json()["data"][-1]
    return day["requests"], day["rejected"]


def _use(client: TestClient, created: dict[str, Any], times: int, **headers: str) -> list[int]:
    sent = {"X-API-Key": created["key"], **headers}
    return [client.get(PATH, headers=sent).status_code for _ in range(times)]


def test_a_key_limited_to_one_a_minute_used_five_times(client: TestClient) -> None:
    """One 200 and four 429s: requests 5, rejected 4."""
    account = sign_up(client)
    limit = {"requests": 1, "per_seconds": 60}
    created = create_key(client, account, scopes=["workspaces:read"], rate_limit=limit)
    assert _use(client, created, 5) == [200, 429, 429, 429, 429]
    assert _today(client, account, created["id"]) == (5, 4)


def test_three_refusals_for_a_missing_scope(client: TestClient) -> None:
    """Three 403s for a scope the key lacks: requests 3, rejected 3."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["api_keys:read"])
    assert _use(client, created, 3) == [403, 403, 403]
    assert _today(client, account, created["id"]) == (3, 3)


def test_a_refused_address_is_rejected(client: TestClient) -> None:
    """A key used from outside its allowed networks: each use is rejected."""
    account = sign_up(client)
    created = create_key(
        client, account, scopes=["workspaces:read"], allowed_ips=["203.0.113.0/24"]
    )
    assert _use(client, created, 2) == [403, 403]
    assert _today(client, account, created["id"]) == (2, 2)


def test_a_refused_workspace_is_rejected(client: TestClient) -> None:
    """A key naming a workspace outside its restriction: rejected, the allowed one is not."""
    account = sign_up(client)
    default = client.get(PATH, headers=account.headers).json()["data"][0]["id"]
    other = client.post(PATH, json={"name": "B"}, headers=account.headers).json()["id"]
    created = create_key(client, account, scopes=["workspaces:read"], workspace_ids=[default])
    assert _use(client, created, 1, **{"X-Workspace-ID": default}) == [200]
    assert _use(client, created, 2, **{"X-Workspace-ID": other}) == [403, 403]
    assert _today(client, account, created["id"]) == (3, 2)


def test_an_expired_key_is_rejected(client: TestClient, clock: ManualClock) -> None:
    """Uses after expiry count as rejected."""
    account = sign_up(client)
    expires = rfc3339(clock.now() + timedelta(minutes=5))
    created = create_key(client, account, scopes=["workspaces:read"], expires_at=expires)
    assert _use(client, created, 1) == [200]
    clock.advance(600)
    assert _use(client, created, 2) == [401, 401]
    assert _today(client, account, created["id"]) == (3, 2)


def test_a_revoked_key_is_rejected(client: TestClient) -> None:
    """Uses after revocation count as rejected."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["workspaces:read"])
    assert _use(client, created, 1) == [200]
    revoked = client.delete(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert revoked.status_code == 200, revoked.text
    assert _use(client, created, 2) == [401, 401]
    assert _today(client, account, created["id"]) == (3, 2)
