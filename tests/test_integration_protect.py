"""The integration's ``protect`` decorator, and local mode deciding a repeated request in one
step (``Authorizer.decide_again``) while every fact it read still stands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.testclient import TestClient

from tessera import Principal
from tessera.deployment import Tessera
from tessera.integrations.fastapi import Authenticator
from tessera.web.app import create_app as create_tessera_app
from tests.fixtures import make_config
from tests.helpers import Account, create_key, sign_up
from tests.services import require_redis


def _application(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    auth.install(app)

    @app.get("/v1/contacts")
    @auth.protect("contacts:read")
    async def contacts(principal: Principal, limit: int = 10) -> dict[str, Any]:
        return {"caller": principal.id, "limit": limit}

    @app.get("/v1/contacts/own-parameters")
    @auth.protect("contacts:read")
    def own_parameters(request: Request, response: Response, principal: Principal) -> str:
        response.headers["X-Own"] = "kept"
        return f"{principal.id} {request.url.path}"  # a plain function: run in a thread

    @app.get("/v1/contacts/missing")
    @auth.protect("contacts:read")
    async def missing(principal: Principal) -> None:
        raise HTTPException(404, "no such contact")

    @app.get("/v1/contacts/plain")
    @auth.protect("contacts:read")
    async def plain(principal: Principal) -> Response:
        return PlainTextResponse(principal.id)

    @app.post("/v1/contacts")
    @auth.protect("contacts:write")
    async def add(principal: Principal) -> str:
        return principal.id

    return app


@pytest.fixture
def tessera_client(tessera: Tessera) -> Iterator[TestClient]:
    with TestClient(create_tessera_app(tessera), base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def auth(tessera: Tessera) -> Authenticator:
    return Authenticator.local(tessera.config, clock=tessera.clock)


@pytest.fixture
def client(auth: Authenticator) -> Iterator[TestClient]:
    with TestClient(_application(auth)) as client:
        yield client


@pytest.fixture
def account(tessera_client: TestClient) -> Account:
    return sign_up(tessera_client)


@pytest.fixture
def reader(tessera_client: TestClient, account: Account) -> dict[str, Any]:
    return create_key(tessera_client, account, scopes=["contacts:read"])


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


class _Decisions:
    """Counts the decisions local mode takes on the whole pipeline (not in one step)."""

    def __init__(self, auth: Authenticator, monkeypatch: pytest.MonkeyPatch) -> None:
        authorizer = auth._check.tessera.authorizer  # type: ignore[attr-defined]
        whole = authorizer.decide_on_loop
        self.count = 0

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await whole(*args, **kwargs)

        monkeypatch.setattr(authorizer, "decide_on_loop", counted)


def test_protect_gives_the_endpoint_its_caller_and_the_answer_the_rate_limit_headers(
    client: TestClient, reader: dict[str, Any]
) -> None:
    """The endpoint's other parameters stay FastAPI's; each answer counts one request."""
    headers = {"X-API-Key": reader["key"]}
    first = client.get("/v1/contacts", params={"limit": 3}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"caller": reader["id"], "limit": 3}
    assert first.headers["X-RateLimit-Remaining"] == "999"
    second = client.get("/v1/contacts", headers=headers)
    assert second.json() == {"caller": reader["id"], "limit": 10}
    assert second.headers["X-RateLimit-Remaining"] == "998"
    assert second.headers["RateLimit"] == '"default";r=998;t=1'
    assert client.get("/v1/contacts", params={"limit": "x"}, headers=headers).status_code == 422


def test_protect_refuses_in_tesseras_format(client: TestClient, reader: dict[str, Any]) -> None:
    _problem(client.get("/v1/contacts"), 401, "unauthorized")
    _problem(client.get("/v1/contacts", headers={"X-API-Key": "nope"}), 401, "unauthorized")
    refused = client.post("/v1/contacts", headers={"X-API-Key": reader["key"]})
    body = _problem(refused, 403, "forbidden")
    assert body["required_scopes"] == ["contacts:write"]
    assert refused.headers["X-RateLimit-Limit"] == "1000"


def test_protect_keeps_the_endpoints_own_request_response_and_errors(
    client: TestClient, reader: dict[str, Any]
) -> None:
    """An endpoint's own Request and Response parameters, a plain function, an error it raises
    and a Response it returns: each answer has the rate-limit headers once."""
    headers = {"X-API-Key": reader["key"]}
    own = client.get("/v1/contacts/own-parameters", headers=headers)
    assert own.status_code == 200, own.text
    assert own.json() == f"{reader['id']} /v1/contacts/own-parameters"
    assert own.headers["X-Own"] == "kept"
    assert own.headers.get_list("X-RateLimit-Remaining") == ["999"]
    missing = client.get("/v1/contacts/missing", headers=headers)
    assert missing.status_code == 404 and missing.headers["X-RateLimit-Remaining"] == "998"
    plain = client.get("/v1/contacts/plain", headers=headers)
    assert plain.text == reader["id"]
    assert plain.headers.get_list("X-RateLimit-Remaining") == ["997"]


def test_the_description_shows_only_the_endpoints_own_parameters(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/contacts"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["limit"]


def test_protect_is_refused_where_it_cannot_work(auth: Authenticator) -> None:
    """Before install() (no headers would be added), and on an endpoint with no parameter for
    the caller: a clear error when the application is built, not at the first request."""
    with pytest.raises(RuntimeError, match="install"):
        auth.protect("contacts:read")
    auth.install(FastAPI())
    with pytest.raises(TypeError, match="Principal"):

        @auth.protect("contacts:read")
        async def nobody() -> None: ...

    with pytest.raises(ValueError, match="spaces"):
        auth.protect("contacts:read contacts:write")


def test_a_repeated_request_is_decided_in_one_step(
    client: TestClient, auth: Authenticator, reader: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key, headers, address and scopes: decided once on the whole pipeline, then
    from the pipeline's memory, still counting each request against the quota."""
    decisions = _Decisions(auth, monkeypatch)
    headers = {"X-API-Key": reader["key"]}
    remaining = [
        client.get("/v1/contacts", headers=headers).headers["X-RateLimit-Remaining"]
        for _ in range(3)
    ]
    assert remaining == ["999", "998", "997"] and decisions.count == 1
    # Anything the decision read that differs is decided on the whole pipeline again.
    client.get("/v1/contacts/own-parameters", headers=headers)  # the same scopes: same ask
    assert decisions.count == 1
    client.post("/v1/contacts", headers=headers)  # other scopes
    client.get("/v1/contacts", headers={**headers, "X-Forwarded-For": "198.51.100.7"})
    client.get("/v1/contacts", headers={"Authorization": f"Bearer {reader['key']}"})
    assert decisions.count == 4


