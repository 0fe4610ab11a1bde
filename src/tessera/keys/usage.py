"""Key usage without a database write per request.

Requests and rejections are counted in memory per key and day, with the time of last use;
each key's counts are written at most once a minute (and all of them at shutdown), so a burst
of 10,000 requests on one key costs a handful of writes.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tessera.clock import Clock
from tessera.storage.db import Database
from tessera.storage.models import ApiKey, ApiKeyUsage

log = logging.getLogger("tessera.keys")
FLUSH_INTERVAL_SECONDS = 60.0


@dataclass
class PendingUsage:
    days: dict[date, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    last_used_at: datetime | None = None


class UsageRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._pending: dict[str, PendingUsage] = {}
        self._flushed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, key_id: str, *, accepted: bool, count: int = 1) -> None:
        now = self._clock.now()
        with self._lock:
            pending = self._pending.get(key_id)
            if pending is None:
                pending = self._pending[key_id] = PendingUsage()
            pending.days[now.date()][0 if accepted else 1] += count
            if accepted:
                pending.last_used_at = now

    def pending(self, key_id: str) -> dict[date, tuple[int, int]]:
        """Counts not yet written, so that usage reads are exact."""
        with self._lock:
            pending = self._pending.get(key_id)
            return {d: (c[0], c[1]) for d, c in pending.days.items()} if pending else {}

    def pending_last_used(self, key_id: str) -> datetime | None:
        pending = self._pending.get(key_id)
        return pending.last_used_at if pending else None

    def flush_due(self) -> int:
        """Write the keys not written for a minute; returns how many were written."""
        now = self._clock.timestamp()
        with self._lock:
            due = [
                key
                for key in self._pending
                if now - self._flushed_at.get(key, float("-inf")) >= FLUSH_INTERVAL_SECONDS
            ]
            batch = {key: self._pending.pop(key) for key in due}
            for key in due:
                self._flushed_at[key] = now
        self._write(batch)
        return len(batch)

    def flush_all(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        self._write(batch)

    def start(self, every: float = 5.0) -> None:
        """Flush from a background thread, so no request ever waits on a usage write."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(every,), daemon=True, name="tessera-usage"
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush_all()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.flush_due()
            except Exception:
                log.exception("could not write key usage; will retry")

    def _write(self, batch: dict[str, PendingUsage]) -> None:
        if not batch:
            return
        insert = sqlite_insert if self._db.is_sqlite else pg_insert
        with self._db.session() as session:
            for key_id, pending in batch.items():
                for day, (requests, rejected) in pending.days.items():
                    statement = insert(ApiKeyUsage).values(
                        key_id=key_id, day=day, requests=requests, rejected=rejected
                    )
                    session.execute(
                        statement.on_conflict_do_update(
                            index_elements=["key_id", "day"],
                            set_={
                                "requests": ApiKeyUsage.requests + requests,
                                "rejected": ApiKeyUsage.rejected + rejected,
                            },
                        )
                    )
                if pending.last_used_at is not None:
                    session.execute(
                        update(ApiKey)
                        .where(ApiKey.id == key_id)
                        .values(last_used_at=pending.last_used_at)
                    )
