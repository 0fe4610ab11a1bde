"""Settings → API Keys in the dashboard: post/redirect/get, notices, filters, rename, roll."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.test_dashboard_forms import ORIGIN, csrf, signed_in

KEYS = "/settings/api-keys"


def _post(client: TestClient, headers: dict[str, str], path: str, **data: Any) -> Any:
    data.setdefault("csrf_token", csrf(client, headers))
    return client.post(path, data=data, headers=headers, follow_redirects=False)


def _follow(client: TestClient, headers: dict[str, str], response: Any) -> Any:
    """The page a form's 303 leads to, with the cookies the redirect set."""
    assert response.status_code == 303, response.text
    for name, value in response.cookies.items():
        headers = {**headers, "Cookie": f"{headers['Cookie']}; {name}={value}"}
    return client.get(response.headers["location"], headers=headers), headers


def _create(client: TestClient, headers: dict[str, str], **data: Any) -> tuple[Any, str]:
    answer = _post(client, headers, KEYS, name="Billing", scopes=["workspaces:read"], **data)
    page, _ = _follow(client, headers, answer)
    raw = re.search(r'id="raw-key" type="text" readonly value="([^"]+)"', page.text)
    assert raw, page.text
    return answer, raw.group(1)


def test_creating_a_key_redirects_and_shows_the_secret_once(
    client: TestClient, tessera: Tessera
) -> None:
    """The form's answer is a 303; the page after it shows the key; reloading that page shows
    it no more and makes no second key."""
    headers = signed_in(client)
    answer, raw = _create(client, headers)
    assert raw.startswith("tsr_live_")
    created_page = answer.headers["location"]
    assert re.fullmatch(r"/settings/api-keys/key_\w+/created", created_page)
    again = client.get(created_page, headers=headers)
    assert again.status_code == 200
    assert raw not in again.text and "shown once and cannot be shown again" in again.text
    organization = tessera.api_keys.page(_organization(tessera), limit=10).items
    assert [k.name for k in organization] == ["Billing"]


def test_the_secret_cookie_is_no_use_to_another_session(client: TestClient) -> None:
    """The carried secret is bound to the session that created the key."""
    headers = signed_in(client)
    answer = _post(client, headers, KEYS, name="Billing")
    other = signed_in_again(client)
    cookie = f"{other['Cookie']}; tsr_shown_once={answer.cookies['tsr_shown_once']}"
    page = client.get(answer.headers["location"], headers={**other, "Cookie": cookie})
    assert 'id="raw-key"' not in page.text


def signed_in_again(client: TestClient) -> dict[str, str]:
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": "correct horse battery"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    client.cookies.clear()
    return {"Cookie": f"tsr_session={response.cookies['tsr_session']}", "Origin": ORIGIN}


def test_a_refused_form_keeps_the_ticked_scopes(client: TestClient) -> None:
    """A validation error keeps what was chosen: scopes, environment, expiry."""
    headers = signed_in(client)
    answer = _post(
        client,
        headers,
        KEYS,
        name=" ",
        scopes=["workspaces:read", "api_keys:read"],
        environment="test",
        expires_in_days="30",
    )
    assert answer.status_code == 422
    checked = re.findall(r'name="scopes" value="([^"]+)" checked', answer.text)
    assert sorted(checked) == ["api_keys:read", "workspaces:read"]
    assert '<option value="test" selected>' in answer.text
    assert '<option value="30" selected>' in answer.text


def test_scope_groups_have_headings_for_people(client: TestClient) -> None:
    """The picker's headings read "API keys", "Workspaces", not ``api_keys``."""
    headers = signed_in(client)
    page = client.get(KEYS + "/new", headers=headers).text
    headings = re.findall(r'<p class="group-heading"><strong>([^<]+)</strong>', page)
    assert "API keys" in headings and "Workspaces" in headings
    assert not [h for h in headings if "_" in h]


