"""The example nginx configuration, end to end: a real nginx, Tessera and an upstream API."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
forward_auth_default = "authenticate"
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
        uvicorn("tests.nginx_upstream:app") as upstream,
        _proxied(env, facts, upstream, folder / "nginx") as proxy,
    ):
        base = f"http://{proxy}"
        yield {**facts, "base": base, "proxy": proxy, "upstream": upstream, "folder": str(folder)}


@pytest.fixture(scope="module")
def stack_without_redis(stack: dict[str, str]) -> Iterator[dict[str, str]]:
    """The same, but Tessera's Redis cannot be reached and rate_limit.on_redis_error = "refuse"."""
    folder = Path(stack["folder"])
    env = {
        "TESSERA_CONFIG": str(folder / "tessera.toml"),
        "TESSERA_REDIS_URL": "redis://127.0.0.1:1/0",
        "TESSERA_RATE_LIMIT__ON_REDIS_ERROR": "refuse",
    }
    with _proxied(env, stack, stack["upstream"], folder / "nginx-no-redis") as proxy:
        yield {**stack, "base": f"http://{proxy}", "proxy": proxy}


@contextmanager
def _proxied(
    env: dict[str, str], facts: dict[str, str], upstream: str, folder: Path
) -> Iterator[str]:
    """Tessera with ``env``, and the example nginx in front of ``upstream`` asking it."""
    with uvicorn("tessera.web.asgi:create", env, factory=True) as tessera:
        server = (ROOT / "examples/nginx/tessera.conf").read_text()
        server = server.replace("TESSERA", tessera).replace("UPSTREAM", upstream)
        server = server.replace("SERVICE_TOKEN", facts["service_token"])
        with nginx(server, folder) as proxy:
            yield proxy


def _provision(config: object) -> dict[str, str]:
    tessera = Tessera(config)  # type: ignore[arg-type]
    tessera.start()
    owner = new_owner(tessera)
    key, key_id = new_key(tessera, owner, KeySpec(name="reader", scopes=["contacts:read"]))
    once = KeySpec(name="once a minute", scopes=["contacts:read"], rate_limit=(1, 60))
    limited, _ = new_key(tessera, owner, once)
    writer, _ = new_key(tessera, owner, KeySpec(name="writer", scopes=["contacts:write"]))
    token = new_service_token(tessera, "nginx")
    tessera.close()
    return {
        "limited_key": limited,
        "writer_key": writer,
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


# Each reaches GET /v1/contacts on an upstream that decodes, resolves dot segments, collapses
# slashes or ignores case, as many do; nginx passes each upstream exactly as written.
SPELLINGS_OF_CONTACTS = [
    "/v1/%63ontacts",
    "/v1/contact%73",
    "/V1/contacts",
    "/v1//contacts",
    "/v1/./contacts",
    "/v1/x/../contacts",
    "/v1/x/%2e%2e/contacts",
]
# Read differently by different servers; refused by Tessera (or by nginx itself).
AMBIGUOUS = [
    "/v1%2Fcontacts",
    "/v1/contacts%5C",
    "/v1\\contacts",
    "/x/..;/v1/contacts",
    "/v1/%2563ontacts",
    "/v1/contacts%C3%28",
    "/v1/contacts%00",
    "/v1/%zzcontacts",
]


def _send(stack: dict[str, str], target: str, key: str) -> tuple[int, bytes]:
    """GET with ``target`` as the request line says it, unnormalized (httpx would clean it)."""
    host, port = stack["proxy"].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", target, headers={"X-API-Key": key})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _seen_upstream(stack: dict[str, str]) -> list[str]:
    seen: list[str] = httpx.get(f"http://{stack['upstream']}/__seen").json()
    return seen


def test_no_spelling_of_contacts_reaches_the_upstream_without_contacts_read(
    stack: dict[str, str],
) -> None:
    """Under "authenticate", a key without contacts:read gets 403 for every spelling, and the
    upstream never sees one of them."""
    before = _seen_upstream(stack)
    for target in SPELLINGS_OF_CONTACTS:
        status, body = _send(stack, target, stack["writer_key"])
        assert status == 403 and b'"forbidden"' in body, target
    assert _seen_upstream(stack) == before


def test_every_spelling_of_contacts_reaches_the_upstream_with_contacts_read(
    stack: dict[str, str],
) -> None:
    """The same spellings pass with contacts:read, unchanged: the refusals above are the
    route's, not a side effect of the spelling."""
    before = _seen_upstream(stack)
    for target in SPELLINGS_OF_CONTACTS:
        status, _ = _send(stack, target, stack["key"])
        assert status != 403, target
    assert _seen_upstream(stack) == before + SPELLINGS_OF_CONTACTS


def test_ambiguous_paths_are_400_and_never_reach_the_upstream(stack: dict[str, str]) -> None:
    """An encoded '/', a backslash, a ';', a double escape, a NUL: 400, the upstream unasked."""
    before = _seen_upstream(stack)
    for target in AMBIGUOUS:
        status, _ = _send(stack, target, stack["key"])
        assert status == 400, target
    assert _seen_upstream(stack) == before


def test_tesseras_400_comes_back_as_a_400_problem(stack: dict[str, str]) -> None:
    """Sent to nginx as 403 with X-Tessera-Status: 400, it reaches the client as 400."""
    status, body = _send(stack, "/v1%2Fcontacts", stack["key"])
    assert status == 400 and b'"code": "invalid_request"' in body


def test_tesseras_503_comes_back_as_a_503_problem(stack_without_redis: dict[str, str]) -> None:
    """Sent to nginx as 403 with X-Tessera-Status: 503, it reaches the client as 503."""
    response = httpx.get(
        stack_without_redis["base"] + "/v1/contacts",
        headers={"X-API-Key": stack_without_redis["key"]},
    )
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
