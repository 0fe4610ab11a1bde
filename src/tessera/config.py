"""Configuration: a TOML file (SPEC section 8) with ``TESSERA_*`` environment overrides.

Parsing is strict: an unknown key or a value of the wrong type stops the start with a
:class:`ConfigError` naming the key, never with a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from tessera.errors import ConfigError, InvalidRequest
from tessera.origins import listening_url, origin_of_url, parse_origin
from tessera.request_path import route_pattern

SCOPE_PATTERN = re.compile(r"^[a-z0-9_-]+:[a-z0-9_-]+$")
KEY_PREFIX_PATTERN = re.compile(r"^[a-z0-9]{2,10}$")
PROVIDER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ENDPOINT_KEYS = (
    "discovery_url",
    "authorize_url",
    "token_url",
    "userinfo_url",
    "jwks_uri",
    "api_url",
)


@dataclass(frozen=True)
class SessionConfig:
    cookie_name: str = "tsr_session"
    cookie_domain: str = ""
    max_age_days: int = 7
    absolute_max_days: int = 30


@dataclass(frozen=True)
class TokensConfig:
    access_ttl_seconds: int = 3600
    refresh_ttl_days: int = 30
    # The JWKS Cache-Control max-age; a new signing key signs only once it is this old.
    jwks_max_age_seconds: int = 300
    signing_algorithm: Literal["RS256", "ES256"] = "RS256"


@dataclass(frozen=True)
class RateLimitConfig:
    requests: int = 1000
    per_seconds: int = 60
    # Failed authentications (bad keys, passwords, service tokens) per client IP, failed logins
    # per email (from every address) and per email from one address, in failures_per_seconds.
    # How they combine: README, "Throttling and client addresses".
    failures_per_ip: int = 30
    failed_logins_per_email: int = 10
    failed_logins_per_email_and_ip: int = 10
    failures_per_seconds: int = 300
    # What to do when Redis cannot be reached: refuse with 503, or decide with this process alone.
    on_redis_error: Literal["refuse", "local"] = "local"


@dataclass(frozen=True)
class ScopeConfig:
    name: str
    description: str = ""
    admin_only: bool = False


@dataclass(frozen=True)
class RouteConfig:
    path: str
    methods: list[str] = field(default_factory=lambda: ["*"])
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProviderConfig:
    """A sign-in provider (SPEC section 8): ``google`` and ``github`` have built-in endpoints,
    any other name is an OpenID Connect provider found through its ``discovery_url``. Every
    endpoint can be overridden (a mirror, a test stand-in)."""

    name: str
    client_id: str = ""
    client_secret: str = ""
    discovery_url: str = ""
    authorize_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    jwks_uri: str = ""
    api_url: str = ""  # github: where /user and /user/emails are
    label: str = ""  # the button's "Sign in with <label>"; default from the name
    scopes: list[str] = field(default_factory=list)  # default: openid email profile

    @property
    def kind(self) -> Literal["google", "github", "oidc"]:
        if self.name == "google":
            return "google"
        return "github" if self.name == "github" else "oidc"

    @property
    def display_name(self) -> str:
        built_in = {"google": "Google", "github": "GitHub"}
        return self.label or built_in.get(self.name) or self.name.replace("-", " ").title()


@dataclass(frozen=True)
class Config:
    public_url: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite:///./tessera.db"
    redis_url: str = ""
    secret_key: str = ""
    key_prefix: str = "tsr"
    signup: Literal["open", "closed"] = "open"
    workspace_label: str = "workspace"
    max_key_lifetime_days: int = 0
    forward_auth_default: Literal["deny", "authenticate"] = "deny"
    # Proxies (CIDRs) whose X-Forwarded-For is believed when finding the client's address.
    trusted_proxies: list[str] = field(default_factory=list)
    # More origins trusted for cookie-authenticated writes and return paths (besides public_url's).
    allowed_origins: list[str] = field(default_factory=list)
    # Cached verdicts are served only under a lease renewed through Redis at least this often;
    # without one, read the database ("database") or answer 503 ("refuse"). SPEC section 6.
    cache_lease_ms: int = 500
    revocation_fallback: Literal["database", "refuse"] = "database"
    # Argon2id parameters: "default" (RFC 9106 low-memory) or "cheapest" (test suites only).
    password_profile: Literal["default", "cheapest"] = "default"  # noqa: S105 (a profile name)
    # Argon2 computations at once (0: half the cores, at least one) and how many may wait.
    password_hashing_workers: int = 0
    password_hashing_queue: int = 8
    log_level: str = "info"
    session: SessionConfig = field(default_factory=SessionConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    scope: list[ScopeConfig] = field(default_factory=list)
    roles: dict[str, list[str]] = field(default_factory=dict)
    route: list[RouteConfig] = field(default_factory=list)
    provider: list[ProviderConfig] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def is_loopback_http(self) -> bool:
        parts = urlsplit(self.public_url)
        return parts.scheme == "http" and (parts.hostname or "") in {
            "127.0.0.1",
            "localhost",
            "::1",
        }

    @property
    def sqlite_path(self) -> Path | None:
        if not self.database_url.startswith("sqlite"):
            return None
        raw = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return None if raw in ("", ":memory:") else Path(raw)


def load_config(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    listen: tuple[str, int] | None = None,
) -> Config:
    """Read the file (if any), apply ``TESSERA_*`` variables, then ``overrides``, and validate.

    ``listen`` is the server's host and port: ``public_url``, when none of those set it, is
    derived from them (SPEC section 9)."""
    env = dict(os.environ if environ is None else environ)
    raw = _read_file(path, env)
    _apply_environment(raw, env)
    raw.update(overrides or {})
    if listen is not None and "public_url" not in raw:
        raw["public_url"] = listening_url(*listen)
    config: Config = _build(Config, raw, "")
    _validate(config)
    return config


def _read_file(path: str | Path | None, env: dict[str, str]) -> dict[str, Any]:
    chosen = path or env.get("TESSERA_CONFIG")
    if not chosen:
        default = Path("tessera.toml")
        if not default.exists():
            return {}
        chosen = default
    file = Path(chosen)
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None


def _apply_environment(raw: dict[str, Any], env: dict[str, str]) -> None:
    """``TESSERA_KEY`` sets a top-level key; ``TESSERA_SECTION__KEY`` a key of a table."""
    hints = get_type_hints(Config)
    for name, value in env.items():
        if not name.startswith("TESSERA_") or name == "TESSERA_CONFIG":
            continue
        key = name.removeprefix("TESSERA_").lower()
        section, _, sub = key.partition("__")
        if section not in hints:
            raise ConfigError(f"environment variable {name}: Tessera has no setting '{key}'")
        if sub:
            raw.setdefault(section, {})[sub] = _from_env(name, value)
        else:
            raw[section] = _from_env(name, value)


def _from_env(name: str, value: str) -> Any:
    """Numbers, booleans and JSON lists/tables are decoded; anything else stays a string."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"environment variable {name} is not valid JSON") from None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown config key '{_join(where, key)}'")
    values = {key: _coerce(hints[key], value, _join(where, key)) for key, value in raw.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(c) for c in get_args(hint))
            raise ConfigError(f"config key '{where}' must be one of {choices}, not {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{where}' must be a list")
        (item,) = get_args(hint)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{where}' must be a table")
        _, item = get_args(hint)
        return {str(k): _coerce(item, v, _join(where, str(k))) for k, v in value.items()}
    expected = {int: int, str: str, bool: bool}[hint]
    if type(value) is not expected:
        raise ConfigError(f"config key '{where}' must be {expected.__name__}, not {value!r}")
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _validate(config: Config) -> None:
    if not KEY_PREFIX_PATTERN.match(config.key_prefix):
        raise ConfigError("config key 'key_prefix' must be 2-10 lowercase letters or digits")
    if origin_of_url(config.public_url) is None:
        raise ConfigError("config key 'public_url' must be an http(s) URL")
    for index, origin in enumerate(config.allowed_origins):
        if parse_origin(origin) is None:
            raise ConfigError(
                f"config key 'allowed_origins[{index}]': {origin!r} is not an origin "
                "(scheme://host[:port])"
            )
    if not config.database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError("config key 'database_url' must start with sqlite:// or postgresql://")
    for index, scope in enumerate(config.scope):
        if not SCOPE_PATTERN.match(scope.name):
            raise ConfigError(
                f"config key 'scope[{index}].name': {scope.name!r} is not resource:action"
            )
    for index, cidr in enumerate(config.trusted_proxies):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                f"config key 'trusted_proxies[{index}]': {cidr!r} is not an address or CIDR"
            ) from None
    for index, route in enumerate(config.route):
        try:
            route_pattern(route.path)
        except InvalidRequest as exc:
            raise ConfigError(f"config key 'route[{index}].path': {exc.detail}") from None
    _validate_providers(config.provider)
    positive = {
        "max_key_lifetime_days": config.max_key_lifetime_days >= 0,
        "cache_lease_ms": config.cache_lease_ms > 0,
        "password_hashing_workers": config.password_hashing_workers >= 0,
        "password_hashing_queue": config.password_hashing_queue >= 0,
        "tokens.access_ttl_seconds": config.tokens.access_ttl_seconds > 0,
        "tokens.refresh_ttl_days": config.tokens.refresh_ttl_days > 0,
        "tokens.jwks_max_age_seconds": config.tokens.jwks_max_age_seconds >= 0,
        "rate_limit.requests": config.rate_limit.requests > 0,
        "rate_limit.per_seconds": config.rate_limit.per_seconds > 0,
        "rate_limit.failures_per_ip": config.rate_limit.failures_per_ip > 0,
        "rate_limit.failed_logins_per_email": config.rate_limit.failed_logins_per_email > 0,
        "rate_limit.failed_logins_per_email_and_ip": (
            config.rate_limit.failed_logins_per_email_and_ip > 0
        ),
        "rate_limit.failures_per_seconds": config.rate_limit.failures_per_seconds > 0,
        "session.max_age_days": config.session.max_age_days > 0,
        "session.absolute_max_days": config.session.absolute_max_days > 0,
    }
    for key, ok in positive.items():
        if not ok:
            raise ConfigError(f"config key '{key}' must be positive")


