"""Tessera's protected contacts example against the same endpoint in Django + DRF +
djangorestframework-api-key, side by side in one run; prints how many times faster.

The peer is installed from PyPI (``requirements.txt``) into a virtual environment of its own,
kept under ``~/.cache/tessera-bench`` between runs, and served by gunicorn with one worker;
the example is served by uvicorn with one worker (local mode, ``bench/edge.py``).

    .venv/bin/python -m bench.peers [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.edge import SCOPES, _reader_key
from bench.harness import _wait, free_port, paired_rounds, uvicorn, wrk
from bench.verify import prepare

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"


def peer_environment() -> Path:
    """The peer's virtual environment, made once per version of its requirements."""
    version = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    folder = Path.home() / ".cache" / "tessera-bench" / f"peers-{version}"
    if not (folder / "bin" / "gunicorn").exists():
        print(f"installing the peer into {folder}…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    return folder


@contextmanager
def gunicorn(venv: Path, data: Path) -> Iterator[tuple[str, str]]:
    """The peer served by gunicorn, one worker; yields its base URL and an API key."""
    env = {**os.environ, "PEER_DATA": str(data), "PYTHONPATH": str(HERE)}
    python = str(venv / "bin" / "python")
    key = subprocess.run(
        [python, str(HERE / "drf" / "prepare.py")],
        env=env,
        cwd=HERE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    command = [str(venv / "bin" / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", "drf.wsgi:application"],
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, process)
        yield base, key
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    venv = peer_environment()
    with tempfile.TemporaryDirectory() as folder:
        env, _, _ = prepare(Path(folder), TESSERA_SCOPE=SCOPES)
        ours = {"X-API-Key": _reader_key(env)}
        with (
            uvicorn("examples.contacts_api.app:from_environment", factory=True, env=env) as app,
            gunicorn(venv, Path(folder)) as (peer, key),
        ):
            theirs = {"Authorization": f"Api-Key {key}"}
            pairs = paired_rounds(
                args.rounds,
                lambda: wrk(app + "/v1/contacts", headers=ours, seconds=args.seconds),
                lambda: wrk(peer + "/v1/contacts", headers=theirs, seconds=args.seconds),
            )
            unprotected = wrk(peer + "/v1/contacts-unprotected", seconds=args.seconds)
    rounds = ", ".join(f"{s / b:.1f}" for s, b in pairs.pairs)
    print(f"contacts API, protected (Tessera, local mode): {pairs.subject:,.0f} req/s")
    print(f"DRF + djangorestframework-api-key, protected: {pairs.baseline:,.0f} req/s")
    print(f"  (the same DRF endpoint unprotected: {unprotected:,.0f} req/s)")
    print(f"ratio: {pairs.ratio:.1f}x (rounds: {rounds})")


if __name__ == "__main__":
    main()
