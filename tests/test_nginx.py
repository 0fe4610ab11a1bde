"""The example nginx configuration, end to end: a real nginx, Tessera and an upstream API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tests.provisioning import new_key, new_owner, new_service_token
from tests.servers import ROOT, nginx, uvicorn

pytestmark = pytest.mark.nginx
CONFIG = """
password_profile = "cheapest"
secret_key = "nginx-test-secret-0123456789abcdef"
[[scope]]
name = "contacts:read"
[[scope]]
name = "contacts:write"
[[route]]
methods = ["GET"]
path = "/v1/contacts*"
scopes = ["contacts:read"]
[[route]]
methods = ["POST"]
path = "/v1/contacts*"
scopes = ["contacts:write"]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """nginx on a free port in front of the upstream, asking Tessera; a key and its ids."""
    folder = tmp_path_factory.mktemp("nginx-stack")
    (folder / "tessera.toml").write_text(f'database_url = "sqlite:///{folder}/t.db"\n' + CONFIG)
    env = {"TESSERA_CONFIG": str(folder / "tessera.toml")}
    facts = _provision(load_config(folder / "tessera.toml", environ={}))
    with (
        uvicorn("tessera.web.asgi:create", env, factory=True) as tessera,
        uvicorn("tests.nginx_upstream:app") as upstream,
    ):
        server = (ROOT / "examples/nginx/tessera.conf").read_text()
        server = server.replace("TESSERA", tessera).replace("UPSTREAM", upstream)
        server = server.replace("SERVICE_TOKEN", facts["service_token"])
        with nginx(server, folder / "nginx") as proxy:
            yield {**facts, "base": f"http://{proxy}"}


def _provision(config: object) -> dict[str, str]:
    tessera = Tessera(config)  # type: ignore[arg-type]
    tessera.start()
    owner = new_owner(tessera)
    key, key_id = new_key(tessera, owner, KeySpec(name="reader", scopes=["contacts:read"]))
    once = KeySpec(name="once a minute", scopes=["contacts:read"], rate_limit=(1, 60))
    limited, _ = new_key(tessera, owner, once)
    token = new_service_token(tessera, "nginx")
    tessera.close()
    return {
        "limited_key": limited,
        "service_token": token,
        "key": key,
        "key_id": key_id,
        "organization_id": owner.organization(),
    }


def test_key_with_contacts_read_gets_through_on_get(stack: dict[str, str]) -> None:
    """GET /v1/contacts reaches the upstream, which learns who called and never sees the key."""
    response = httpx.get(stack["base"] + "/v1/contacts", headers={"X-API-Key": stack["key"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["identity"]["x-tessera-principal"] == stack["key_id"]
    assert body["identity"]["x-tessera-organization-id"] == stack["organization_id"]
    assert body["identity"]["x-tessera-scopes"] == "contacts:read"
    assert body["credential_headers"] == []
    assert response.headers["X-RateLimit-Limit"] == "1000"


def test_same_key_is_refused_on_post(stack: dict[str, str]) -> None:
    """POST /v1/contacts needs contacts:write: nginx answers 403 without calling upstream."""
    response = httpx.post(
        stack["base"] + "/v1/contacts", headers={"Authorization": f"Bearer {stack['key']}"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]


def test_no_key_or_a_bad_key_is_401(stack: dict[str, str]) -> None:
    """Without a valid credential nginx answers 401 in the problem format."""
    assert httpx.get(stack["base"] + "/v1/contacts").status_code == 401
    bad = httpx.get(stack["base"] + "/v1/contacts", headers={"X-API-Key": "tsr_live_" + "x" * 36})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"


def test_rate_limited_key_gets_429_with_retry_after(stack: dict[str, str]) -> None:
    """Past its limit, the client sees a 429 with Retry-After through nginx."""
    headers = {"X-API-Key": stack["limited_key"]}
    assert httpx.get(stack["base"] + "/v1/contacts", headers=headers).status_code == 200
    refused = httpx.get(stack["base"] + "/v1/contacts", headers=headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