def test_revoking_says_so_once(client: TestClient) -> None:
    """After revoking, the list says which key was revoked; a reload says it no more."""
    headers = signed_in(client)
    answer, _ = _create(client, headers)
    key_id = answer.headers["location"].split("/")[3]
    revoked = _post(client, headers, f"{KEYS}/{key_id}/revoke")
    page, _ = _follow(client, headers, revoked)
    assert re.search(r'role="status">Billing \(tsr_live_\w+…\) is revoked\.', page.text)
    assert "tsr_notice=;" in page.headers["set-cookie"]
    assert "is revoked" not in client.get(KEYS, headers=headers).text


def test_rolling_redirects_to_the_new_secret_and_marks_the_grace_period(
    client: TestClient,
) -> None:
    """Roll with a day of grace: the new key shown once, the old one marked in its grace."""
    headers = signed_in(client)
    answer, old_raw = _create(client, headers)
    key_id = answer.headers["location"].split("/")[3]
    rolled = _post(client, headers, f"{KEYS}/{key_id}/roll", expires_old_in_seconds="86400")
    page, _ = _follow(client, headers, rolled)
    assert "The old key keeps working for 1 day." in page.text
    new_raw = re.search(r'id="raw-key" type="text" readonly value="([^"]+)"', page.text)
    assert new_raw and new_raw.group(1) != old_raw
    listing = client.get(KEYS, headers=headers).text
    assert listing.count('class="status grace"') == 1
    detail = client.get(f"{KEYS}/{key_id}", headers=headers).text
    assert "This key was rolled. It keeps working until" in detail


def test_rename_in_place(client: TestClient) -> None:
    """The detail page renames the key, and says so."""
    headers = signed_in(client)
    answer, _ = _create(client, headers)
    key_id = answer.headers["location"].split("/")[3]
    renamed = _post(client, headers, f"{KEYS}/{key_id}/rename", name="Invoices")
    page, _ = _follow(client, headers, renamed)
    assert "Renamed to Invoices." in page.text
    assert 'title="Invoices">Invoices</h1>' in page.text


def test_filters_by_name_prefix_environment_and_status(client: TestClient) -> None:
    """Each filter keeps only the keys it names."""
    headers = signed_in(client)
    _create(client, headers)
    test_answer, _ = _create(client, headers, environment="test")
    test_id = test_answer.headers["location"].split("/")[3]
    _post(client, headers, f"{KEYS}/{test_id}/rename", name="Staging")
    revoked, _ = _create(client, headers)
    _post(client, headers, f"{KEYS}/{revoked.headers['location'].split('/')[3]}/revoke")

    def names(query: str) -> list[str]:
        page = client.get(f"{KEYS}?{query}", headers=headers).text
        return re.findall(r'href="/settings/api-keys/key_\w+" title="([^"]+)"', page)

    assert sorted(names("")) == ["Billing", "Billing", "Staging"]
    assert names("q=stag") == ["Staging"]
    assert names("q=tsr_test_") == ["Staging"]
    assert names("environment=test") == ["Staging"]
    assert names("status=revoked") == ["Billing"]
    assert sorted(names("status=active&environment=live")) == ["Billing"]
    assert "No key matches these filters" in client.get(f"{KEYS}?q=nothing", headers=headers).text


def test_the_detail_page_names_the_creator(client: TestClient) -> None:
    """Created … by the person's name and email, not a usr_ id."""
    headers = signed_in(client)
    answer, _ = _create(client, headers)
    key_id = answer.headers["location"].split("/")[3]
    page = client.get(f"{KEYS}/{key_id}", headers=headers).text
    assert "by <span" in page and "Ada (ada@example.com)" in page


def _organization(tessera: Tessera) -> str:
    user = tessera.accounts.user_by_email("ada@example.com")
    assert user is not None
    return tessera.accounts.memberships(user.id)[0].organization.id
