"""Requests/s of ``POST /v1/keys/verify`` for a valid, cached key against a bare Starlette
endpoint on the same uvicorn settings, measured in one run; prints the ratio. Both receive
the same request (method, headers and body), so the HTTP work on each side is the same.
Then the same with the rate limits kept in Redis (``--redis URL``, on by default).

    .venv/bin/python -m bench.verify [--seconds 3] [--rounds 5] [--redis URL | --redis ""]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

from bench.harness import paired_rounds, report, uvicorn, wrk
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tests.provisioning import new_key, new_owner, new_service_token


def prepare(folder: Path, **extra: str) -> tuple[dict[str, str], str, str]:
    """A fresh SQLite deployment with one key and one service token; returns env, key, token.

    ``extra`` adds ``TESSERA_*`` settings (the limit is set high: the benches measure speed)."""
    env = {
        "TESSERA_DATABASE_URL": f"sqlite:///{folder}/tessera.db",
        "TESSERA_PASSWORD_PROFILE": "cheapest",
        "TESSERA_RATE_LIMIT__REQUESTS": "1000000000",
        "TESSERA_LOG_LEVEL": "warning",
        **extra,
    }
    tessera = Tessera(load_config(environ=env))
    tessera.start()
    owner = new_owner(tessera, "bench@example.com", "Bench")
    key, _ = new_key(tessera, owner, KeySpec(name="bench", scopes=["workspaces:read"]))
    token = new_service_token(tessera, "bench")
    tessera.close()
    return env, key, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        verify(Path(folder) / "memory", args.seconds, args.rounds, "in-process limits")
        if args.redis:
            extra = {"TESSERA_REDIS_URL": args.redis}
            verify(Path(folder) / "redis", args.seconds, args.rounds, "limits in Redis", **extra)


def verify(folder: Path, seconds: int, rounds: int, label: str, **extra: str) -> None:
    folder.mkdir()
    env, key, token = prepare(folder, **extra)
    body = {"key": key, "required_scopes": ["workspaces:read"]}
    headers = {"Authorization": f"Bearer {token}"}
    with (
        uvicorn("tessera.web.asgi:create", factory=True, env=env) as tessera_url,
        uvicorn("bench.hello:app") as hello_url,
    ):
        warm = httpx.post(tessera_url + "/v1/keys/verify", json=body, headers=headers).json()
        assert warm["code"] == "valid", warm
        pairs = paired_rounds(
            rounds,
            lambda: wrk(
                tessera_url + "/v1/keys/verify",
                method="POST",
                body=body,
                headers=headers,
                seconds=seconds,
            ),
            lambda: wrk(
                hello_url + "/hello", method="POST", body=body, headers=headers, seconds=seconds
            ),
        )
    report(f"POST /v1/keys/verify (cached key, {label})", pairs, "bare Starlette hello")


if __name__ == "__main__":
    main()
