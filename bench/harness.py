"""Shared pieces of the benchmarks: servers on loopback ports and wrk as the load generator.

wrk (Debian's package, written in C) generates the load so that the client is never the
bottleneck; the server under test gets one uvicorn worker, and both sides of a ratio are
measured in the same run with the same settings, alternating, best of the rounds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
UVICORN_SETTINGS = ["--workers", "1", "--log-level", "warning", "--no-access-log"]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages…", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def uvicorn(app: str, *, factory: bool = False, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``app`` (``module:attribute``) on a free loopback port; yields the base URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += UVICORN_SETTINGS + (["--factory"] if factory else [])
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read() if process.stderr else ''}")
        try:
            httpx.get(base + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def wrk(
    url: str,
    *,
    method: str = "GET",
    body: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
    seconds: int = 5,
    connections: int = 32,
) -> float:
    """Requests per second, with non-2xx answers counted as a failure of the benchmark."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    result = subprocess.run(
        [
            ensure_wrk(),
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(script.name)
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"{url} answered errors under load:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(result.stdout + result.stderr)
    return float(match.group(1))


def paired_rounds(
    rounds: int, subject: Callable[[], float], baseline: Callable[[], float]
) -> Pairs:
    """Measure subject then baseline, back to back, ``rounds`` times.

    Each round's ratio compares two runs seconds apart, so drifts of the machine's speed cancel
    out; the median of those ratios is the figure reported."""
    pairs = [(subject(), baseline()) for _ in range(rounds)]
    return Pairs(pairs)


class Pairs:
    def __init__(self, pairs: list[tuple[float, float]]) -> None:
        self.pairs = pairs

    @property
    def ratio(self) -> float:
        return statistics.median(s / b for s, b in self.pairs)

    @property
    def subject(self) -> float:
        return statistics.median(s for s, _ in self.pairs)

    @property
    def baseline(self) -> float:
        return statistics.median(b for _, b in self.pairs)


def report(name: str, pairs: Pairs, baseline_name: str) -> None:
    rounds = ", ".join(f"{s / b:.2f}" for s, b in pairs.pairs)
    print(f"{name}: {pairs.subject:,.0f} req/s (median of {len(pairs.pairs)} rounds)")
    print(f"{baseline_name}: {pairs.baseline:,.0f} req/s")
    print(f"ratio: {pairs.ratio:.2f} (rounds: {rounds})")
