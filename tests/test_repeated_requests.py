"""A repeated request to a hot endpoint (verification, forward auth) is answered in one step
from what the pipeline remembers of the first one, and only while that still stands: the same
answer as the whole path would give, counted like it, and never for a request that differs."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from tessera.authz import Ask, Decision, RequestFacts
from tessera.authz.pipeline import Offload
from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo, Principal
from tessera.web.app import create_app
from tests.fixtures import make_config
from tests.provisioning import new_key, new_owner
from tests.services import require_redis

ROUTES = {
    "route": [
        {"methods": ["GET"], "path": "/v1/contacts*", "scopes": ["contacts:read"]},
        {"methods": ["POST", "PATCH"], "path": "/v1/contacts*", "scopes": ["contacts:write"]},
        {"path": "/public/*", "scopes": []},
    ]
}
VERIFY = "/v1/keys/verify"
FORWARD_AUTH = "/v1/forward-auth"
RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-policy",
    "ratelimit",
)
# What differs between two allowed answers to the same request: its id and the quota left.
CHANGING = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit"}


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return ROUTES


@dataclass
class Setup:
    owner: Principal
    key: str
    key_id: str
    token: str
    token_id: str


def _setup(tessera: Tessera, **spec: Any) -> Setup:
    owner = new_owner(tessera)
    key, key_id = new_key(
        tessera, owner, KeySpec(name="Repeated", **{"scopes": ["contacts:read"], **spec})
    )
    token, raw = tessera.service_tokens.create("proxy")
    return Setup(owner, key, key_id, raw, token.id)


@pytest.fixture
def setup(tessera: Tessera) -> Setup:
    """An owner, a key holding contacts:read and a service token."""
    return _setup(tessera)


@pytest.fixture
def decisions(tessera: Tessera, monkeypatch: pytest.MonkeyPatch) -> list[RequestFacts]:
    """The facts of every request the whole path decided (each call of decide_on_loop): a
    request answered in one step adds none."""
    return _counted(tessera, monkeypatch)


def _counted(tessera: Tessera, monkeypatch: pytest.MonkeyPatch) -> list[RequestFacts]:
    seen: list[RequestFacts] = []
    whole = tessera.authorizer.decide_on_loop

    async def counted(facts: RequestFacts, offload: Offload, *, ask: Ask | None = None) -> Decision:
        seen.append(facts)
        return await whole(facts, offload, ask=ask)

    monkeypatch.setattr(tessera.authorizer, "decide_on_loop", counted)
    return seen


def _verify(client: TestClient, token: str, **body: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        VERIFY, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response


def _verdict(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


def _forward(
    client: TestClient,
    token: str,
    key: str,
    method: str = "GET",
    uri: str = "/v1/contacts",
    **headers: str,
) -> httpx.Response:
    asked = {
        "X-Tessera-Service-Token": token,
        "X-API-Key": key,
        "X-Original-Method": method,
        "X-Original-URI": uri,
    }
    response: httpx.Response = client.get(FORWARD_AUTH, headers={**asked, **headers})
    return response


def _usage(tessera: Tessera, setup: Setup) -> tuple[int, int]:
    """Today's (requests, rejected) of the key, every use written."""
    tessera.usage.flush_all()
    [today] = tessera.api_keys.usage(setup.owner.organization(), setup.key_id, 1)
    return today["requests"], today["rejected"]


