"""A bounded pool for password hashing: a fixed number at once, a short queue, then ``429``.

Argon2 is slow and memory-hard on purpose, so every login, sign-up and password change costs a
core and tens of MiB for a moment. Without a bound, anyone able to send many logins (a new
email each time passes every per-email throttle) would fill every core and leave nothing for
the verification of keys and tokens. Past ``workers`` running and ``queue`` waiting, the
caller is told to come back (:class:`RateLimited`) instead of joining an endless line.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tessera.errors import RateLimited

RETRY_AFTER_SECONDS = 1


class HashingPool:
    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.queue = queue
        self._running = threading.BoundedSemaphore(workers)
        self._admitted = threading.BoundedSemaphore(workers + queue)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the pool's workers; waits only when there is room in the queue."""
        if not self._admitted.acquire(blocking=False):
            raise RateLimited(
                "Too many passwords are being checked right now; try again shortly.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        try:
            with self._running:
                yield
        finally:
            self._admitted.release()


def default_workers() -> int:
    """Half the cores, at least one: hashing never takes the whole machine."""
    return max(1, (os.cpu_count() or 1) // 2)
