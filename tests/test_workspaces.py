"""Workspaces: list, create, rename, delete, inside the caller's organization only."""

from __future__ import annotations

from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.storage.models import Membership
from tests.helpers import assert_problem, sign_up


def test_owner_creates_renames_and_deletes_a_workspace(client: TestClient) -> None:
    """The full lifecycle with workspaces:write."""
    account = sign_up(client)
    created = client.post("/v1/workspaces", json={"name": "Staging"}, headers=account.headers)
    assert created.status_code == 201
    workspace = created.json()
    assert workspace["id"].startswith("ws_") and workspace["object"] == "workspace"
    renamed = client.patch(
        f"/v1/workspaces/{workspace['id']}", json={"name": "Production"}, headers=account.headers
    )
    assert renamed.json()["name"] == "Production"
    names = [
        w["name"] for w in client.get("/v1/workspaces", headers=account.headers).json()["data"]
    ]
    assert sorted(names) == ["Default", "Production"]
    assert (
        client.delete(f"/v1/workspaces/{workspace['id']}", headers=account.headers).status_code
        == 200
    )
    assert_problem(
        client.get(f"/v1/workspaces/{workspace['id']}", headers=account.headers), 404, "not_found"
    )


def test_member_may_read_but_not_write(client: TestClient, tessera: Tessera) -> None:
    """The member role holds workspaces:read only."""
    account = sign_up(client)
    with tessera.db.session() as session:
        member = session.get(Membership, (account.user_id, account.organization_id))
        assert member is not None
        member.role = "member"
    assert client.get("/v1/workspaces", headers=account.headers).status_code == 200
    response = client.post("/v1/workspaces", json={"name": "X"}, headers=account.headers)
    assert_problem(response, 403, "forbidden")


def test_empty_name_is_a_validation_error(client: TestClient) -> None:
    """A workspace needs a name."""
    account = sign_up(client)
    response = client.post("/v1/workspaces", json={"name": ""}, headers=account.headers)
    assert_problem(response, 422, "validation_error")


def test_workspace_creation_is_audited(client: TestClient, tessera: Tessera) -> None:
    """Creating a workspace writes workspace.created in the same transaction."""
    from sqlalchemy import select

    from tessera.storage.models import AuditEvent

    account = sign_up(client)
    client.post("/v1/workspaces", json={"name": "Staging"}, headers=account.headers)
    with tessera.db.read() as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"user.signed_up", "user.logged_in", "workspace.created"} <= actions


def test_openapi_document_is_served(client: TestClient) -> None:
    """/openapi.json describes the API and /docs renders it."""
    document = client.get("/openapi.json").json()
    assert "/v1/auth/token" in document["paths"]
    assert client.get("/docs").status_code == 200