def _steady(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers that two allowed answers to one request share."""
    return sorted((n, v) for n, v in response.headers.multi_items() if n not in CHANGING)


# 1. A repeated allowed request is answered in one step, with the first answer.


def test_a_repeated_verification_is_answered_in_one_step_with_the_same_verdict(
    client: TestClient, setup: Setup, decisions: list[RequestFacts]
) -> None:
    """Only the first of three identical verifications reaches the whole path; the verdicts
    agree but for the quota, which each one charges."""
    body = {"key": setup.key, "required_scopes": ["contacts:read"]}
    answers = [_verify(client, setup.token, **body) for _ in range(3)]
    assert len(decisions) == 1
    verdicts = [_verdict(a) for a in answers]
    assert [v.pop("rate_limit")["remaining"] for v in verdicts] == [999, 998, 997]
    assert verdicts[0]["code"] == "valid" and verdicts[0]["key_id"] == setup.key_id
    assert verdicts[1] == verdicts[0] and verdicts[2] == verdicts[0]
    assert len({a.headers["x-request-id"] for a in answers}) == 3
    assert all(a.headers["x-request-id"].startswith("req_") for a in answers)
    assert _steady(answers[1]) == _steady(answers[0]) == _steady(answers[2])


def test_a_repeated_forward_auth_is_answered_in_one_step_with_the_same_answer(
    client: TestClient, setup: Setup, decisions: list[RequestFacts]
) -> None:
    """Only the first of three identical forward-auth requests reaches the whole path; each
    answer has the same identity headers and no body, its own request id and the quota left."""
    answers = [_forward(client, setup.token, setup.key) for _ in range(3)]
    assert len(decisions) == 1
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["x-tessera-principal"] == setup.key_id
    assert [a.content for a in answers] == [b"", b"", b""]
    assert _steady(answers[1]) == _steady(answers[0]) == _steady(answers[2])
    assert len({a.headers["x-request-id"] for a in answers}) == 3
    for answer in answers:
        assert all(len(answer.headers.get_list(name)) == 1 for name in RATE_LIMIT_HEADERS)
        assert answer.headers["x-ratelimit-limit"] == "1000"
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["999", "998", "997"]
    assert [a.headers["ratelimit"] for a in answers] == [
        f'"default";r={remaining};t={answers[i].headers["x-ratelimit-reset"]}'
        for i, remaining in enumerate((999, 998, 997))
    ]


# 2 and 3. A revocation ends the one-step answer at once.


def test_a_revoked_key_is_refused_on_the_next_repeated_verification(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(2):
        assert _verdict(_verify(client, setup.token, key=setup.key))["code"] == "valid"
    assert len(decisions) == 1
    tessera.api_keys.revoke(setup.owner, setup.key_id, ClientInfo())
    verdict = _verdict(_verify(client, setup.token, key=setup.key))
    assert (verdict["valid"], verdict["code"]) == (False, "revoked")
    assert len(decisions) == 2


def test_a_revoked_key_is_refused_on_the_next_repeated_forward_auth(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(2):
        assert _forward(client, setup.token, setup.key).status_code == 200
    assert len(decisions) == 1
    tessera.api_keys.revoke(setup.owner, setup.key_id, ClientInfo())
    refused = _forward(client, setup.token, setup.key)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"


def test_a_revoked_service_token_is_refused_on_the_next_repeated_verification(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(2):
        assert _verdict(_verify(client, setup.token, key=setup.key))["code"] == "valid"
    assert len(decisions) == 1
    tessera.service_tokens.revoke(setup.token_id)
    refused = _verify(client, setup.token, key=setup.key)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"


def test_a_revoked_service_token_is_refused_on_the_next_repeated_forward_auth(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(2):
        assert _forward(client, setup.token, setup.key).status_code == 200
    assert len(decisions) == 1
    tessera.service_tokens.revoke(setup.token_id)
    refused = _forward(client, setup.token, setup.key)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"


@pytest.mark.parametrize("path", [VERIFY, FORWARD_AUTH])
def test_a_key_that_expires_is_refused_on_the_next_repeated_request(
    client: TestClient,
    tessera: Tessera,
    clock: ManualClock,
    decisions: list[RequestFacts],
    path: str,
) -> None:
    """At its expiry instant, within the key cache's lifetime, the repeat is refused."""
    setup = _setup(tessera, expires_at=clock.now() + timedelta(seconds=2))
    if path == VERIFY:
        codes = [_verdict(_verify(client, setup.token, key=setup.key))["code"] for _ in range(2)]
        assert codes == ["valid", "valid"]
    else:
        assert [_forward(client, setup.token, setup.key).status_code for _ in range(2)] == [
            200,
            200,
        ]
    assert len(decisions) == 1
    clock.advance(2)
    if path == VERIFY:
        verdict = _verdict(_verify(client, setup.token, key=setup.key))
        assert (verdict["valid"], verdict["code"]) == (False, "expired")
    else:
        assert _forward(client, setup.token, setup.key).status_code == 401
    assert len(decisions) == 2


# 4. Each one-step answer is a use of the key and charges its quota; a refusal counts once.


def test_repeated_verifications_each_count_as_a_use(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(5):
        assert _verdict(_verify(client, setup.token, key=setup.key))["code"] == "valid"
    assert len(decisions) == 1
    assert _usage(tessera, setup) == (5, 0)


def test_repeated_verifications_with_uses_charge_and_count_them_all(
    client: TestClient, tessera: Tessera, decisions: list[RequestFacts]
) -> None:
    """A repeated verification reporting 3 uses charges and counts 3 each time: with a limit
    of 6 a minute, the third is refused."""
    setup = _setup(tessera, rate_limit=(6, 60))
    codes = [
        _verdict(_verify(client, setup.token, key=setup.key, uses=3))["code"] for _ in range(3)
    ]
    assert codes == ["valid", "valid", "rate_limited"]
    assert len(decisions) == 2
    assert _usage(tessera, setup) == (9, 3)


def test_a_repeated_verification_past_the_limit_is_rate_limited_and_counted_once(
    client: TestClient, tessera: Tessera, clock: ManualClock, decisions: list[RequestFacts]
) -> None:
    """With a limit of 2 a minute, the third and fourth repeats are rate_limited: each a use
    refused once, not charged or counted by the one-step lane as well."""
    setup = _setup(tessera, rate_limit=(2, 60))
    verdicts = [_verdict(_verify(client, setup.token, key=setup.key)) for _ in range(4)]
    assert [v["code"] for v in verdicts] == ["valid", "valid", "rate_limited", "rate_limited"]
    assert [v["rate_limit"]["remaining"] for v in verdicts] == [1, 0, 0, 0]
    assert verdicts[2]["rate_limit"]["reset_seconds"] > 0
    assert len(decisions) == 3  # the first, then each refusal on the whole path
    assert _usage(tessera, setup) == (4, 2)
    clock.advance(30)  # one request's worth of the quota back; the refusals took none
    assert _verdict(_verify(client, setup.token, key=setup.key))["code"] == "valid"
    assert _verdict(_verify(client, setup.token, key=setup.key))["code"] == "rate_limited"


def test_a_repeated_forward_auth_past_the_limit_is_429_and_counted_once(
    client: TestClient, tessera: Tessera, decisions: list[RequestFacts]
) -> None:
    setup = _setup(tessera, rate_limit=(2, 60))
    answers = [_forward(client, setup.token, setup.key) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert [a.json()["code"] for a in answers[2:]] == ["rate_limited", "rate_limited"]
    assert all(int(a.headers["retry-after"]) > 0 for a in answers[2:])
    assert all("retry-after" not in a.headers for a in answers[:2])
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0", "0"]
    assert len(decisions) == 3
    assert _usage(tessera, setup) == (4, 2)


@pytest.mark.parametrize("path", [VERIFY, FORWARD_AUTH])
def test_with_redis_limits_a_repeat_charges_redis_and_is_refused_once_past_the_limit(
    tessera: Tessera, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """With the limiter in Redis (decide_again_on_loop), the repeats are answered in one
    step, charged there, and the refusals are counted once."""
    limited = Tessera(
        make_config(tessera.config.database_url, redis_url=require_redis(), **ROUTES),
        clock=tessera.clock,
    )
    decided = _counted(limited, monkeypatch)
    with TestClient(create_app(limited), base_url="http://127.0.0.1:8000") as redis_client:
        setup = _setup(limited, rate_limit=(2, 60))
        limited.limiter.reset(f"key:{setup.key_id}")
        if path == VERIFY:
            verdicts = [_verdict(_verify(redis_client, setup.token, key=setup.key)) for _ in "1234"]
            assert [v["code"] for v in verdicts] == [
                "valid",
                "valid",
                "rate_limited",
                "rate_limited",
            ]
        else:
            answers = [_forward(redis_client, setup.token, setup.key) for _ in "1234"]
            assert [a.status_code for a in answers] == [200, 200, 429, 429]
        assert len(decided) == 3  # the first, then each refusal on the whole path
        assert _usage(limited, setup) == (4, 2)
    # Leaving the block closed the deployment (the application's lifespan).


# 5. A request that differs in anything the decision reads gets its own decision.


def test_a_verification_that_differs_is_decided_afresh(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    """Other scopes, other uses or another service token: each its own decision."""
    for _ in range(2):
        _verify(client, setup.token, key=setup.key, required_scopes=["contacts:read"])
    assert len(decisions) == 1
    for _ in range(2):  # a refusal is never answered from memory
        wider = _verdict(
            _verify(client, setup.token, key=setup.key, required_scopes=["contacts:write"])
        )
        assert wider["code"] == "insufficient_scope"
        assert wider["missing_scopes"] == ["contacts:write"]
    assert len(decisions) == 3
    more = _verify(client, setup.token, key=setup.key, required_scopes=["contacts:read"], uses=5)
    assert _verdict(more)["code"] == "valid"
    assert len(decisions) == 4
    _, other_token = tessera.service_tokens.create("other")
    by_other = _verdict(
        _verify(client, other_token, key=setup.key, required_scopes=["contacts:read"])
    )
    assert by_other["code"] == "valid" and by_other["key_id"] == setup.key_id
    assert len(decisions) == 5
    assert _usage(tessera, setup) == (2 + 2 + 5 + 1, 2)


def test_a_verification_of_another_key_is_decided_afresh(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    for _ in range(2):
        _verify(client, setup.token, key=setup.key, required_scopes=["contacts:read"])
    other, other_id = new_key(
        tessera, setup.owner, KeySpec(name="Other", scopes=["contacts:write"])
    )
    verdict = _verdict(_verify(client, setup.token, key=other, required_scopes=["contacts:read"]))
    assert verdict["code"] == "insufficient_scope" and verdict["key_id"] == other_id
    assert len(decisions) == 2


def test_a_forward_auth_that_differs_is_decided_afresh(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    """Another method, URI, workspace or key: each its own decision, and the right one."""
    for _ in range(2):
        assert _forward(client, setup.token, setup.key).status_code == 200
    assert len(decisions) == 1
    for _ in range(2):  # a refusal is never answered from memory
        write = _forward(client, setup.token, setup.key, "POST")
        assert write.status_code == 403 and write.json()["required_scopes"] == ["contacts:write"]
    assert len(decisions) == 3
    public = _forward(client, setup.token, setup.key, uri="/public/status")
    assert public.status_code == 200 and public.headers["x-tessera-principal"] == setup.key_id
    assert len(decisions) == 4
    assert _forward(client, setup.token, setup.key, uri="/v1/invoices").status_code == 403
    assert len(decisions) == 5
    workspace = tessera.workspaces.in_organization(setup.owner.organization())[0].id
    acting = _forward(client, setup.token, setup.key, **{"X-Workspace-ID": workspace})
    assert acting.status_code == 200 and acting.headers["x-tessera-workspace-id"] == workspace
    assert "x-tessera-workspace-id" not in public.headers
    assert len(decisions) == 6
    other, _ = new_key(tessera, setup.owner, KeySpec(name="Other", scopes=["contacts:write"]))
    refused = _forward(client, setup.token, other)
    assert refused.status_code == 403 and refused.json()["required_scopes"] == ["contacts:read"]
    assert len(decisions) == 7


# 6. A NUL in any header is refused by the middleware, remembered request or not.


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if path == VERIFY else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
    """One request straight to the ASGI application, headers exactly as given."""
    answer = Answer(0, {}, b"")
    scope = _scope(path, [*headers, (b"content-length", b"%d" % len(body))])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = dict(message.get("headers", []))
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer


def _raw_request(path: str, setup: Setup) -> tuple[list[tuple[bytes, bytes]], bytes]:
    if path == VERIFY:
        headers = [
            (b"authorization", f"Bearer {setup.token}".encode()),
            (b"content-type", b"application/json"),
        ]
        return headers, orjson.dumps({"key": setup.key})
    headers = [
        (b"x-tessera-service-token", setup.token.encode()),
        (b"x-api-key", setup.key.encode()),
        (b"x-original-method", b"GET"),
        (b"x-original-uri", b"/v1/contacts"),
    ]
    return headers, b""


@pytest.mark.parametrize("path", [VERIFY, FORWARD_AUTH])
def test_a_nul_in_another_header_of_a_remembered_request_is_refused(
    tessera: Tessera, setup: Setup, decisions: list[RequestFacts], path: str
) -> None:
    """The header is none the decision reads, so the request is otherwise one answered in one
    step: the middleware still refuses it with 400."""
    app = create_app(tessera)
    headers, body = _raw_request(path, setup)
    assert [_call(app, path, headers, body).status for _ in range(2)] == [200, 200]
    assert len(decisions) == 1
    for nul in (b"a\x00b", b"\x00"):
        refused = _call(app, path, [*headers, (b"x-trace-note", nul)], body)
        assert refused.status == 400, refused.body
        assert orjson.loads(refused.body)["code"] == "invalid_request"
        assert refused.headers[b"x-request-id"].startswith(b"req_")
    first = _call(app, path, [(b"x-trace-note", b"\x00"), *headers], body)
    assert first.status == 400
    assert _call(app, path, headers, body).status == 200
    assert len(decisions) == 1


# 7. A one-step answer is logged like any other request.


@pytest.mark.parametrize("path", [VERIFY, FORWARD_AUTH])
def test_a_one_step_answer_writes_the_access_log_line(
    client: TestClient,
    setup: Setup,
    decisions: list[RequestFacts],
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    caplog.set_level(logging.INFO, logger="tessera.access")
    if path == VERIFY:
        answers = [_verify(client, setup.token, key=setup.key) for _ in range(2)]
    else:
        answers = [_forward(client, setup.token, setup.key) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert len(decisions) == 1
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tessera.access"]
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines) == 2
    for answer in answers:
        line = by_id[answer.headers["x-request-id"]]
        assert (line["event"], line["status"], line["path"]) == ("request", 200, path)
        assert line["method"] == ("POST" if path == VERIFY else "GET")
        assert line["duration_ms"] >= 0


# 8. What the cached key alone cannot say is looked up each time.


def test_a_key_limited_to_networks_is_decided_each_time(
    client: TestClient, tessera: Tessera, decisions: list[RequestFacts]
) -> None:
    setup = _setup(tessera, allowed_ips=["203.0.113.0/24"])
    codes = [
        _verdict(_verify(client, setup.token, key=setup.key, client_ip="203.0.113.7"))["code"]
        for _ in range(3)
    ]
    assert codes == ["valid", "valid", "valid"]
    assert len(decisions) == 3
    outside = _verdict(_verify(client, setup.token, key=setup.key, client_ip="198.51.100.1"))
    assert outside["code"] == "ip_forbidden"


def test_a_key_acting_in_a_workspace_is_decided_each_time(
    client: TestClient, tessera: Tessera, setup: Setup, decisions: list[RequestFacts]
) -> None:
    workspace = tessera.workspaces.in_organization(setup.owner.organization())[0].id
    verdicts = [
        _verdict(_verify(client, setup.token, key=setup.key, workspace_id=workspace))
        for _ in range(3)
    ]
    assert [v["workspace_id"] for v in verdicts] == [workspace] * 3
    answers = [
        _forward(client, setup.token, setup.key, **{"X-Workspace-ID": workspace}) for _ in range(3)
    ]
    assert [a.headers["x-tessera-workspace-id"] for a in answers] == [workspace] * 3
    assert len(decisions) == 6
