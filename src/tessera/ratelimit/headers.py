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
    policy = _policies.get(limit)  # the fields that name the quota: one per limit and window
    if policy is None or policy[1] != decision.window:
        policy = _policy(limit, decision.window)
    left, restored = b"%d" % remaining, b"%d" % reset
    headers = [
        policy[0],
        (b"x-ratelimit-remaining", left),
        (b"x-ratelimit-reset", restored),
        policy[2],
        (b"ratelimit", b'"%s";r=%s;t=%s' % (_RAW_POLICY, left, restored)),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", b"%d" % max(1, decision.retry_after)))
    return headers


_Field = tuple[bytes, bytes]
_policies: dict[int, tuple[_Field, int, _Field]] = {}


def _policy(limit: int, window: int) -> tuple[_Field, int, _Field]:
    """``X-RateLimit-Limit``, the window (for the check above) and ``RateLimit-Policy``."""
    if len(_policies) >= 1024:
        _policies.clear()
    policy = _policies[limit] = (
        (b"x-ratelimit-limit", b"%d" % limit),
        window,
        (b"ratelimit-policy", b'"%s";q=%d;w=%d' % (_RAW_POLICY, limit, window)),
    )
    return policy