def _validate_providers(providers: list[ProviderConfig]) -> None:
    seen: set[str] = set()
    for index, provider in enumerate(providers):
        where = f"provider[{index}]"
        if not PROVIDER_NAME_PATTERN.match(provider.name):
            raise ConfigError(
                f"config key '{where}.name': {provider.name!r} must be 1-32 lowercase letters, "
                "digits, '-' or '_' (it is part of the callback's path)"
            )
        if provider.name in seen:
            raise ConfigError(f"config key '{where}.name': {provider.name!r} is configured twice")
        seen.add(provider.name)
        if not provider.client_id:
            raise ConfigError(f"config key '{where}.client_id' is required")
        if provider.kind == "oidc" and not provider.discovery_url:
            raise ConfigError(
                f"config key '{where}.discovery_url' is required for {provider.name!r} "
                "(only google and github have built-in endpoints)"
            )
        for key in ENDPOINT_KEYS:
            url = getattr(provider, key)
            if url and origin_of_url(url) is None:
                raise ConfigError(f"config key '{where}.{key}' must be an http(s) URL")


def resolve_secret_key(config: Config, *, config_dir: Path | None = None) -> str:
    """The configured ``secret_key``, or one generated once and kept in a ``0600`` file.

    The file sits beside the SQLite database; for a server database it sits in the working
    directory, and deployments with several instances must set ``secret_key`` themselves.
    """
    if config.secret_key:
        return config.secret_key
    folder = config.sqlite_path.parent if config.sqlite_path else (config_dir or Path.cwd())
    path = folder / "tessera.secret"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value
