"""POST /v1/keys/verify: every code of SPEC section 5, and who may call it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tessera.clock import ManualClock, rfc3339
from tessera.deployment import Tessera
from tessera.keys import format as key_format
from tessera.web.app import create_api, create_app
from tests.fixtures import make_config
from tests.helpers import Account, assert_problem, create_key, service_token, sign_up
from tests.services import require_redis


@pytest.fixture
def service(tessera: Tessera) -> dict[str, str]:
    return {"Authorization": f"Bearer {service_token(tessera)}"}


def _verify(client: TestClient, service: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/keys/verify", json=body, headers=service)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["valid"] is (result["code"] == "valid")
    return result


def _workspaces(client: TestClient, account: Account) -> list[str]:
    default = client.get("/v1/workspaces", headers=account.headers).json()["data"][0]["id"]
    other = client.post("/v1/workspaces", json={"name": "B"}, headers=account.headers).json()["id"]
    return [default, other]


def test_valid_key_answers_with_its_identity_and_rate_limit(
    client: TestClient, service: dict[str, str]
) -> None:
    """A good key is valid, with organization, scopes and the remaining quota."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    result = _verify(client, service, key=created["key"], required_scopes=["contacts:read"])
    assert result["code"] == "valid"
    assert result["key_id"] == created["id"]
    assert result["organization_id"] == account.organization_id
    assert result["environment"] == "live" and result["scopes"] == ["contacts:read"]
    assert result["rate_limit"] == {"limit": 1000, "remaining": 999, "reset_seconds": 1}


def test_malformed_and_not_found(client: TestClient, service: dict[str, str]) -> None:
    """Strings that are not keys are malformed; well-formed unknown keys are not_found."""
    assert _verify(client, service, key="hello")["code"] == "malformed"
    assert _verify(client, service, key=key_format.generate("tsr", "live"))["code"] == "not_found"
    assert _verify(client, service, key=key_format.generate("other", "live"))["code"] == "malformed"


@pytest.mark.postgres
def test_revoked_and_expired(
    client: TestClient, service: dict[str, str], clock: ManualClock
) -> None:
    """Revocation is seen at once; expiry at its instant."""
    account = sign_up(client)
    revoked = create_key(client, account)
    _verify(client, service, key=revoked["key"])
    client.delete(f"/v1/api-keys/{revoked['id']}", headers=account.headers)
    assert _verify(client, service, key=revoked["key"])["code"] == "revoked"
    expiring = create_key(client, account, expires_at=rfc3339(clock.now() + timedelta(seconds=60)))
    assert _verify(client, service, key=expiring["key"])["code"] == "valid"
    clock.advance(60)
    assert _verify(client, service, key=expiring["key"])["code"] == "expired"


def test_insufficient_scope_names_what_is_missing(
    client: TestClient, service: dict[str, str]
) -> None:
    """A key without a required scope is insufficient_scope."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    result = _verify(client, service, key=created["key"], required_scopes=["contacts:write"])
    assert result["code"] == "insufficient_scope" and result["missing_scopes"] == ["contacts:write"]


def test_workspace_codes(client: TestClient, service: dict[str, str]) -> None:
    """Forbidden outside the restriction; required when several are allowed and none named."""
    account = sign_up(client)
    first, second = _workspaces(client, account)
    single = create_key(client, account, workspace_ids=[first])
    implied = _verify(client, service, key=single["key"], require_workspace=True)
    assert implied["code"] == "valid" and implied["workspace_id"] == first
    outside = _verify(client, service, key=single["key"], workspace_id=second)
    assert outside["code"] == "workspace_forbidden"
    both = create_key(client, account, workspace_ids=[first, second])
    assert _verify(client, service, key=both["key"], require_workspace=True)["code"] == (
        "workspace_required"
    )
    named = _verify(client, service, key=both["key"], workspace_id=second, require_workspace=True)
    assert named["code"] == "valid" and named["workspace_id"] == second


def test_workspace_of_another_organization_is_forbidden(
    client: TestClient, service: dict[str, str]
) -> None:
    """An unrestricted key still cannot act in another organization's workspace."""
    ada = sign_up(client, "ada@example.com", "Acme")
    bob = sign_up(client, "bob@example.com", "Globex")
    theirs = client.get("/v1/workspaces", headers=bob.headers).json()["data"][0]["id"]
    created = create_key(client, ada)
    result = _verify(client, service, key=created["key"], workspace_id=theirs)
    assert result["code"] == "workspace_forbidden"


