"""The example contacts API behind Tessera, in local and in remote mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from examples.contacts_api.app import create_app
from tessera.deployment import Tessera
from tessera.integrations.fastapi import Authenticator
from tessera.web.app import create_app as create_tessera_app
from tests.helpers import create_key, service_token, sign_up


@pytest.fixture
def tessera_client(tessera: Tessera) -> Iterator[TestClient]:
    with TestClient(create_tessera_app(tessera), base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture(params=["local", "remote"])
def auth(request: pytest.FixtureRequest, tessera: Tessera) -> Authenticator:
    if request.param == "local":
        return Authenticator.local(tessera.config, clock=tessera.clock)
    transport = httpx.ASGITransport(app=create_tessera_app(tessera))
    return Authenticator.remote(
        "http://tessera.test", service_token(tessera), transport=transport, clock=tessera.clock
    )


@pytest.fixture
def contacts(auth: Authenticator) -> Iterator[TestClient]:
    with TestClient(create_app(auth)) as client:
        yield client


@pytest.fixture
def reader(tessera_client: TestClient) -> dict[str, Any]:
    return create_key(tessera_client, sign_up(tessera_client), scopes=["contacts:read"])


def test_key_with_contacts_read_lists_contacts(
    contacts: TestClient, reader: dict[str, Any]
) -> None:
    """The dependency yields the key's principal and the rate-limit headers."""
    response = contacts.get("/v1/contacts", headers={"X-API-Key": reader["key"]})
    assert response.status_code == 200, response.text
    assert response.json()["caller"] == reader["id"]
    assert response.headers["X-RateLimit-Limit"] == "1000"


def test_missing_scope_is_403_in_tesseras_format(
    contacts: TestClient, reader: dict[str, Any]
) -> None:
    """Writing needs contacts:write; the refusal is a problem with required_scopes."""
    response = contacts.post(
        "/v1/contacts", json={"name": "Ada"}, headers={"Authorization": f"Bearer {reader['key']}"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["required_scopes"] == ["contacts:write"]


def test_no_or_bad_key_is_401(contacts: TestClient) -> None:
    """Without a valid key nothing is answered but 401."""
    assert contacts.get("/v1/contacts").status_code == 401
    bad = contacts.get("/v1/contacts", headers={"X-API-Key": "tsr_live_" + "A" * 36})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"


def test_writer_adds_and_tenants_stay_apart(
    contacts: TestClient, tessera_client: TestClient
) -> None:
    """A contact added by one organization is not seen by another."""
    acme = sign_up(tessera_client, "ada@example.com", "Acme")
    globex = sign_up(tessera_client, "bob@example.com", "Globex")
    writer = create_key(tessera_client, acme, scopes=["contacts:read", "contacts:write"])
    other = create_key(tessera_client, globex, scopes=["contacts:read"])
    added = contacts.post(
        "/v1/contacts", json={"name": "Grace"}, headers={"X-API-Key": writer["key"]}
    )
    assert added.status_code == 201
    assert (
        len(contacts.get("/v1/contacts", headers={"X-API-Key": writer["key"]}).json()["data"]) == 1
    )
    assert contacts.get("/v1/contacts", headers={"X-API-Key": other["key"]}).json()["data"] == []


def test_revoked_key_is_refused_once_known(
    contacts: TestClient, tessera_client: TestClient, auth: Authenticator
) -> None:
    """After revocation (and, for remote mode, being told of it) the key is refused."""
    account = sign_up(tessera_client)
    key = create_key(tessera_client, account, scopes=["contacts:read"])
    assert contacts.get("/v1/contacts", headers={"X-API-Key": key["key"]}).status_code == 200
    tessera_client.delete(f"/v1/api-keys/{key['id']}", headers=account.headers)
    auth.forget(key["key"])
    assert contacts.get("/v1/contacts", headers={"X-API-Key": key["key"]}).status_code == 401


def test_rate_limit_is_enforced(contacts: TestClient, tessera_client: TestClient) -> None:
    """A key's own limit applies through the integration: 429 with Retry-After."""
    account = sign_up(tessera_client)
    key = create_key(
        tessera_client,
        account,
        scopes=["contacts:read"],
        rate_limit={"requests": 1, "per_seconds": 60},
    )
    headers = {"X-API-Key": key["key"]}
    assert contacts.get("/v1/contacts", headers=headers).status_code == 200
    refused = contacts.get("/v1/contacts", headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"


def test_remote_answers_are_cached_for_a_bounded_time_and_budget(
    tessera: Tessera, tessera_client: TestClient
) -> None:
    """Remote mode serves repeated requests from its cache, within the time and the quota the
    server reported, and asks again after either runs out."""
    account = sign_up(tessera_client)
    key = create_key(
        tessera_client,
        account,
        scopes=["contacts:read"],
        rate_limit={"requests": 3, "per_seconds": 60},
    )
    asked: list[str] = []
    inner = httpx.ASGITransport(app=create_tessera_app(tessera))

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            asked.append(request.url.path)
            return await inner.handle_async_request(request)

    auth = Authenticator.remote(
        "http://tessera.test",
        service_token(tessera),
        transport=Counting(),
        clock=tessera.clock,
        cache_seconds=5,
    )
    with TestClient(create_app(auth)) as client:
        statuses = [
            client.get("/v1/contacts", headers={"X-API-Key": key["key"]}).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        assert len(asked) == 2  # the first answer (2 left) served the next two requests
        tessera.clock.advance(60)  # type: ignore[attr-defined]
        assert client.get("/v1/contacts", headers={"X-API-Key": key["key"]}).status_code == 200
        assert len(asked) == 3
