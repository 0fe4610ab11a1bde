"""Browser sessions over HTTP: the cookie, rotation, idle and absolute expiry, CSRF refusals."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tests.helpers import PASSWORD, assert_problem, sign_up

ORIGIN = "http://127.0.0.1:8000"


def _sign_in(client: TestClient, email: str = "ada@example.com") -> Any:
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response


def _cookie(jar: dict[str, str]) -> dict[str, str]:
    """The Cookie header a browser would send with this jar."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in jar.items())}


def _cookie_attributes(response: Any) -> dict[str, str]:
    header = response.headers["set-cookie"]
    parts = [p.strip() for p in header.split(";")]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


def test_cookie_has_the_attributes_of_the_spec(client: TestClient) -> None:
    """HttpOnly, SameSite=Lax, Path=/, 7 days; no Secure on plain-HTTP loopback."""
    sign_up(client)
    attributes = _cookie_attributes(_sign_in(client))
    assert attributes["tsr_session"]
    assert "httponly" in attributes and attributes["samesite"] == "Lax"
    assert attributes["path"] == "/" and attributes["max-age"] == str(7 * 86400)
    assert "secure" not in attributes and "domain" not in attributes


@pytest.mark.parametrize(
    "config_overrides",
    [{"public_url": "https://portal.example.dev", "session": {"cookie_domain": ".example.dev"}}],
)
def test_cookie_is_secure_and_shared_across_subdomains_when_configured(client: TestClient) -> None:
    """Outside loopback development the cookie is Secure; Domain comes from the config."""
    sign_up(client)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": "https://portal.example.dev"},
        follow_redirects=False,
    )
    attributes = _cookie_attributes(response)
    assert "secure" in attributes and attributes["domain"] == ".example.dev"


def test_each_sign_in_makes_a_new_session(client: TestClient) -> None:
    """A second sign-in gets another id and another cookie value; both are listed."""
    sign_up(client)
    first = _sign_in(client).cookies["tsr_session"]
    second = _sign_in(client).cookies["tsr_session"]
    assert first != second
    sessions = client.get("/v1/sessions", headers=_cookie({"tsr_session": second})).json()["data"]
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1


def test_the_cookie_authenticates_v1_calls(client: TestClient) -> None:
    """GET /v1/me works with the cookie alone."""
    sign_up(client)
    cookie = _sign_in(client).cookies["tsr_session"]
    client.cookies.clear()
    me = client.get("/v1/me", headers=_cookie({"tsr_session": cookie}))
    assert me.status_code == 200 and me.json()["user"]["email"] == "ada@example.com"


@pytest.mark.postgres
def test_idle_sessions_end_after_seven_days_and_use_pushes_the_limit(
    client: TestClient, clock: ManualClock
) -> None:
    """Used every 6 days the session lives on; 7 idle days end it."""
    sign_up(client)
    cookie = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    clock.advance(6 * 86400)
    refreshed = client.get("/v1/me", headers=_cookie(cookie))
    assert refreshed.status_code == 200
    assert "tsr_session=" in refreshed.headers.get("set-cookie", "")
    again = client.get("/v1/me", headers=_cookie(cookie))
    assert "set-cookie" not in again.headers  # refreshed at most once a minute
    clock.advance(6 * 86400)
    assert client.get("/v1/me", headers=_cookie(cookie)).status_code == 200
    clock.advance(7 * 86400)
    assert_problem(client.get("/v1/me", headers=_cookie(cookie)), 401, "unauthorized")


@pytest.mark.postgres
def test_sessions_end_at_the_absolute_limit_however_used(
    client: TestClient, clock: ManualClock
) -> None:
    """30 days after sign-in the session ends even if used daily."""
    sign_up(client)
    cookie = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    for _ in range(29):
        clock.advance(86400)
        assert client.get("/v1/me", headers=_cookie(cookie)).status_code == 200
    clock.advance(86400)
    assert_problem(client.get("/v1/me", headers=_cookie(cookie)), 401, "unauthorized")


def test_cookie_write_from_a_foreign_origin_is_403(client: TestClient) -> None:
    """A state-changing call with only the cookie and a foreign Origin is refused."""
    sign_up(client)
    cookie = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    foreign = client.post(
        "/v1/workspaces",
        json={"name": "X"},
        headers={**_cookie(cookie), "Origin": "https://evil.example"},
    )
    assert_problem(foreign, 403, "forbidden")
    cross_site = client.post(
        "/v1/workspaces",
        json={"name": "X"},
        headers={**_cookie(cookie), "Sec-Fetch-Site": "cross-site"},
    )
    assert_problem(cross_site, 403, "forbidden")
    same = client.post(
        "/v1/workspaces", json={"name": "X"}, headers={**_cookie(cookie), "Origin": ORIGIN}
    )
    assert same.status_code == 201


def test_dashboard_form_without_the_csrf_token_is_refused(client: TestClient) -> None:
    """A same-origin form post without the session's token is refused; with it, it works."""
    sign_up(client)
    cookie = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    response = client.post(
        "/settings/api-keys", data={"name": "k"}, headers={**_cookie(cookie), "Origin": ORIGIN}
    )
    assert response.status_code == 403
    page = client.get("/settings/api-keys/new", headers=_cookie(cookie)).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    created = client.post(
        "/settings/api-keys",
        data={"name": "k", "csrf_token": token},
        headers={**_cookie(cookie), "Origin": ORIGIN},
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"].endswith("/created")


def test_cross_origin_login_form_is_refused(client: TestClient) -> None:
    """Login CSRF: a sign-in form posted from another site does not sign in."""
    sign_up(client)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


@pytest.mark.postgres
def test_end_one_session_and_sign_out_everywhere(client: TestClient) -> None:
    """DELETE ends one session; DELETE /v1/sessions ends all, refresh tokens included."""
    account = sign_up(client)
    first = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    second = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    listed = client.get("/v1/sessions", headers=_cookie(first)).json()["data"]
    other = next(s["id"] for s in listed if not s["current"])
    ended = client.delete(f"/v1/sessions/{other}", headers={**_cookie(first), "Origin": ORIGIN})
    assert ended.status_code == 204
    assert_problem(client.get("/v1/me", headers=_cookie(second)), 401, "unauthorized")
    assert (
        client.delete("/v1/sessions", headers={**_cookie(first), "Origin": ORIGIN}).status_code
        == 204
    )
    assert_problem(client.get("/v1/me", headers=_cookie(first)), 401, "unauthorized")
    refresh = client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert_problem(refresh, 401, "unauthorized")


def test_logout_with_the_cookie_ends_the_session(client: TestClient) -> None:
    """POST /v1/auth/logout without a body ends the cookie's session."""
    sign_up(client)
    cookie = {"tsr_session": _sign_in(client).cookies["tsr_session"]}
    client.cookies.clear()
    assert (
        client.post("/v1/auth/logout", headers={**_cookie(cookie), "Origin": ORIGIN}).status_code
        == 204
    )
    assert_problem(client.get("/v1/me", headers=_cookie(cookie)), 401, "unauthorized")


def test_pages_forbid_framing(client: TestClient) -> None:
    """Every dashboard page sends frame-ancestors 'none'."""
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