def test_ip_forbidden(client: TestClient, service: dict[str, str]) -> None:
    """The allowlist is checked against the client_ip the caller reports."""
    account = sign_up(client)
    created = create_key(client, account, allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    assert _verify(client, service, key=created["key"], client_ip="203.0.113.7")["code"] == "valid"
    assert _verify(client, service, key=created["key"], client_ip="2001:db8::1")["code"] == "valid"
    assert _verify(client, service, key=created["key"], client_ip="198.51.100.1")["code"] == (
        "ip_forbidden"
    )
    assert _verify(client, service, key=created["key"])["code"] == "ip_forbidden"


def test_rate_limited_after_the_keys_own_limit(
    client: TestClient, service: dict[str, str], clock: ManualClock
) -> None:
    """Each verification counts; past the key's limit the code is rate_limited, then recovers."""
    account = sign_up(client)
    created = create_key(client, account, rate_limit={"requests": 3, "per_seconds": 60})
    codes = [_verify(client, service, key=created["key"])["code"] for _ in range(4)]
    assert codes == ["valid", "valid", "valid", "rate_limited"]
    clock.advance(20)
    assert _verify(client, service, key=created["key"])["code"] == "valid"


def test_needs_a_service_token(client: TestClient) -> None:
    """Without a credential 401; with a user token 403."""
    account = sign_up(client)
    created = create_key(client, account)
    assert_problem(
        client.post("/v1/keys/verify", json={"key": created["key"]}), 401, "unauthorized"
    )
    as_user = client.post("/v1/keys/verify", json={"key": created["key"]}, headers=account.headers)
    assert_problem(as_user, 403, "forbidden")
    bad = client.post(
        "/v1/keys/verify",
        json={"key": created["key"]},
        headers={"Authorization": "Bearer svc_nope"},
    )
    assert_problem(bad, 401, "unauthorized")


def test_malformed_body_is_a_problem(client: TestClient, service: dict[str, str]) -> None:
    """A body without a key is 422; a body that is not JSON is 400, never a 5xx."""
    assert_problem(
        client.post("/v1/keys/verify", json={}, headers=service), 422, "validation_error"
    )
    garbage = client.post("/v1/keys/verify", content=b"\x00\xff", headers=service)
    assert_problem(garbage, 400, "invalid_request")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300) | st.dictionaries(st.text(max_size=20), st.none() | st.text()))
def test_no_body_makes_the_endpoint_fail(
    client: TestClient, service: dict[str, str], body: bytes | dict[str, Any]
) -> None:
    """Whatever the body, the answer is a verdict or a 4xx problem, never a 5xx."""
    if isinstance(body, bytes):
        response = client.post("/v1/keys/verify", content=body, headers=service)
    else:
        response = client.post("/v1/keys/verify", json=body, headers=service)
    assert response.status_code in (200, 400, 422), response.text


