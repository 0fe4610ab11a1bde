"""Dashboard pages say what happened and show values as people read them."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tessera.web.dashboard.chart import axis_step, usage_chart
from tessera.web.dashboard.readable import user_agent, wait
from tests.helpers import PASSWORD, sign_up
from tests.test_dashboard_forms import ORIGIN, csrf, signed_in

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def test_a_role_change_is_confirmed_on_the_members_page(client: TestClient) -> None:
    """After changing a role, the members page names the person and the new role, once."""
    headers = signed_in(client)
    ada = client.post(
        "/v1/auth/token", json={"email": "ada@example.com", "password": PASSWORD}
    ).json()
    sign_up(client, "bob@example.com", "Bobco")
    auth = {"Authorization": f"Bearer {ada['access_token']}"}
    bob = client.post("/v1/members", json={"email": "bob@example.com"}, headers=auth).json()
    token = csrf(client, headers, "/settings/members")
    changed = client.post(
        f"/settings/members/{bob['user']['id']}/role",
        data={"csrf_token": token, "role": "admin"},
        headers=headers,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    cookie = f"{headers['Cookie']}; tsr_notice={changed.cookies['tsr_notice']}"
    page = client.get("/settings/members", headers={**headers, "Cookie": cookie})
    assert 'role="status">Ada is now admin.</div>' in page.text  # Bob's name, from sign_up
    assert "is now admin." not in client.get("/settings/members", headers=headers).text


def test_sessions_show_the_browser_and_keep_the_whole_string_in_a_title(
    client: TestClient,
) -> None:
    """A Chrome on Linux reads "Chrome 131 on Linux"; the full user agent is the title."""
    sign_up(client)
    signed = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": ORIGIN, "User-Agent": CHROME},
        follow_redirects=False,
    )
    client.cookies.clear()
    headers = {"Cookie": f"tsr_session={signed.cookies['tsr_session']}", "User-Agent": CHROME}
    page = client.get("/settings/sessions", headers=headers).text
    assert f'title="{CHROME}">Chrome 131 on Linux</span>' in page


def test_the_lockout_message_says_when_to_try_again(client: TestClient, tessera: Tessera) -> None:
    """Past the failed sign-in limit, the page gives the wait and the time to try again."""
    sign_up(client)
    wrong = {"email": "ada@example.com", "password": "not the password"}
    for _ in range(tessera.config.rate_limit.failed_logins_per_email_and_ip):
        client.post("/login", data=wrong, headers={"Origin": ORIGIN})
    refused = client.post("/login", data=wrong, headers={"Origin": ORIGIN})
    assert refused.status_code == 429
    found = re.search(r"Try again in (\d+ \w+), at (\d\d:\d\d:\d\d) UTC\.", refused.text)
    assert found, refused.text


def test_user_agents_read_as_browser_and_system() -> None:
    """Common agents become "<browser> <major> on <system>"; unknown ones stay short."""
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"
    assert user_agent(firefox) == "Firefox 120 on Windows"
    assert user_agent(None) == "Unknown browser"
    assert len(user_agent("x" * 500)) <= 40


def test_waits_read_in_round_units() -> None:
    """Seconds under a minute, then minutes rounded up, then hours and minutes."""
    assert [wait(1), wait(42), wait(61), wait(300), wait(3700)] == [
        "1 second",
        "42 seconds",
        "2 minutes",
        "5 minutes",
        "1 hour 2 minutes",
    ]


def test_the_chart_has_a_y_axis_and_both_kinds_of_bar() -> None:
    """Round y-axis labels up to the peak; accepted and refused bars stacked per day."""
    days = [{"date": f"2026-11-{d:02}", "requests": d * 3, "rejected": d} for d in range(1, 31)]
    svg = usage_chart(days)
    assert re.findall(r'<text class="y"[^>]*>([\d,]+)</text>', svg) == ["0", "50", "100"]
    assert svg.count('class="bar accepted"') == 30 and svg.count('class="bar rejected"') == 30
    assert "2026-11-30: 90 requests, 60 accepted, 30 refused" in svg
    assert [axis_step(p) for p in (0, 3, 9, 90, 1000)] == [1, 1, 5, 50, 500]
