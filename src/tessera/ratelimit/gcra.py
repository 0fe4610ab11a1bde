"""The Generic Cell Rate Algorithm, as a pure function.

GCRA keeps one number per credential, the *theoretical arrival time* (TAT): the moment the
quota would be fully restored if no more requests came. It is chosen over a sliding window
because its whole state is that one float, so the Redis backend can check and update it in one
short atomic script, and because it spreads a quota smoothly instead of resetting it at window
edges (no double burst at a boundary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

# Times are epoch seconds (about 1.8e9, below 2**32 until 2106), where a float's step is at most
# STEP. The emission interval is a whole number of steps, so that a TAT (a time plus whole
# intervals) is exact: no burst gains or loses a request to rounding, in memory or in Redis.
STEP = 2.0**-21
# Decisions and the figures a client sees are rounded with this much slack (far below a step),
# for the times of tests and simulations that are not epoch seconds.
SLACK = 1e-9


@dataclass(frozen=True)
class Quota:
    """``requests`` per ``per_seconds``, all of which may arrive in one burst.

    The emission interval is ``per_seconds / requests`` rounded down to a whole number of
    :data:`STEP` (half a microsecond), and the burst window is exactly ``requests`` intervals:
    the quota is then a little generous (by at most a step per request) but never miscounted.
    """

    requests: int
    per_seconds: int
    emission_interval: float = field(init=False, repr=False, compare=False)
    window: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = max(1, math.floor(self.per_seconds / self.requests / STEP))
        object.__setattr__(self, "emission_interval", steps * STEP)
        object.__setattr__(self, "window", steps * self.requests * STEP)


class RateLimitDecision(NamedTuple):
    """Immutable, and a named tuple rather than a frozen dataclass: one is built for every
    request on the hot paths, in a third of the time."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the quota is fully restored
    retry_after: int  # until the next request would be allowed (0 when allowed)
    window: int


# ``_figures((allowed, limit, ...))`` builds a RateLimitDecision in C, without the Python-level
# ``__new__`` that calling a named tuple's class runs: half the time, on every request.
_figures = partial(tuple.__new__, RateLimitDecision)


def decide(
    quota: Quota, stored_tat: float | None, now: float, cost: int = 1
) -> tuple[RateLimitDecision, float]:
    """The decision for one request at ``now``, and the TAT to store afterwards.

    A refused request leaves the TAT unchanged: it is not counted against the quota.
    """
    tat = now if stored_tat is None or stored_tat < now else stored_tat
    new_tat = tat + quota.emission_interval * cost
    if new_tat - now > quota.window + SLACK:
        return decision_from(quota, False, tat, now), tat
    return decision_from(quota, True, new_tat, now), new_tat


def decision_from(quota: Quota, allowed: bool, tat: float, now: float) -> RateLimitDecision:
    """The figures a client sees, from the TAT after the decision (every store computes it)."""
    backlog = tat - now if tat > now else 0.0
    interval = quota.emission_interval
    remaining = math.floor((quota.window - backlog + SLACK) / interval)
    if allowed:
        retry_after = 0
    else:
        retry = tat + interval - quota.window - now
        retry_after = math.ceil(retry - SLACK) if retry > 0 else 0
    return _figures(
        (
            allowed,
            quota.requests,
            0 if remaining < 0 else quota.requests if remaining > quota.requests else remaining,
            math.ceil(backlog - SLACK),
            retry_after,
            quota.per_seconds,
        )
    )
