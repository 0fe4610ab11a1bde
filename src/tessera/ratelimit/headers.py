"""The rate-limit fields every authenticated response carries (SPEC section 5)."""

from __future__ import annotations

from tessera.ratelimit.gcra import RateLimitDecision

POLICY = "default"


def rate_limit_headers(decision: RateLimitDecision) -> list[tuple[str, str]]:
    """X-RateLimit-* and the IETF RateLimit-Policy / RateLimit structured fields."""
    headers = [
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", str(decision.remaining)),
        ("X-RateLimit-Reset", str(decision.reset_seconds)),
        ("RateLimit-Policy", f'"{POLICY}";q={decision.limit};w={decision.window}'),
        ("RateLimit", f'"{POLICY}";r={decision.remaining};t={decision.reset_seconds}'),
    ]
    if not decision.allowed:
        headers.append(("Retry-After", str(max(1, decision.retry_after))))
    return headers
