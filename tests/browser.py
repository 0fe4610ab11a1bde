"""A real Tessera server and Debian's Chromium driven by Playwright, for browser tests and the
documentation's screenshots."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from tests.servers import free_port, running, uvicorn
from tests.services import unavailable

CHROMIUM = os.environ.get("TSR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CONFIG = """
password_profile = "cheapest"
secret_key = "browser-test-secret-0123456789abcdef"
[[scope]]
name = "contacts:read"
description = "Read contact data"
[[scope]]
name = "contacts:write"
description = "Create and change contacts"
[[scope]]
name = "admin:marketing"
description = "Run the marketing workflow"
admin_only = true
"""


def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        unavailable("Chromium is not installed (scripts/system-packages installs it)")
    return path


@contextmanager
def tessera_server(folder: Path) -> Iterator[str]:
    """Tessera on a fresh SQLite database; yields its base URL (also its public_url)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = folder / "tessera.toml"
    config.write_text(
        f'database_url = "sqlite:///{folder}/tessera.db"\npublic_url = "{base}"\n' + CONFIG
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


@contextmanager
def served_tessera(folder: Path) -> Iterator[str]:
    """``tessera serve --port <a free port, never 8000>`` with no public_url in its config, as a
    person starts it; yields ``http://localhost:<port>``, the name a person types (the server
    derives ``http://127.0.0.1:<port>`` and must accept both)."""
    port = free_port()
    while port == 8000:
        port = free_port()
    config = folder / "tessera.toml"
    config.write_text(f'database_url = "sqlite:///{folder}/tessera.db"\n' + CONFIG)
    command = [sys.executable, "-m", "tessera", "serve", "--port", str(port)]
    with running(
        [*command, "--config", str(config)],
        f"http://127.0.0.1:{port}/healthz",
        log=folder / "serve.log",
    ):
        yield f"http://localhost:{port}"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
