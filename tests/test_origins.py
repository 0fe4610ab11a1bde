"""The deployment's origins (SPEC section 3) and public_url from --host/--port (section 9)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tessera.config import load_config
from tessera.errors import ConfigError
from tessera.origins import deployment_origins, listening_mismatch, listening_url

LOCAL = deployment_origins("http://127.0.0.1:8611", ())
HOSTED = deployment_origins("https://auth.example.dev/tessera", ("https://portal.example.dev",))


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:8611", "http://localhost:8611", "http://localhost:8611/"]
)
def test_loopback_public_url_accepts_localhost_and_127_0_0_1_on_its_port(origin: str) -> None:
    """On a loopback public_url, localhost and 127.0.0.1 with the same port are one origin."""
    assert LOCAL.allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "https://localhost:8611",
        "http://127.0.0.2:8611",
        "http://localhost.evil.example:8611",
        "http://evil.example",
        "null",
        "",
        "http://localhost:8611/path",
        "http://user@localhost:8611",
        "http://[::1",
        "http://localhost:99999",
    ],
)
def test_loopback_public_url_refuses_other_ports_schemes_and_hosts(origin: str) -> None:
    """Another port, scheme or host, or something that is not an origin, is refused."""
    assert not LOCAL.allows(origin)


def test_hosted_public_url_has_no_loopback_equivalents() -> None:
    """The localhost equivalence is for loopback deployments only."""
    assert HOSTED.allows("https://auth.example.dev")
    assert HOSTED.allows("https://AUTH.example.dev:443")
    assert not HOSTED.allows("https://localhost")
    assert not HOSTED.allows("http://auth.example.dev")


def test_allowed_origins_are_trusted_besides_public_url() -> None:
    """An origin listed in allowed_origins is one of the deployment's; its neighbours are not."""
    assert HOSTED.allows("https://portal.example.dev")
    assert not HOSTED.allows("https://portal.example.dev:8443")
    assert not HOSTED.allows("https://marketplace.example.dev")


@pytest.mark.parametrize(
    "target",
    [
        "/settings/api-keys",
        "/settings/api-keys?tab=usage#top",
        "settings",
        "http://localhost:8611/settings",
        "http://127.0.0.1:8611/",
    ],
)
def test_return_path_relative_or_on_a_deployment_origin_is_accepted(target: str) -> None:
    """`next` may be relative or an absolute URL on one of the deployment's origins."""
    assert LOCAL.allows_return(target)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "https://evil.example/",
        "http://localhost:8000/",
        "http:evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://localhost:8611@evil.example/",
        "",
    ],
)
def test_return_path_elsewhere_is_refused(target: str) -> None:
    """`next` never leads off the deployment, however it is spelt."""
    assert not LOCAL.allows_return(target)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8611, "http://127.0.0.1:8611"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 9000, "http://127.0.0.1:9000"),
        ("::1", 9000, "http://[::1]:9000"),
        ("localhost", 80, "http://localhost"),
        ("10.1.2.3", 8000, "http://10.1.2.3:8000"),
    ],
)
def test_listening_url_is_what_public_url_defaults_to(host: str, port: int, url: str) -> None:
    """0.0.0.0 and :: become 127.0.0.1; any other host is kept."""
    assert listening_url(host, port) == url


def test_unset_public_url_is_derived_from_host_and_port() -> None:
    """With no public_url in the file, the environment or the overrides, --host/--port set it."""
    config = load_config(environ={}, listen=("0.0.0.0", 8611))
    assert config.public_url == "http://127.0.0.1:8611"
    assert config.issuer == "http://127.0.0.1:8611"


@pytest.mark.parametrize(
    "source",
    [
        {"environ": {"TESSERA_PUBLIC_URL": "https://auth.example.dev"}},
        {"environ": {}, "overrides": {"public_url": "https://auth.example.dev"}},
    ],
)
def test_configured_public_url_is_kept_whatever_the_port(source: dict[str, Any]) -> None:
    """A public_url that is set wins over the listening address."""
    assert load_config(listen=("127.0.0.1", 8611), **source).public_url == (
        "https://auth.example.dev"
    )


def test_allowed_origins_must_be_origins() -> None:
    """An entry with a path, or without a scheme, stops the start with the key named."""
    assert load_config(
        environ={}, overrides={"allowed_origins": ["https://portal.example.dev"]}
    ).allowed_origins == ["https://portal.example.dev"]
    for bad in ("portal.example.dev", "https://portal.example.dev/app", "*"):
        with pytest.raises(ConfigError, match=r"allowed_origins\[0\]"):
            load_config(environ={}, overrides={"allowed_origins": [bad]})


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("http://127.0.0.1:8611", "127.0.0.1", 8611),
        ("http://localhost:8611", "127.0.0.1", 8611),
        ("http://192.0.2.7:8000", "0.0.0.0", 8000),
        ("http://192.0.2.7:8000", "192.0.2.7", 8000),
    ],
)
def test_no_warning_when_public_url_is_where_the_server_listens(
    public_url: str, host: str, port: int
) -> None:
    """A public_url that reaches the listening socket directly is not warned about."""
    assert listening_mismatch(public_url, host, port) is None


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8611),
        ("http://192.0.2.7:8000", "127.0.0.1", 8000),
        ("https://auth.example.dev", "0.0.0.0", 443),
    ],
)
def test_warning_when_public_url_is_elsewhere(public_url: str, host: str, port: int) -> None:
    """Another port, a host the socket does not listen on, or https, is warned about."""
    message = listening_mismatch(public_url, host, port)
    assert message is not None and public_url in message


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ["https://portal.example"]}])
@pytest.mark.parametrize(
    "origin", ["http://localhost:8000", "http://127.0.0.1:8000", "https://portal.example"]
)
def test_sign_up_form_from_any_deployment_origin_is_accepted(
    client: TestClient, origin: str
) -> None:
    """The dashboard's sign-up form works from localhost as from 127.0.0.1 and allowed origins."""
    form = {
        "email": "ada@example.com",
        "password": "correct horse battery",
        "name": "Ada",
        "organization_name": "Acme",
    }
    answer = client.post("/signup", data=form, headers={"Origin": origin}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/settings/api-keys"


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ["https://portal.example"]}])
def test_sign_up_form_from_a_foreign_origin_is_still_refused(client: TestClient) -> None:
    """An origin outside public_url and allowed_origins keeps getting 403."""
    form = {"email": "ada@example.com", "password": "correct horse battery"}
    for origin in ("http://localhost:9000", "https://evil.example"):
        answer = client.post("/signup", data=form, headers={"Origin": origin})
        assert answer.status_code == 403
        assert "Cross-origin" in answer.text
