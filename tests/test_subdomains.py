"""One session across subdomains, as a person meets it: ``[session] cookie_domain`` shares the
cookie, so signing in on portal.example.test also authenticates api.example.test. Over TLS
(nginx in front, with a certificate this test makes), the names mapped to loopback in
Chromium, so that the cookie is ``Secure`` as in production."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.servers import free_port, nginx
from tests.social_peers import tessera_with

pytestmark = [pytest.mark.browser, pytest.mark.nginx]
PASSWORD = "correct horse battery"
SERVER = """
server {
    listen LISTEN ssl;
    server_name portal.example.test api.example.test marketplace.example.test;
    ssl_certificate CERT;
    ssl_certificate_key KEY;
    location / {
        proxy_pass http://UPSTREAM;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;
    }
}
"""


@dataclass(frozen=True)
class Site:
    portal: str
    api: str
    upstream: str


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for *.example.test; its file and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.test")])
    now = datetime.datetime.now(datetime.UTC)
    names = ["example.test", "*.example.test"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "site.crt", folder / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("subdomains")
    cert_file, key_file = certificate(folder)
    tessera_port, nginx_port = free_port(), free_port()
    portal = f"https://portal.example.test:{nginx_port}"
    api = f"https://api.example.test:{nginx_port}"
    top = f'allowed_origins = ["{api}"]\ntrusted_proxies = ["127.0.0.1/32"]'
    tables = '[session]\ncookie_domain = ".example.test"'
    with tessera_with(folder, tessera_port, tables, top=top, public_url=portal) as upstream:
        server = SERVER.replace("UPSTREAM", upstream.removeprefix("http://"))
        server = server.replace("CERT", str(cert_file)).replace("KEY", str(key_file))
        with nginx(server, folder / "nginx", port=nginx_port):
            yield Site(portal, api, upstream)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [
        *CHROMIUM_ARGS,
        "--ignore-certificate-errors",
        "--host-resolver-rules=MAP *.example.test 127.0.0.1",
    ]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            yield launched
        finally:
            launched.close()


def test_a_session_made_on_the_portal_authenticates_the_api(browser: Browser, site: Site) -> None:
    body = {
        "email": "ada@example.test",
        "password": PASSWORD,
        "name": "Ada",
        "organization_name": "Analytical Engines",
    }
    assert httpx.post(site.upstream + "/v1/auth/signup", json=body).status_code == 201
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.portal + "/login")
    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(site.portal + "/settings/api-keys")
    (cookie,) = [c for c in context.cookies() if c["name"] == "tsr_session"]
    assert cookie["domain"] == ".example.test"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # The other subdomain, in the same browser: the cookie goes there too.
    api_page = context.new_page()
    answer = api_page.goto(site.api + "/v1/me")
    assert answer is not None and answer.status == 200
    assert answer.json()["user"]["email"] == "ada@example.test"
    # A write from the API's origin is one of the deployment's own (allowed_origins); one from
    # a subdomain that is not listed gets the cookie too, but is refused.
    assert _create_key(api_page) == 201
    elsewhere = context.new_page()
    elsewhere.goto(site.api.replace("api.", "marketplace.") + "/healthz")
    assert _create_key(elsewhere) == 403
    context.close()


def test_without_the_cookie_the_api_refuses(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    answer = context.new_page().goto(site.api + "/v1/me")
    assert answer is not None and answer.status == 401
    context.close()


def _create_key(page: Page) -> int:
    """The status of creating an API key with fetch() from the page's origin."""
    status: int = page.evaluate(
        """async () => (await fetch('/v1/api-keys', {
            method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({name: 'From ' + location.host}),
        })).status"""
    )
    return status
