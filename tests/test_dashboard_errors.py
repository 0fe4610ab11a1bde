"""Errors on dashboard paths are pages of the dashboard, with the error's status (SPEC 6, 10)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.helpers import PASSWORD, sign_up

ORIGIN = "http://127.0.0.1:8000"


def _signed_in(client: TestClient) -> dict[str, str]:
    """The Cookie header of a dashboard session of a new person."""
    sign_up(client)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return {"Cookie": f"tsr_session={response.cookies['tsr_session']}"}


def _page(response: Any, status: int, heading: str) -> str:
    """The response is the dashboard's HTML page for ``status``, headed ``heading``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    html: str = response.text
    assert '<link rel="stylesheet" href="/static/app.css">' in html
    assert f"<h1>{heading}</h1>" in html
    assert response.headers["X-Request-ID"] in html
    return html


def test_an_unknown_dashboard_url_is_a_404_page(client: TestClient) -> None:
    """A path under /settings that no page answers is the dashboard's "Not found" page."""
    _page(client.get("/settings/nowhere"), 404, "Not found")


def test_a_missing_key_is_a_404_page_saying_not_found(client: TestClient) -> None:
    """A key that does not exist is "Not found" (not "Not allowed"), with the navigation."""
    cookie = _signed_in(client)
    html = _page(
        client.get("/settings/api-keys/key_doesnotexist0000000", headers=cookie), 404, "Not found"
    )
    assert "Not allowed" not in html
    assert 'href="/settings/sessions"' in html  # the signed-in navigation


def test_revoking_a_missing_key_is_a_404_page(client: TestClient) -> None:
    """The revoke confirmation of an unknown key is a page too, not JSON."""
    cookie = _signed_in(client)
    response = client.get("/settings/api-keys/key_doesnotexist0000000/revoke", headers=cookie)
    _page(response, 404, "Not found")


def test_a_form_without_its_token_is_a_403_page(client: TestClient) -> None:
    """A refused form post is answered with the dashboard's "Not allowed" page."""
    cookie = _signed_in(client)
    response = client.post(
        "/settings/sessions/end-all", data={}, headers={**cookie, "Origin": ORIGIN}
    )
    _page(response, 403, "Not allowed")


def test_api_paths_still_answer_problem_json(client: TestClient) -> None:
    """Only dashboard paths get pages: an unknown /v1 path stays problem+json."""
    response = client.get("/v1/nowhere", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_unexpected_exception_on_a_page_is_a_500_page(
    client: TestClient,
    tessera: Tessera,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A page that raises answers the "Something went wrong" page, logged with its traceback."""
    cookie = _signed_in(client)

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(tessera.api_keys, "page", explode)
    with caplog.at_level(logging.ERROR, logger="tessera"):
        response = client.get("/settings/api-keys", headers=cookie)
    html = _page(response, 500, "Something went wrong")
    assert "fire" not in html
    [record] = [r for r in caplog.records if r.exc_info]
    assert getattr(record, "request_id", None) == response.headers["X-Request-ID"]
