"""Settings → Audit Log: names beside ids, filters by action, actor and date, CSV export."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import timedelta

from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tests.helpers import PASSWORD, Account, create_key, log_in, sign_up
from tests.test_dashboard_forms import ORIGIN

PAGE = "/settings/audit-log"


def _ada(client: TestClient) -> tuple[Account, dict[str, str]]:
    """Ada's account and her dashboard session's headers."""
    account = sign_up(client)
    signed = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    client.cookies.clear()
    return account, {"Cookie": f"tsr_session={signed.cookies['tsr_session']}"}


def _actions(html: str) -> list[str]:
    return re.findall(r"<td><code>([\w.]+)</code></td>", html)


def test_names_are_shown_beside_the_ids(client: TestClient) -> None:
    """The actor's name and the key's name are shown, with their ids under them."""
    api, page = _ada(client)
    key = create_key(client, api, name="Billing sync")
    html = client.get(PAGE + "?action=api_key.created", headers=page).text
    assert 'title="Ada (ada@example.com)">Ada (ada@example.com)</span>' in html
    assert 'title="Billing sync">Billing sync</span>' in html
    assert key["id"] in html and api.user_id in html


def test_filters_by_action_actor_and_date(client: TestClient, clock: ManualClock) -> None:
    """Each filter narrows the list; a date span includes its last day."""
    api, page = _ada(client)
    create_key(client, api, name="Old")
    clock.advance(3 * 86400)
    api = replace(api, access_token=log_in(client, api.email)["access_token"])
    create_key(client, api, name="New")
    today = clock.now().date()
    assert _actions(client.get(PAGE + "?action=api_key", headers=page).text) == [
        "api_key.created",
        "api_key.created",
    ]
    recent = client.get(f"{PAGE}?action=api_key&from={today}&to={today}", headers=page).text
    assert (
        _actions(recent) == ["api_key.created"]
        and 'title="New"' in recent
        and 'title="Old"' not in recent
    )
    earlier = today - timedelta(days=1)
    old = client.get(f"{PAGE}?action=api_key&to={earlier}", headers=page).text
    assert _actions(old) == ["api_key.created"] and 'title="Old"' in old
    nobody = client.get(f"{PAGE}?actor=usr_nobody", headers=page).text
    assert "No event matches these filters" in nobody


def test_csv_export_keeps_the_filters_and_neutralizes_formulas(client: TestClient) -> None:
    """The CSV has one row per selected event, names included; a name starting with = is
    quoted so that a spreadsheet does not run it."""
    api, page = _ada(client)
    create_key(client, api, name="=HYPERLINK(1)")
    create_key(client, api, name="Billing")
    answer = client.get(PAGE + ".csv?action=api_key.created", headers=page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["action"] for r in rows] == ["api_key.created", "api_key.created"]
    assert {r["target_name"] for r in rows} == {"Billing", "'=HYPERLINK(1)"}
    assert {r["actor_name"] for r in rows} == {"Ada (ada@example.com)"}
