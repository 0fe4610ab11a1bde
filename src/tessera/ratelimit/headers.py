"""The rate-limit fields every authenticated response carries (SPEC section 5)."""

from __future__ import annotations

from tessera.ratelimit.gcra import RateLimitDecision

POLICY = "default"
_RAW_POLICY = POLICY.encode()


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


RAW_NAMES = frozenset(
    (
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"ratelimit-policy",
        b"ratelimit",
        b"retry-after",
    )
)


def raw_rate_limit_headers(decision: RateLimitDecision) -> list[tuple[bytes, bytes]]:
    """:func:`rate_limit_headers` as an ASGI server sends them: lower-case names, bytes."""
    limit, remaining, reset = decision.limit, decision.remaining, decision.reset_seconds
    headers = [
        (b"x-ratelimit-limit", b"%d" % limit),
        (b"x-ratelimit-remaining", b"%d" % remaining),
        (b"x-ratelimit-reset", b"%d" % reset),
        (b"ratelimit-policy", b'"%s";q=%d;w=%d' % (_RAW_POLICY, limit, decision.window)),
        (b"ratelimit", b'"%s";r=%d;t=%d' % (_RAW_POLICY, remaining, reset)),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", b"%d" % max(1, decision.retry_after)))
    return headers
