"""The FastAPI integration (SPEC section 5): its errors, and what it loads."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import traceback

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from tessera import Principal
from tessera.integrations.fastapi import Authenticator


def _protected(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal: Principal = Depends(auth.requires("contacts:read"))) -> str:
        return principal.id

    return app


def test_an_unexpected_exception_in_the_integration_is_a_logged_500_problem(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure nobody expected answers problem+json 500 internal_error with a request id,
    and is logged once with its traceback under that id."""

    def explode(_request: httpx.Request) -> httpx.Response:
        raise RuntimeError("the disk is on fire")

    auth = Authenticator.remote(
        "http://tessera.test", "svc_x", transport=httpx.MockTransport(explode)
    )
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = TestClient(_protected(auth)).get(
            "/v1/contacts", headers={"X-API-Key": "tsr_live_" + "a" * 36}
        )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "internal_error" and body["request_id"].startswith("req_")
    assert "fire" not in response.text
    [record] = [r for r in caplog.records if r.exc_info]
    assert getattr(record, "request_id", None) == body["request_id"]
    assert record.exc_info is not None
    assert "the disk is on fire" in "".join(traceback.format_exception(*record.exc_info))


# A customer's API in remote mode: it builds the authenticator and serves one request.
REMOTE_APPLICATION = textwrap.dedent(
    """
    import json, sys
    import httpx
    from fastapi import Depends, FastAPI
    from starlette.testclient import TestClient
    from tessera.integrations.fastapi import Authenticator

    verdict = {"valid": True, "code": "valid", "key_id": "key_1", "organization_id": "org_1",
               "scopes": ["contacts:read"], "workspace_ids": None, "workspace_id": None,
               "environment": "live"}
    answer = lambda request: httpx.Response(200, json=verdict)
    auth = Authenticator.remote("http://tessera.test", "svc_x",
                                transport=httpx.MockTransport(answer))
    app = FastAPI()
    auth.install(app)

    @app.get("/v1/contacts")
    async def contacts(principal=Depends(auth.requires("contacts:read"))):
        return principal.id

    response = TestClient(app).get("/v1/contacts", headers={"X-API-Key": "tsr_live_" + "a" * 36})
    assert response.json() == "key_1", response.text
    print(json.dumps(sorted(sys.modules)))
    """
)
SERVER_MODULES = ("sqlalchemy", "tessera.web", "tessera.deployment", "tessera.storage")


def test_remote_mode_does_not_load_the_server() -> None:
    """An application that verifies keys remotely never imports SQLAlchemy, the web layer,
    the deployment or the storage (checked in a fresh interpreter)."""
    ran = subprocess.run(
        [sys.executable, "-c", REMOTE_APPLICATION], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    loaded = json.loads(ran.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if m.startswith(SERVER_MODULES)] == []
    assert "tessera.integrations.fastapi" in loaded
