"""The OpenAPI description says what the API really answers, and /docs and /redoc stand alone."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from starlette.testclient import TestClient

from tests.browser import chromium, tessera_server
from tests.helpers import assert_problem, sign_up

PROBLEM = {"$ref": "#/components/schemas/Problem"}
METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/v1/api-keys?limit=2112",
        "/v1/api-keys?limit=0",
        "/v1/audit-events?limit=101",
        "/v1/audit-events?limit=-1",
    ],
)
def test_a_limit_out_of_range_is_a_validation_error(client: TestClient, path: str) -> None:
    """limit outside 1-100 is 422 validation_error naming the field, as the schema declares."""
    account = sign_up(client)
    body = assert_problem(client.get(path, headers=account.headers), 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["query.limit"]


def test_the_schema_declares_the_bounds_of_limit_and_days(document: dict[str, Any]) -> None:
    """limit is 1-100 and days 1-366 in the description too."""
    bounds = {}
    for _, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("limit", "days"):
                schema = parameter["schema"]
                bounds[(path, parameter["name"])] = (schema["minimum"], schema["maximum"])
    assert bounds == {
        ("/v1/api-keys", "limit"): (1, 100),
        ("/v1/audit-events", "limit"): (1, 100),
        ("/v1/api-keys/{key_id}/usage", "days"): (1, 366),
    }


def test_every_error_answer_is_a_problem(document: dict[str, Any]) -> None:
    """Every 4xx and 5xx an operation declares is application/problem+json with the schema
    of SPEC section 6 (readiness excepted: its 503 is the readiness report)."""
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                method,
                path,
                status,
            )


def test_the_problem_schema_has_the_fields_of_the_error_format(document: dict[str, Any]) -> None:
    """type, title, status, code, detail and request_id are required; errors and
    required_scopes may be added."""
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail", "request_id"}
    assert {"errors", "required_scopes"} <= set(problem["properties"])


def test_every_success_answer_has_a_schema(document: dict[str, Any]) -> None:
    """A 2xx with a body names its schema; none is the empty schema. A 2xx without one (a
    204, forward auth's 200) documents no content at all."""
    bodiless = {("GET", "/v1/forward-auth")}
    for method, path, operation in _operations(document):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert len(successes) == 1, (method, path)
        for status, response in successes.items():
            if status == "204" or (method, path) in bodiless:
                assert "content" not in response, (method, path)
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema and schema != {}, (method, path)


def test_operations_that_read_a_body_document_its_refusals(document: dict[str, Any]) -> None:
    """A body that is not JSON is a 400, a body too large a 413 and a body of the wrong shape
    a 422, even where the body is optional."""
    for method, path, operation in _operations(document):
        if "requestBody" in operation and path.startswith("/v1/"):
            assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)


def test_operations_with_a_credential_document_its_refusals(document: dict[str, Any]) -> None:
    """An operation that takes a credential declares 401 with WWW-Authenticate and 429 with
    Retry-After; one without any declares neither."""
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        if path == "/v1/auth/token":  # no credential, but throttled: 401 and 429 both
            continue
        takes_credential = any(operation.get("security", []))
        assert ("401" in responses) == takes_credential, (method, path)
        if "401" in responses:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_answers_to_a_caller_document_its_quota(document: dict[str, Any]) -> None:
    """The 2xx of an operation that charges the caller's quota declares X-RateLimit-*; those
    that charge no one (sign-up, logout, the service-token verify, health) do not."""

    def declared(method: str, path: str) -> bool:
        operation = document["paths"][path][method]
        success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
        return "X-RateLimit-Remaining" in success.get("headers", {})

    charged = [("get", "/v1/api-keys"), ("post", "/v1/api-keys"), ("get", "/v1/me")]
    charged += [("delete", "/v1/sessions"), ("get", "/v1/forward-auth")]
    free = [("post", "/v1/auth/signup"), ("post", "/v1/auth/logout")]
    free += [("post", "/v1/keys/verify"), ("get", "/healthz")]
    assert all(declared(*operation) for operation in charged)
    assert not any(declared(*operation) for operation in free)


def test_the_security_schemes_are_the_four_credentials(document: dict[str, Any]) -> None:
    """Bearer, X-API-Key, the session cookie and service tokens are declared schemes."""
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    assert (schemes["sessionCookie"]["in"], schemes["sessionCookie"]["name"]) == (
        "cookie",
        "tsr_session",
    )
    assert schemes["serviceToken"]["scheme"] == "bearer"
    assert schemes["proxyServiceToken"]["name"] == "X-Tessera-Service-Token"


def test_the_fast_path_operations_are_described(document: dict[str, Any]) -> None:
    """verify and forward-auth, served before the router, are described as they answer."""
    verify = document["paths"]["/v1/keys/verify"]["post"]
    assert verify["security"] == [{"serviceToken": []}]
    verdict = verify["responses"]["200"]["content"]["application/json"]["schema"]
    assert verdict == {"$ref": "#/components/schemas/Verdict"}
    forward = document["paths"]["/v1/forward-auth"]["get"]
    assert {"proxyServiceToken": [], "apiKey": []} in forward["security"]
    ok = forward["responses"]["200"]
    assert "content" not in ok  # the identity is in the fields; there is no body
    assert "X-Tessera-Principal" in ok["headers"]
    assert {"X-Original-URI", "X-Forwarded-Uri"} <= {p["name"] for p in forward["parameters"]}


class _Assets(HTMLParser):
    """The URLs of a page's scripts, stylesheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_what_tessera_serves(client: TestClient, page: str) -> None:
    """Every script, stylesheet and icon of /docs and /redoc is a path on Tessera that answers."""
    response = client.get(page)
    assert response.status_code == 200
    parser = _Assets()
    parser.feed(response.text)
    assert parser.urls
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_may_not_be_framed(client: TestClient, page: str) -> None:
    """The pages forbid framing and loading from anywhere else."""
    headers = client.get(page).headers
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy


@pytest.mark.browser
@pytest.mark.parametrize(
    ("page_path", "rendered"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")]
)
def test_the_docs_pages_render_in_a_browser_from_tessera_alone(
    tmp_path: Path, page_path: str, rendered: str
) -> None:
    """In Chromium, under their CSP, /docs and /redoc show every operation and fetch nothing
    from another host (ReDoc's footer logo asks for one and is refused)."""
    with tessera_server(tmp_path) as base, chromium() as browser:
        page = browser.new_page()
        fetched_elsewhere: list[str] = []
        page.on(
            "requestfinished",
            lambda r: (
                None
                if r.url.startswith((base, "data:", "blob:"))
                else fetched_elsewhere.append(r.url)
            ),
        )
        page.goto(base + page_path)
        operations = len(_operations(httpx.get(base + "/openapi.json").json()))
        expect(page.locator(rendered).first).to_be_visible(timeout=20_000)
        if page_path == "/docs":
            expect(page.locator(rendered)).to_have_count(operations)
        else:
            expect(page.get_by_text("Create Key").first).to_be_attached()
        assert fetched_elsewhere == []