def test_a_repeated_request_is_not_answered_after_the_key_is_revoked(
    client: TestClient,
    auth: Authenticator,
    tessera_client: TestClient,
    account: Account,
    reader: dict[str, Any],
) -> None:
    headers = {"X-API-Key": reader["key"]}
    assert client.get("/v1/contacts", headers=headers).status_code == 200
    assert client.get("/v1/contacts", headers=headers).status_code == 200
    revoked = tessera_client.delete(f"/v1/api-keys/{reader['id']}", headers=account.headers)
    assert revoked.status_code in (200, 204), revoked.text
    auth.forget(reader["key"])  # as the eviction channel tells every instance
    body = _problem(client.get("/v1/contacts", headers=headers), 401, "unauthorized")
    assert "revoked" in body["detail"], body


def test_a_request_in_a_workspace_is_never_answered_from_memory(
    client: TestClient,
    auth: Authenticator,
    tessera_client: TestClient,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A workspace's ownership is looked up each time: no one-step answer names one."""
    created = tessera_client.post("/v1/workspaces", json={"name": "Ops"}, headers=account.headers)
    assert created.status_code == 201, created.text
    workspace = created.json()["id"]
    key = create_key(tessera_client, account, scopes=["contacts:read"])
    decisions = _Decisions(auth, monkeypatch)
    headers = {"X-API-Key": key["key"], "X-Workspace-Id": workspace}
    for _ in range(3):
        assert client.get("/v1/contacts", headers=headers).status_code == 200
    assert decisions.count == 3


def test_with_redis_limits_a_repeat_is_charged_there_and_counted_as_a_use(
    tessera: Tessera,
    tessera_client: TestClient,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the limiter in Redis the one-step answer awaits it on the event loop: each repeat
    is charged in Redis, refused once past the limit, and counted."""
    config = make_config(tessera.config.database_url, redis_url=require_redis())
    auth = Authenticator.local(config, clock=tessera.clock)
    limited = create_key(
        tessera_client,
        account,
        scopes=["contacts:read"],
        rate_limit={"requests": 2, "per_seconds": 60},
    )
    auth._check.tessera.limiter.reset(f"key:{limited['id']}")  # type: ignore[attr-defined]
    decisions = _Decisions(auth, monkeypatch)
    headers = {"X-API-Key": limited["key"]}
    with TestClient(_application(auth)) as client:
        answers = [client.get("/v1/contacts", headers=headers) for _ in "123"]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert decisions.count == 2  # the first, then the refusal on the whole pipeline
    auth._check.tessera.close()  # type: ignore[attr-defined]  # writes the uses
    assert _today(tessera_client, account, limited["id"]) == {"requests": 3, "rejected": 1}


def test_each_repeat_counts_as_a_use_of_the_key(
    client: TestClient,
    auth: Authenticator,
    tessera_client: TestClient,
    account: Account,
    reader: dict[str, Any],
) -> None:
    for _ in range(4):
        assert client.get("/v1/contacts", headers={"X-API-Key": reader["key"]}).status_code == 200
    auth._check.tessera.usage.flush_all()  # type: ignore[attr-defined]
    assert _today(tessera_client, account, reader["id"])["requests"] == 4


def _today(tessera_client: TestClient, account: Account, key_id: str) -> dict[str, Any]:
    """The key's usage today, as its owner reads it: (accepted and refused) requests, refused."""
    usage = tessera_client.get(f"/v1/api-keys/{key_id}/usage?days=1", headers=account.headers)
    assert usage.status_code == 200, usage.text
    [today] = usage.json()["data"]
    return {name: today[name] for name in ("requests", "rejected")}
