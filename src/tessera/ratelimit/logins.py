"""Failed-login throttling that cannot lock a person out (SPEC section 3).

Three failure counters, each a GCRA quota over ``failures_per_seconds`` (so a failure ages out
after ``failures_per_seconds / limit`` seconds):

- the pair (email, address), ``failed_logins_per_email_and_ip``;
- the email from every address, ``failed_logins_per_email``;
- the address for every kind of failure (passwords, API keys, service tokens),
  ``failures_per_ip``.

A password is checked unless *this pair* has been failing: it is refused before hashing when
the pair is past its own limit, or when the pair has any failure on record while its email or
its address is past theirs (then each address gets one try at a time for that email). A pair
with no failure on record is always checked, so a correct password from an address that has
not been failing for that email is always accepted, and nothing here refuses a password once
verified. The number of guesses a spray of new emails can make is bounded by the hashing pool
(``accounts/hashing_pool.py``), not here.

Emails arrive normalized (``accounts.normalize_email``), so every spelling of one address
shares its counters.
"""

from __future__ import annotations

import math

from tessera.config import RateLimitConfig
from tessera.errors import RateLimited
from tessera.ratelimit.gcra import Quota, RateLimitDecision
from tessera.ratelimit.limiter import RateLimiter
from tessera.ratelimit.policy import failure_key, throttled_address

REFUSAL = "Too many failed sign-in attempts from this address; try again later."


class LoginThrottle:
    def __init__(self, limits: RateLimitConfig, limiter: RateLimiter) -> None:
        window = limits.failures_per_seconds
        self._limiter = limiter
        self._pair = Quota(limits.failed_logins_per_email_and_ip, window)
        self._email = Quota(limits.failed_logins_per_email, window)
        self._address = Quota(limits.failures_per_ip, window)

    def check(self, email: str, ip: str | None) -> None:
        """Raise :class:`RateLimited` when this address may not try a password for ``email``
        now; call before hashing."""
        pair = self._limiter.peek(pair_key(email, ip), self._pair)
        if not pair.allowed:
            raise RateLimited(REFUSAL, retry_after=pair.retry_after)
        if _has_failures(pair) and self._under_attack(email, ip):
            raise RateLimited(REFUSAL, retry_after=_until_clear(pair, self._pair))

    def failed(self, email: str, ip: str | None) -> None:
        self._limiter.hit(pair_key(email, ip), self._pair)
        self._limiter.hit(email_key(email), self._email)
        if ip is not None:
            self._limiter.hit(failure_key(ip), self._address)

    def succeeded(self, email: str, ip: str | None) -> None:
        """The pair's typos are forgotten once the person has proved the password."""
        self._limiter.reset(pair_key(email, ip))

    def _under_attack(self, email: str, ip: str | None) -> bool:
        if not self._limiter.peek(email_key(email), self._email).allowed:
            return True
        return ip is not None and not self._limiter.peek(failure_key(ip), self._address).allowed


# A peek answers as if one more failure were counted: its figures include that one.


def _has_failures(peeked: RateLimitDecision) -> bool:
    return peeked.remaining < peeked.limit - 1


def _until_clear(peeked: RateLimitDecision, quota: Quota) -> int:
    """Seconds until the pair has no failure on record."""
    return math.ceil(peeked.reset_seconds - quota.emission_interval)


def pair_key(email: str, ip: str | None) -> str:
    # The address comes first and never holds a space, so no chosen email can make one pair's
    # key equal to another's.
    address = throttled_address(ip) if ip is not None else "-"
    return f"login:pair:{address} {email}"


def email_key(email: str) -> str:
    return f"login:email:{email}"
