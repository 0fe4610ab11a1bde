"""Dashboard forms refuse what the API refuses, with the error at the field (SPEC 2, 10)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.deployment import Tessera
from tests.helpers import PASSWORD, sign_up

ORIGIN = "http://127.0.0.1:8000"


def signup_form(**changes: str) -> dict[str, str]:
    return {
        "name": "Ada",
        "email": "ada@example.com",
        "password": PASSWORD,
        "organization_name": "Acme",
        **changes,
    }


def post_signup(client: TestClient, **changes: str) -> Any:
    return client.post(
        "/signup", data=signup_form(**changes), headers={"Origin": ORIGIN}, follow_redirects=False
    )


def field_error(html: str, field: str) -> str:
    """The message shown beside ``field``; fails when there is none."""
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert found, f"no error beside {field}"
    assert f'aria-describedby="{field}-error"' in html
    return found.group(1)


def signed_in(client: TestClient) -> dict[str, str]:
    """The Cookie header of a dashboard session of a new person, and the page's CSRF token."""
    sign_up(client)
    response = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return {"Cookie": f"tsr_session={response.cookies['tsr_session']}", "Origin": ORIGIN}


def csrf(client: TestClient, headers: dict[str, str], path: str = "/settings/api-keys") -> str:
    page = client.get(path, headers=headers)
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.mark.postgres
def test_a_201_character_organization_name_is_a_422_at_the_field(
    client: TestClient, tessera: Tessera
) -> None:
    """Sign-up with a 201-character organization name: 422, the error beside the field, no
    account (PostgreSQL included, where it once was a 500)."""
    response = post_signup(client, organization_name="A" * 201)
    assert response.status_code == 422, response.text
    assert "100" in field_error(response.text, "organization_name")
    assert tessera.accounts.user_by_email("ada@example.com") is None


def test_a_10000_character_name_is_not_stored(client: TestClient, tessera: Tessera) -> None:
    """A 10,000-character organization name is refused, and nothing is stored."""
    response = post_signup(client, organization_name="W" * 10_000)
    assert response.status_code == 422
    assert tessera.accounts.user_by_email("ada@example.com") is None


def test_a_long_person_name_and_short_password_are_shown_at_their_fields(
    client: TestClient,
) -> None:
    """Each field the API's model refuses gets its own message, and the top says so."""
    response = post_signup(client, name="N" * 201, password="short")
    assert response.status_code == 422
    assert "200" in field_error(response.text, "name")
    assert "10" in field_error(response.text, "password")
    assert "Check the fields marked below." in response.text


def test_a_bad_email_is_shown_at_its_field(client: TestClient) -> None:
    """What the service refuses (an address without @) is shown beside the field too."""
    response = post_signup(client, email="not-an-address")
    assert response.status_code == 422
    assert field_error(response.text, "email") == "Not an email address"
