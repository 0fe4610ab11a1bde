"""Rate limiting: a pure GCRA core and interchangeable stores (memory, Redis)."""

from tessera.ratelimit.gcra import Quota, RateLimitDecision, decide, decision_from
from tessera.ratelimit.limiter import MemoryRateLimiter, RateLimiter

__all__ = [
    "MemoryRateLimiter",
    "Quota",
    "RateLimitDecision",
    "RateLimiter",
    "decide",
    "decision_from",
]
