"""Peers of the social sign-in tests: panva's oidc-provider (a real OpenID Connect provider,
installed from its lock file by ``scripts/test-peers``) and Tessera configured to use it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import CONFIG
from tests.servers import ROOT, running, uvicorn

PEER = ROOT / "tests" / "peers" / "oidc"
CLIENT_ID = "tessera"
CLIENT_SECRET = "tessera-client-secret"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is not installed (scripts/system-packages installs it)")
    if not (PEER / "node_modules" / "oidc-provider").is_dir():
        subprocess.run([str(ROOT / "scripts" / "test-peers")], check=True)
    return found


@contextmanager
def oidc_provider(
    port: int, redirect_uri: str, accounts: dict[str, dict[str, object]], log: Path
) -> Iterator[str]:
    """oidc-provider on a loopback port with one client (``tessera``) allowed to come back to
    ``redirect_uri``; yields its issuer."""
    issuer = f"http://127.0.0.1:{port}"
    command = [node(), str(PEER / "provider.js"), str(port), redirect_uri]
    env = {"ACCOUNTS": json.dumps(accounts)}
    with running(command, issuer + "/.well-known/openid-configuration", env, log):
        yield issuer


@contextmanager
def tessera_with(
    folder: Path, port: int, tables: str, top: str = "", public_url: str | None = None
) -> Iterator[str]:
    """Tessera on a fresh SQLite database and ``port``, with more top-level settings (``top``)
    and tables (``tables``: providers, the session); yields its URL."""
    base = f"http://127.0.0.1:{port}"
    config = folder / "tessera.toml"
    config.write_text(
        f'database_url = "sqlite:///{folder}/tessera.db"\n'
        f'public_url = "{public_url or base}"\n' + top + "\n" + CONFIG + "\n" + tables
    )
    from tessera.config import load_config
    from tessera.deployment import Tessera

    setup = Tessera(load_config(config, environ={}))
    setup.start()
    setup.close()
    with uvicorn(
        "tessera.web.asgi:create", {"TESSERA_CONFIG": str(config)}, factory=True, port=port
    ):
        yield base
