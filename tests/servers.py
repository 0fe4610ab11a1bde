"""Real servers for end-to-end tests: uvicorn and nginx as subprocesses on loopback ports."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.services import unavailable

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port free now, outside the kernel's ephemeral range: the ports of outgoing
    connections and of ``bind(0)`` come from that range, so a port chosen here stays free until
    the server it is for starts, even when other servers start first and connect meanwhile."""
    low = _ephemeral_low()
    for _ in range(200):
        port = FIRST_CHOSEN_PORT + secrets.randbelow(low - FIRST_CHOSEN_PORT)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: another test's server, or a service of the machine
            return port
    raise RuntimeError(f"no free port between {FIRST_CHOSEN_PORT} and {low}")


FIRST_CHOSEN_PORT = 20_000


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return max(low, FIRST_CHOSEN_PORT + 1_000)


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def running(
    command: list[str], url: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[None]:
    """``command`` running until the block ends; its output goes to ``log`` when given."""
    with ExitStack() as stack:
        output: IO[bytes] | int = (
            stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        )
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        )
        try:
            wait_for(url, process)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def uvicorn(
    app: str, env: dict[str, str] | None = None, *, factory: bool = False, port: int | None = None
) -> Iterator[str]:
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ] + (["--factory"] if factory else [])
    with running(command, f"http://127.0.0.1:{port}/", env):
        yield f"127.0.0.1:{port}"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        unavailable("nginx is not installed (scripts/system-packages installs it)")
    return found


@contextmanager
def nginx(server_block: str, folder: Path, port: int | None = None) -> Iterator[str]:
    """nginx with one server block, listening on ``port`` (a free loopback port when not
    given); yields host:port."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.conf").write_text(server_block.replace("LISTEN", f"127.0.0.1:{port}"))
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main = f"""
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {folder}/server.conf;
}}
"""
    (folder / "nginx.conf").write_text(main)
    command = [
        nginx_binary(),
        "-p",
        str(folder),
        "-c",
        str(folder / "nginx.conf"),
        "-g",
        "daemon off;",
    ]
    with running(command, f"http://127.0.0.1:{port}/"):
        yield f"127.0.0.1:{port}"
