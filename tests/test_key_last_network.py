"""A key's last use is kept with the network it came from, never finer (dashboard key page)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.keys.usage import coarse_network
from tests.helpers import log_in
from tests.test_dashboard_forms import signed_in

pytestmark = pytest.mark.postgres  # the usage write is a dialect-specific upsert


def _ada_key(client: TestClient) -> tuple[dict[str, str], dict[str, Any]]:
    """Ada's dashboard headers, and a key she created through the API."""
    headers = signed_in(client)
    token = log_in(client, "ada@example.com")["access_token"]
    created = client.post(
        "/v1/api-keys",
        json={"name": "Billing", "scopes": ["workspaces:read"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    return headers, created.json()


def test_the_last_use_is_kept_as_its_network(client: TestClient, tessera: Tessera) -> None:
    """Used from 203.0.113.77: the key says 203.0.113.0/24, before and after the write."""
    headers, key = _ada_key(client)
    tessera.key_verifier.record_use(key["id"], accepted=True, count=1, client_ip="203.0.113.77")
    page = client.get(f"/settings/api-keys/{key['id']}", headers=headers).text
    assert "from 203.0.113.0/24" in page and "203.0.113.77" not in page
    tessera.usage.flush_all()
    stored = tessera.api_keys.page(_organization(tessera), limit=1).items[0]
    assert stored.last_used_network == "203.0.113.0/24"
    page = client.get(f"/settings/api-keys/{key['id']}", headers=headers).text
    assert "from 203.0.113.0/24" in page


def test_a_refused_use_does_not_move_the_last_use(client: TestClient, tessera: Tessera) -> None:
    """Only an accepted use is the key's last use, with its network."""
    headers, key = _ada_key(client)
    tessera.key_verifier.record_use(key["id"], accepted=True, count=1, client_ip="2001:db8:1:2::9")
    tessera.key_verifier.record_use(key["id"], accepted=False, count=1, client_ip="192.0.2.1")
    tessera.usage.flush_all()
    page = client.get(f"/settings/api-keys/{key['id']}", headers=headers).text
    assert "from 2001:db8:1::/48" in page and "192.0.2" not in page


def test_networks_are_coarse() -> None:
    """IPv4 keeps its /24, IPv6 its /48; anything else is nothing."""
    assert coarse_network("198.51.100.200") == "198.51.100.0/24"
    assert coarse_network("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert coarse_network("testclient") is None and coarse_network(None) is None


def _organization(tessera: Tessera) -> str:
    user = tessera.accounts.user_by_email("ada@example.com")
    assert user is not None
    return tessera.accounts.memberships(user.id)[0].organization.id
