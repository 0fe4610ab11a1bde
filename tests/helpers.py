"""Small steps most HTTP tests take: sign up, log in, authorize."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

PASSWORD = "correct horse battery"


@dataclass
class Account:
    email: str
    user_id: str
    organization_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_up(
    client: TestClient, email: str = "ada@example.com", organization: str = "Acme"
) -> Account:
    created = client.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "name": "Ada",
            "organization_name": organization,
        },
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    tokens = log_in(client, email)
    return Account(
        email,
        body["user"]["id"],
        body["organization"]["id"],
        tokens["access_token"],
        tokens["refresh_token"],
    )


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["request_id"].startswith("req_")
    return body


def create_key(client: TestClient, account: Account, **body: Any) -> dict[str, Any]:
    """Create an API key as ``account``; returns the creation response (with ``key``)."""
    response = client.post(
        "/v1/api-keys", json={"name": "Test key", **body}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def service_token(tessera: Any) -> str:
    """A new service token of the deployment (what `tessera service-token create` prints)."""
    _, raw = tessera.service_tokens.create("tests")
    return raw
