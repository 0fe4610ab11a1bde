"""The deployment's origins (SPEC section 3) and the address a server listens on (section 9).

A cookie-authenticated write, and a return address after sign-in, must stay on one of the
deployment's origins: the origin of ``public_url`` and each of ``allowed_origins``. On a loopback
``public_url`` (development), ``localhost`` and ``127.0.0.1`` with the same port reach the same
server, so both are the deployment's: people type either into the address bar.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# The names a loopback public_url may be reached by, each with public_url's scheme and port.
EQUIVALENT_LOOPBACK = ("localhost", "127.0.0.1")
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (names, not a bind)
MAX_LENGTH = 2048

Origin = tuple[str, str, int]  # scheme, host in lower case (IPv6 without brackets), port


def origin_of_url(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL (its path is ignored), or ``None``."""
    if len(url) > MAX_LENGTH or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def parse_origin(text: str) -> Origin | None:
    """An ``Origin`` header or an ``allowed_origins`` entry (``scheme://host[:port]``, nothing
    after it but an optional ``/``), or ``None`` when it is not one."""
    origin = origin_of_url(text)
    if origin is None:
        return None
    parts = urlsplit(text)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in text or "#" in text:
        return None
    return origin


@dataclass(frozen=True)
class DeploymentOrigins:
    """Every origin the deployment answers on."""

    origins: frozenset[Origin]

    def allows(self, origin_header: str) -> bool:
        """Whether a request's ``Origin`` header names one of the deployment's origins."""
        origin = parse_origin(origin_header)
        return origin is not None and origin in self.origins

    def allows_return(self, target: str) -> bool:
        """Whether a return address after sign-in (``next``) stays on the deployment: a
        relative reference, or an absolute URL on one of its origins."""
        if not target or len(target) > MAX_LENGTH or "\\" in target:
            return False  # browsers read a backslash as a slash: "/\\evil.example"
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
            return False  # browsers drop tabs and newlines: "/\t/evil.example"
        if target.startswith("//"):
            return False  # a network-path reference names another host
        try:
            parts = urlsplit(target)
        except ValueError:
            return False
        if not parts.scheme and not parts.netloc:
            return True
        origin = origin_of_url(target)
        return origin is not None and origin in self.origins


@lru_cache(maxsize=16)
def deployment_origins(public_url: str, allowed_origins: tuple[str, ...]) -> DeploymentOrigins:
    """The origin of ``public_url`` (and its loopback equivalents) plus ``allowed_origins``."""
    found: set[Origin] = set()
    own = origin_of_url(public_url)
    if own is not None:
        found.add(own)
        scheme, host, port = own
        if host in LOOPBACK_NAMES:
            found.update((scheme, name, port) for name in EQUIVALENT_LOOPBACK)
    found.update(o for o in map(parse_origin, allowed_origins) if o is not None)
    return DeploymentOrigins(frozenset(found))


def listening_url(host: str, port: int) -> str:
    """The ``public_url`` of a server listening on ``host:port`` when none is configured: an
    address that listens everywhere is reached on this machine at ``127.0.0.1``."""
    name = "127.0.0.1" if host in ANY_ADDRESS else host
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"http://{name}" if port == DEFAULT_PORTS["http"] else f"http://{name}:{port}"


def serves_directly(public_url: str, host: str, port: int) -> bool:
    """Whether a plain-HTTP server listening on ``host:port`` is what ``public_url`` reaches
    without a proxy in between."""
    origin = origin_of_url(public_url)
    if origin is None:
        return False
    scheme, public_host, public_port = origin
    if scheme != "http" or public_port != port:
        return False
    listen = host.strip("[]").lower()
    if listen in ANY_ADDRESS:
        return True
    if _is_loopback(listen):
        return _is_loopback(public_host)
    return public_host == listen


def listening_mismatch(public_url: str, host: str, port: int) -> str | None:
    """A warning when the configured ``public_url`` is not where the server listens, else
    ``None``. Behind a proxy that is expected; anywhere else browsers are refused."""
    if serves_directly(public_url, host, port):
        return None
    return (
        f"public_url {public_url} is not where this server listens "
        f"({listening_url(host, port)}): unless a proxy forwards {public_url} here, browsers "
        "are refused as cross-origin and tokens name that issuer; set public_url to the "
        "address people use, or leave it unset to derive it from --host/--port"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
