"""Verification as the number of stored keys grows: 1 k, 100 k, 1 M keys, on SQLite and
PostgreSQL, bulk-inserted straight into the database (not through the API).

At each size the verification pipeline (what ``POST /v1/keys/verify`` runs, in process) is
timed per call: p50 and p99 for cache hits (one key asked again and again) and for misses
(keys never asked before, each one digest look-up in the database). The plan of the digest
look-up is printed too: it must stay one search of the digest's unique index.

Beside the keys, a person's access token is timed the same way: unlike a key it is never
answered from memory alone (its refresh-token family's revocation and the person's role in the
organization are read on every request), so its figure is what those two reads cost.

    .venv/bin/python -m bench.scale [--sizes 1000,100000,1000000] [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from tessera.authz import RequestFacts
from tessera.config import load_config
from tessera.deployment import Tessera
from tessera.ids import digest
from tessera.keys import format as key_format
from tessera.principal import ClientInfo
from tessera.storage import models
from tessera.storage.db import engine_url
from tests.provisioning import PASSWORD, new_owner

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 20_000
HITS = 20_000
MISSES = 2_000
TOKENS = 2_000


def _raw_key(rng: random.Random) -> str:
    head = "tsr_live_" + "".join(rng.choices(key_format.BASE62, k=key_format.RANDOM_LENGTH))
    return head + key_format.checksum(head)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/scale.db"
        return
    name = "tessera_bench_scale"
    admin = create_engine(engine_url(POSTGRES), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def insert_keys(
    tessera: Tessera, organization_id: str, owner: str, count: int, start: int
) -> list[str]:
    """``count`` keys inserted in chunks; returns a sample of their raw values."""
    rng = random.Random(start)
    now = datetime.now(UTC)
    sample: list[str] = []
    chance = min(1.0, (MISSES + 1) * 1.5 / count)  # spread over the whole insert
    table = models.ApiKey.__table__
    for offset in range(0, count, CHUNK):
        rows = []
        for index in range(start + offset, start + min(offset + CHUNK, count)):
            raw = _raw_key(rng)
            if len(sample) <= MISSES and rng.random() < chance:
                sample.append(raw)
            rows.append(
                {
                    "id": f"key_scale{index:012d}",
                    "organization_id": organization_id,
                    "name": f"scale {index}",
                    "key_prefix": raw[:15],
                    "digest": digest(raw),
                    "environment": "live",
                    "scopes": ["workspaces:read"],
                    "inherits_creator_permissions": False,
                    "workspace_ids": None,
                    "allowed_ips": None,
                    "created_at": now,
                    "created_by": owner,
                    "owner_user_id": owner,
                }
            )
        with tessera.db.engine.begin() as connection:
            connection.execute(insert(table), rows)
    return sample


def lookup_plan(tessera: Tessera) -> str:
    with tessera.db.engine.connect() as connection:
        if tessera.db.is_sqlite:
            query = "EXPLAIN QUERY PLAN SELECT * FROM api_keys WHERE digest = :d"
            return " / ".join(str(row[-1]) for row in connection.execute(text(query), {"d": "x"}))
        query = "EXPLAIN SELECT * FROM api_keys WHERE digest = :d"
        return " / ".join(row[0] for row in connection.execute(text(query), {"d": "x"}))


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49]:7.1f} µs  p99 {cuts[98]:7.1f} µs"


def timed(tessera: Tessera, raws: list[str], keys_only: bool = True) -> list[float]:
    decide = tessera.authorizer.decide
    samples = []
    for raw in raws:
        facts = RequestFacts(raw, keys_only=keys_only)
        started = time.perf_counter()
        decision = decide(facts)
        samples.append((time.perf_counter() - started) * 1e6)
        assert decision.principal is not None, decision
    return samples


def measure(kind: str, sizes: list[int], folder: Path) -> None:
    with database(kind, folder) as url:
        env = {
            "TESSERA_DATABASE_URL": url,
            "TESSERA_PASSWORD_PROFILE": "cheapest",
            "TESSERA_RATE_LIMIT__REQUESTS": "1000000000",
        }
        tessera = Tessera(load_config(environ=env))
        tessera.start()
        owner = new_owner(tessera, "scale@example.com", "Scale")
        assert owner.organization_id is not None and owner.user_id is not None
        stored = 0
        for size in sizes:
            started = time.perf_counter()
            sample = insert_keys(
                tessera, owner.organization_id, owner.user_id, size - stored, stored
            )
            inserted = time.perf_counter() - started
            stored = size
            misses = timed(tessera, sample[:-1])
            hot = sample[-1]
            timed(tessera, [hot])
            hits = timed(tessera, [hot] * HITS)
            print(
                f"{kind:8} {size:>9,} keys (+{inserted:5.1f} s to insert)  "
                f"hits: {percentiles(hits)}   misses: {percentiles(misses)}"
            )
        print(f"{kind:8} digest look-up: {lookup_plan(tessera)}")
        token = tessera.tokens.login("scale@example.com", PASSWORD, ClientInfo()).access_token
        timed(tessera, [token] * 100, keys_only=False)
        samples = timed(tessera, [token] * TOKENS, keys_only=False)
        print(f"{kind:8} a person's access token (two reads each time): {percentiles(samples)}")
        tessera.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.databases.split(","):
            measure(kind, sizes, Path(folder))


if __name__ == "__main__":
    main()
