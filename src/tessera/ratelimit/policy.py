"""Which quota applies to whom: per credential, and per client address for failures."""

from __future__ import annotations

from tessera.config import Config
from tessera.errors import RateLimited
from tessera.principal import Principal
from tessera.ratelimit.gcra import Quota, RateLimitDecision
from tessera.ratelimit.limiter import MemoryRateLimiter, RateLimiter


class RateLimits:
    def __init__(self, config: Config, limiter: RateLimiter) -> None:
        limits = config.rate_limit
        self._limiter = limiter
        # Decisions in this process's memory never wait on the network.
        self.in_process = isinstance(limiter, MemoryRateLimiter)
        self._default = Quota(limits.requests, limits.per_seconds)
        self._failures = Quota(limits.failures_per_ip, limits.failures_per_seconds)

    def charge(self, principal: Principal) -> RateLimitDecision | None:
        """Count one request against the credential's quota; raises :class:`RateLimited`
        (carrying the decision) past it. Service tokens are not limited."""
        if principal.kind == "service":
            return None
        quota = Quota(*principal.rate_limit) if principal.rate_limit else self._default
        decision = self._limiter.hit(credential_key(principal), quota)
        if not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    def check_address(self, ip: str | None) -> None:
        """Refuse an address that has failed to authenticate too often."""
        if ip is None:
            return
        decision = self._limiter.peek(failure_key(ip), self._failures)
        if not decision.allowed:
            raise RateLimitExceeded(decision, "Too many failed authentications from this address.")

    def record_failure(self, ip: str | None) -> None:
        if ip is not None:
            self._limiter.hit(failure_key(ip), self._failures)


class RateLimitExceeded(RateLimited):
    def __init__(self, decision: RateLimitDecision, detail: str | None = None) -> None:
        super().__init__(
            detail or f"Rate limit of {decision.limit} requests per {decision.window} s exceeded.",
            retry_after=decision.retry_after,
        )
        self.decision = decision


def credential_key(principal: Principal) -> str:
    """One quota per credential: the same key however the credential is checked."""
    if principal.kind == "api_key":
        return f"key:{principal.id}"
    return f"user:{principal.id}"


def failure_key(ip: str) -> str:
    return f"auth-fail:ip:{ip}"
