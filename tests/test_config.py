"""Configuration: the TOML file, TESSERA_* overrides, strict validation, the secret key file."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tessera.config import load_config, resolve_secret_key
from tessera.errors import ConfigError
from tessera.scopes import ScopeCatalog


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tessera.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_spec() -> None:
    """With no file and no variables, the SPEC's defaults apply."""
    config = load_config(environ={})
    assert config.database_url == "sqlite:///./tessera.db"
    assert (config.key_prefix, config.signup, config.forward_auth_default) == (
        "tsr",
        "open",
        "deny",
    )
    assert (
        config.session.cookie_name,
        config.session.max_age_days,
        config.session.absolute_max_days,
    ) == (
        "tsr_session",
        7,
        30,
    )
    assert (config.tokens.access_ttl_seconds, config.tokens.refresh_ttl_days) == (3600, 30)
    assert (config.rate_limit.requests, config.rate_limit.per_seconds) == (1000, 60)


def test_file_tables_and_arrays_are_read(tmp_path: Path) -> None:
    """Scopes, roles, routes and nested tables come from the file."""
    path = _write(
        tmp_path,
        """
key_prefix = "acme"
[session]
cookie_domain = ".example.dev"
[[scope]]
name = "contacts:read"
description = "Read contacts"
[[scope]]
name = "admin:marketing"
admin_only = true
[roles]
viewer = ["*:read"]
[[route]]
methods = ["GET"]
path = "/v1/contacts*"
scopes = ["contacts:read"]
""",
    )
    config = load_config(path, environ={})
    assert config.key_prefix == "acme"
    assert config.session.cookie_domain == ".example.dev"
    assert config.route[0].scopes == ["contacts:read"]
    catalog = ScopeCatalog(config)
    assert "contacts:read" in catalog.granted_by_role("viewer")
    assert "api_keys:read" in catalog.granted_by_role("viewer")
    assert "admin:marketing" not in catalog.granted_by_role("member")
    assert "admin:marketing" in catalog.granted_by_role("admin")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """TESSERA_<KEY> beats the file; TESSERA_<TABLE>__<KEY> reaches into a table."""
    path = _write(tmp_path, 'key_prefix = "acme"\n')
    config = load_config(
        path, environ={"TESSERA_KEY_PREFIX": "zeta", "TESSERA_RATE_LIMIT__REQUESTS": "5"}
    )
    assert config.key_prefix == "zeta"
    assert config.rate_limit.requests == 5


def test_tessera_config_variable_names_the_file(tmp_path: Path) -> None:
    """TESSERA_CONFIG points at the file when --config is not given."""
    path = _write(tmp_path, 'signup = "closed"\n')
    assert load_config(environ={"TESSERA_CONFIG": str(path)}).signup == "closed"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('key_prefx = "acme"\n', "key_prefx"),
        ('[session]\nmax_age_days = "seven"\n', "session.max_age_days"),
        ('signup = "sometimes"\n', "signup"),
        ('key_prefix = "ACME!"\n', "key_prefix"),
        ('[[scope]]\nname = "not a scope"\n', "scope[0].name"),
        ("[rate_limit]\nrequests = 0\n", "rate_limit.requests"),
        ('database_url = "mysql://x"\n', "database_url"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    """Every invalid setting stops the start with a message naming it."""
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    "path", ["/v1%2Fcontacts", "/v1/contacts?limit=5", "v1/contacts*", "/v1\\contacts"]
)
def test_a_route_path_no_request_could_match_names_the_route(tmp_path: Path, path: str) -> None:
    """A [[route]] path with a query, an ambiguous spelling or no leading '/' stops the start."""
    text = f"[[route]]\npath = '{path}'\nscopes = []\n"
    with pytest.raises(ConfigError, match=r"route\[0\]\.path"):
        load_config(_write(tmp_path, text), environ={})


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    """A syntax error names the file."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "key_prefix = \n"), environ={})


def test_unknown_environment_variable_is_refused() -> None:
    """A misspelt TESSERA_ variable is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="TESSERA_SINGUP"):
        load_config(environ={"TESSERA_SINGUP": "closed"})


def test_secret_key_is_generated_once_with_0600(tmp_path: Path) -> None:
    """An empty secret_key is generated beside the SQLite file, kept, and owner-readable only."""
    config = load_config(environ={}, overrides={"database_url": f"sqlite:///{tmp_path}/data/t.db"})
    first = resolve_secret_key(config)
    second = resolve_secret_key(config)
    path = tmp_path / "data" / "tessera.secret"
    assert first == second and len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_proxy_is_trusted_by_default() -> None:
    """trusted_proxies is empty unless configured: loopback is a client like any other."""
    assert load_config(environ={}).trusted_proxies == []


def test_a_trusted_proxy_that_is_not_a_cidr_stops_the_start() -> None:
    """A typo in trusted_proxies is a ConfigError naming it, not a 500 at the first request."""
    with pytest.raises(ConfigError, match=r"trusted_proxies\[1\]"):
        load_config(environ={}, overrides={"trusted_proxies": ["10.0.0.0/8", "localhost"]})


def test_providers_are_read_with_their_overrides(tmp_path: Path) -> None:
    """[[provider]] tables: built-in names, a discovered provider, endpoint overrides."""
    path = _write(
        tmp_path,
        """
[[provider]]
name = "github"
client_id = "gh-client"
client_secret = "gh-secret"
api_url = "http://127.0.0.1:9000/api"
[[provider]]
name = "corp"
discovery_url = "https://idp.example.com/.well-known/openid-configuration"
client_id = "corp-client"
""",
    )
    config = load_config(path, environ={})
    github, corp = config.provider
    assert (github.kind, github.display_name, github.api_url) == (
        "github",
        "GitHub",
        "http://127.0.0.1:9000/api",
    )
    assert (corp.kind, corp.display_name, corp.client_secret) == ("oidc", "Corp", "")


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('name = "corp"\nclient_id = "c"', "provider[0].discovery_url"),
        ('name = "google"', "provider[0].client_id"),
        ('name = "Bad Name"\nclient_id = "c"', "provider[0].name"),
        ('name = "google"\nclient_id = "c"\ntoken_url = "ftp://x"', "provider[0].token_url"),
        ('name = "google"\nclient_id = "c"\ncolour = "red"', "provider[0].colour"),
    ],
)
def test_a_provider_table_that_cannot_work_stops_the_start(
    tmp_path: Path, table: str, named: str
) -> None:
    """A provider missing what it needs, or with an unknown key, is named at start."""
    path = _write(tmp_path, "[[provider]]\n" + table + "\n")
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(path, environ={})


def test_a_provider_named_twice_stops_the_start(tmp_path: Path) -> None:
    """Two tables for one name would share a callback path: refused."""
    table = '[[provider]]\nname = "github"\nclient_id = "c"\n'
    with pytest.raises(ConfigError, match="configured twice"):
        load_config(_write(tmp_path, table * 2), environ={})
