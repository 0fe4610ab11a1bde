"""Settings → Workspaces: create, rename, delete, worded with workspace_label (SPEC 1, 10)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.test_dashboard_forms import csrf, signed_in

PAGE = "/settings/workspaces"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"workspace_label": "brand"}


def _post(client: TestClient, headers: dict[str, str], path: str, **data: str) -> Any:
    data.setdefault("csrf_token", csrf(client, headers, PAGE))
    return client.post(path, data=data, headers=headers, follow_redirects=False)


def _notice(client: TestClient, headers: dict[str, str], answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    cookie = f"{headers['Cookie']}; tsr_notice={answer.cookies['tsr_notice']}"
    page = client.get(answer.headers["location"], headers={**headers, "Cookie": cookie}).text
    found = re.search(r'role="status">([^<]+)</div>', page)
    assert found, page
    return found.group(1)


def _names(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """Each workspace's id and name, from its rename field."""
    page = client.get(PAGE, headers=headers).text
    return dict(re.findall(r'id="name-(ws_\w+)" name="name"[^>]* value="([^"]*)"', page))


def test_the_page_uses_the_configured_label(client: TestClient) -> None:
    """With workspace_label = "brand", the tab and the page say Brands."""
    headers = signed_in(client)
    page = client.get(PAGE, headers=headers).text
    assert '<a href="/settings/workspaces" class="active">Brands</a>' in page
    assert "<h1>Brands</h1>" in page and "Create brand" in page


def test_create_rename_and_delete(client: TestClient) -> None:
    """Each change is made through the service and said once on the page after it."""
    headers = signed_in(client)
    created = _post(client, headers, PAGE, name="Outdoor")
    assert _notice(client, headers, created) == "Brand Outdoor created."
    names = _names(client, headers)
    assert sorted(names.values()) == ["Default", "Outdoor"]
    outdoor = next(i for i, n in names.items() if n == "Outdoor")
    renamed = _post(client, headers, f"{PAGE}/{outdoor}/rename", name="Garden")
    assert _notice(client, headers, renamed) == "Renamed to Garden."
    confirm = client.get(f"{PAGE}/{outdoor}/delete", headers=headers)
    assert "Delete Garden?" in confirm.text
    deleted = _post(client, headers, f"{PAGE}/{outdoor}/delete")
    assert _notice(client, headers, deleted) == "Brand Garden deleted."
    assert sorted(_names(client, headers).values()) == ["Default"]


def test_a_long_name_is_refused_at_the_field(client: TestClient) -> None:
    """The API's model bounds the name: 422 with the error beside the field."""
    headers = signed_in(client)
    refused = _post(client, headers, PAGE, name="B" * 201)
    assert refused.status_code == 422
    assert re.search(r'<p class="field-error" id="name-error">[^<]*100', refused.text)
    assert sorted(_names(client, headers).values()) == ["Default"]
