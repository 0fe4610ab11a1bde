"""The workspace context of SPEC section 5 through the web dependency for workspace routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Depends
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.principal import Principal
from tessera.web.app import create_api
from tessera.web.deps import in_workspace
from tessera.web.middleware import RequestContextMiddleware
from tests.helpers import assert_problem, create_key, sign_up

PATH = "/v1/test-workspace-context"


@pytest.fixture
def api(tessera: Tessera) -> Iterator[TestClient]:
    """The application with one route that acts inside a workspace."""
    app = create_api(tessera)

    async def current(principal: Principal = Depends(in_workspace)) -> dict[str, str | None]:
        return {"workspace_id": principal.workspace_id}

    app.add_api_route(PATH, current)
    yield TestClient(RequestContextMiddleware(app))  # no lifespan: the fixture closes it


def _two_workspaces(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    default = client.get("/v1/workspaces", headers=headers).json()["data"][0]["id"]
    other = client.post("/v1/workspaces", json={"name": "B"}, headers=headers).json()["id"]
    return default, other


def test_a_key_for_several_workspaces_must_name_one(api: TestClient) -> None:
    """No X-Workspace-ID while the key allows several: 400 workspace_required."""
    account = sign_up(api)
    default, other = _two_workspaces(api, account.headers)
    key = create_key(api, account, scopes=["workspaces:read"], workspace_ids=[default, other])
    headers = {"X-API-Key": key["key"]}
    assert_problem(api.get(PATH, headers=headers), 400, "workspace_required")
    named = api.get(PATH, headers={**headers, "X-Workspace-ID": other})
    assert named.json() == {"workspace_id": other}


def test_a_key_for_one_workspace_implies_it(api: TestClient) -> None:
    """A key restricted to exactly one workspace acts there without the header."""
    account = sign_up(api)
    default, _ = _two_workspaces(api, account.headers)
    key = create_key(api, account, scopes=["workspaces:read"], workspace_ids=[default])
    assert api.get(PATH, headers={"X-API-Key": key["key"]}).json() == {"workspace_id": default}


def test_a_workspace_outside_the_key_or_organization_is_forbidden(api: TestClient) -> None:
    """Naming a workspace the key does not allow, or another organization's, answers 403."""
    ada = sign_up(api, "ada@example.com", "Acme")
    bob = sign_up(api, "bob@example.com", "Globex")
    default, other = _two_workspaces(api, ada.headers)
    theirs = api.get("/v1/workspaces", headers=bob.headers).json()["data"][0]["id"]
    limited = {"X-API-Key": create_key(api, ada, workspace_ids=[default])["key"]}
    assert_problem(api.get(PATH, headers={**limited, "X-Workspace-ID": other}), 403, "forbidden")
    unrestricted = {"X-API-Key": create_key(api, ada, scopes=["workspaces:read"])["key"]}
    response = api.get(PATH, headers={**unrestricted, "X-Workspace-ID": theirs})
    assert_problem(response, 403, "forbidden")
    assert_problem(api.get(PATH, headers=unrestricted), 400, "workspace_required")