@pytest.mark.postgres
def test_verification_counts_as_a_use(
    client: TestClient, service: dict[str, str], tessera: Tessera, clock: ManualClock
) -> None:
    """Verifications show in usage (requests and rejections) and in last_used_at."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    _verify(client, service, key=created["key"])
    _verify(client, service, key=created["key"], required_scopes=["contacts:write"])
    tessera.usage.flush_all()
    usage = client.get(f"/v1/api-keys/{created['id']}/usage?days=2", headers=account.headers).json()
    today = usage["data"][-1]
    assert today["date"] == clock.now().date().isoformat()
    assert (today["requests"], today["rejected"]) == (2, 1)
    fetched = client.get(f"/v1/api-keys/{created['id']}", headers=account.headers).json()
    assert fetched["last_used_at"] == rfc3339(clock.now())


def test_the_framework_route_answers_like_the_fast_path(
    client: TestClient, tessera: Tessera, service: dict[str, str]
) -> None:
    """The route kept for the OpenAPI description gives the fast path's answer."""
    account = sign_up(client)
    created = create_key(client, account, scopes=["contacts:read"])
    body = {"key": created["key"], "required_scopes": ["contacts:write"]}
    framework_only = TestClient(create_api(tessera))  # no lifespan: the deployment stays open
    response = framework_only.post("/v1/keys/verify", json=body, headers=service)
    assert response.status_code == 200
    assert response.json()["code"] == "insufficient_scope"
    framework, fast = response.json(), _verify(client, service, **body)
    # Each verification counts against the key's quota (SPEC section 5), refused or not.
    assert framework.pop("rate_limit")["remaining"] == fast.pop("rate_limit")["remaining"] + 1
    assert framework == fast
    assert "/v1/keys/verify" in client.get("/openapi.json").json()["paths"]


def test_with_redis_limits_the_answer_counts_in_redis(
    tessera: Tessera, client: TestClient, service: dict[str, str]
) -> None:
    """With the limiter in Redis, verification still answers and counts against the quota."""
    limited = Tessera(
        make_config(tessera.config.database_url, redis_url=require_redis()), clock=tessera.clock
    )
    account = sign_up(client)
    created = create_key(client, account, rate_limit={"requests": 2, "per_seconds": 60})
    limited.limiter.reset(f"key:{created['id']}")
    redis_client = TestClient(create_app(limited))
    codes = [
        redis_client.post("/v1/keys/verify", json={"key": created["key"]}, headers=service).json()[
            "code"
        ]
        for _ in range(3)
    ]
    limited.close()
    assert codes == ["valid", "valid", "rate_limited"]


def test_uses_are_counted_all_at_once_or_not_at_all(
    client: TestClient, service: dict[str, str]
) -> None:
    """A caller reporting uses served from its cache is charged for all of them, or refused."""
    account = sign_up(client)
    created = create_key(client, account, rate_limit={"requests": 5, "per_seconds": 60})
    first = _verify(client, service, key=created["key"], uses=4)
    assert first["code"] == "valid" and first["rate_limit"]["remaining"] == 1
    too_many = _verify(client, service, key=created["key"], uses=2)
    assert too_many["code"] == "rate_limited"
    assert _verify(client, service, key=created["key"])["code"] == "valid"


def test_a_verification_refused_for_a_scope_counts_against_the_quota(
    client: TestClient, service: dict[str, str]
) -> None:
    """Every call counts against the key's limit (SPEC section 5), a refused one too."""
    account = sign_up(client)
    created = create_key(
        client, account, scopes=["contacts:read"], rate_limit={"requests": 2, "per_seconds": 60}
    )
    refused = _verify(client, service, key=created["key"], required_scopes=["contacts:write"])
    assert refused["code"] == "insufficient_scope" and refused["rate_limit"]["remaining"] == 1
    assert _verify(client, service, key=created["key"])["rate_limit"]["remaining"] == 0


def test_a_valid_verdict_rendered_once_per_key_says_what_the_general_one_says() -> None:
    """The verdict of a cached key, its description rendered once, equals verdict_body's,
    field for field and in the same order, allowed or at its limit, asked once or again."""
    import orjson

    from tessera.authz import Allowed
    from tessera.principal import Principal
    from tessera.ratelimit.gcra import RateLimitDecision
    from tessera.web.routes.verify import _valid_verdict, verdict_body

    principal = Principal(
        kind="api_key",
        id="key_1",
        organization_id="org_1",
        scopes=frozenset({"b:read", "a:read"}),
        environment="live",
        workspace_ids=("ws_1", "ws_2"),
    )
    for quota in (
        RateLimitDecision(True, 10, 9, 6, 0, 60),
        RateLimitDecision(True, 5, 0, 60, 0, 60),
    ):
        general = verdict_body(Allowed(principal, None, quota))
        for _ in range(2):
            rendered = orjson.loads(_valid_verdict(principal, quota))
            assert rendered == general and list(rendered) == list(general)
