"""Key usage without a database write per request.

Requests and rejections are counted in memory per key and day, with the time of last use;
each key's counts are written at most once a minute (and all of them at shutdown), so a burst
of 10,000 requests on one key costs a handful of writes.

A key's counts wait at most ``FLUSH_INTERVAL_SECONDS`` plus one ``FLUSH_CHECK_SECONDS`` tick
(60 s) before they are written: that is what a ``SIGKILL`` can lose. A write that fails (the
database is restarting) is one transaction, undone as a whole: its counts go back into memory
and are written at a later tick, or at shutdown, which keeps trying for
``SHUTDOWN_PATIENCE_SECONDS``.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple

from tessera.clock import Clock
from tessera.keys.store import KeyUse, UsageStore

log = logging.getLogger("tessera.keys")
FLUSH_INTERVAL_SECONDS = 55.0
FLUSH_CHECK_SECONDS = 5.0
SHUTDOWN_PATIENCE_SECONDS = 15.0


@dataclass
class PendingUsage:
    days: dict[date, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    last_used: float | None = None  # a timestamp: a datetime is made only when it is read
    last_used_ip: str | None = None  # made coarse (a network) only when written

    @property
    def last_used_at(self) -> datetime | None:
        return None if self.last_used is None else datetime.fromtimestamp(self.last_used, UTC)


class UsageRecorder:
    def __init__(self, store: UsageStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: dict[str, PendingUsage] = {}
        self._flushed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._today = _Day.of(clock.timestamp())

    def record(
        self, key_id: str, accepted: bool, count: int = 1, client_ip: str | None = None
    ) -> None:
        """Count ``count`` uses of the key, accepted or refused; an accepted one from
        ``client_ip`` is its last use (the arguments may be bound by position: see
        ``KeyVerifier.use_counter``)."""
        now = self._clock.timestamp()
        day = self._today
        if not day.starts <= now < day.ends:  # once a day (or when a test's clock jumps)
            day = self._today = _Day.of(now)
        with self._lock:
            pending = self._pending.get(key_id)
            if pending is None:
                pending = self._pending[key_id] = PendingUsage()
            pending.days[day.date][0 if accepted else 1] += count
            if accepted:
                pending.last_used = now
                pending.last_used_ip = client_ip or pending.last_used_ip

    def pending(self, key_id: str) -> dict[date, tuple[int, int]]:
        """Counts not yet written, so that usage reads are exact."""
        with self._lock:
            pending = self._pending.get(key_id)
            return {d: (c[0], c[1]) for d, c in pending.days.items()} if pending else {}

    def counts(self, key_id: str, since: date) -> dict[date, tuple[int, int]]:
        """(accepted, refused) per day from ``since`` on: those written and those pending."""
        counts = self._store.days(key_id, since)
        for day, (requests, rejected) in self.pending(key_id).items():
            if day >= since:
                stored = counts.get(day, (0, 0))
                counts[day] = (stored[0] + requests, stored[1] + rejected)
        return counts

    def pending_last_used(self, key_id: str) -> datetime | None:
        pending = self._pending.get(key_id)
        return pending.last_used_at if pending else None

    def pending_last_network(self, key_id: str) -> str | None:
        pending = self._pending.get(key_id)
        return coarse_network(pending.last_used_ip) if pending else None

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
        """Write every pending count; raises (with the counts kept) when the write fails."""
        with self._lock:
            batch, self._pending = self._pending, {}
        self._write(batch)

    def start(self, every: float = FLUSH_CHECK_SECONDS) -> None:
        """Flush from a background thread, so no request ever waits on a usage write."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(every,), daemon=True, name="tessera-usage"
            )
            self._thread.start()

    def stop(self, patience: float = SHUTDOWN_PATIENCE_SECONDS) -> None:
        """Stop the background writes and write what is left, retrying for ``patience``
        seconds while the database cannot take it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.monotonic() + patience
        while True:
            try:
                self.flush_all()
                return
            except Exception:
                if time.monotonic() >= deadline:
                    log.exception("key usage could not be written before shutting down")
                    return
                time.sleep(0.5)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.flush_due()
            except Exception:
                log.exception("could not write key usage; will retry")

    def _write(self, batch: dict[str, PendingUsage]) -> None:
        try:
            self._store.add(
                [
                    KeyUse(
                        key_id,
                        {d: (c[0], c[1]) for d, c in p.days.items()},
                        p.last_used_at,
                        coarse_network(p.last_used_ip),
                    )
                    for key_id, p in batch.items()
                ]
            )
        except Exception:
            self._restore(batch)
            raise

    def _restore(self, batch: dict[str, PendingUsage]) -> None:
        """Put counts whose write failed back, to be written at the next tick."""
        with self._lock:
            for key_id, failed in batch.items():
                self._flushed_at.pop(key_id, None)
                pending = self._pending.get(key_id)
                if pending is None:
                    pending = self._pending[key_id] = PendingUsage()
                for day, (requests, rejected) in failed.days.items():
                    counts = pending.days[day]
                    counts[0] += requests
                    counts[1] += rejected
                if failed.last_used is not None and (
                    pending.last_used is None or pending.last_used < failed.last_used
                ):
                    pending.last_used = failed.last_used
                    pending.last_used_ip = failed.last_used_ip or pending.last_used_ip


class _Day(NamedTuple):
    """A day (UTC) and its bounds as timestamps: which day a use falls on, without a datetime
    per request."""

    date: date
    starts: float
    ends: float

    @classmethod
    def of(cls, stamp: float) -> _Day:
        starts = stamp // 86_400 * 86_400
        return cls(datetime.fromtimestamp(starts, UTC).date(), starts, starts + 86_400)


def coarse_network(address: str | None) -> str | None:
    """Where a key was last used, no finer than a network: the /24 of an IPv4 address, the /48
    of an IPv6 one (enough to tell an office from a cloud region, not a person)."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))
