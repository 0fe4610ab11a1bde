"""The sign-in page's return address (`next`): followed when it stays on the deployment,
replaced by the dashboard otherwise."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.helpers import PASSWORD, sign_up


def _sign_in(client: TestClient, target: str) -> str:
    form = {"email": "ada@example.com", "password": PASSWORD, "next": target}
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    location: str = answer.headers["location"]
    return location


@pytest.mark.parametrize(
    "target",
    [
        "/oauth2/authorize?client_id=cli_x&state=s",
        "http://127.0.0.1:8000/settings/sessions",
        "http://localhost:8000/settings/sessions",
    ],
)
def test_sign_in_returns_to_a_path_on_the_deployment(client: TestClient, target: str) -> None:
    """After sign-in the person lands where they were going, on this deployment."""
    sign_up(client)
    assert _sign_in(client, target) == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://127.0.0.1:9999/",
    ],
)
def test_sign_in_never_returns_off_the_deployment(client: TestClient, target: str) -> None:
    """An open-redirect attempt on the return path lands on the dashboard instead."""
    sign_up(client)
    assert _sign_in(client, target) == "/settings/api-keys"


def test_sign_in_page_carries_the_return_path(client: TestClient) -> None:
    """The form posts `next` back, escaped; a foreign one is not carried at all."""
    page = client.get("/login", params={"next": "/oauth2/authorize?a=1&b=2"})
    assert 'name="next" value="/oauth2/authorize?a=1&amp;b=2"' in page.text
    foreign = client.get("/login", params={"next": "https://evil.example/"})
    assert "evil.example" not in foreign.text
