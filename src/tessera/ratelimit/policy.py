"""Which quota applies to whom: per credential, and per client address for failures."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from functools import partial
from typing import NamedTuple

from tessera.config import Config
from tessera.principal import Principal
from tessera.ratelimit.gcra import Quota, RateLimitDecision
from tessera.ratelimit.limiter import MemoryRateLimiter, RateLimiter


class Meter(NamedTuple):
    """One credential's quota, found once, for requests repeated many times: ``hit(cost)``
    charges it as :meth:`RateLimits.charge` would, ``hit_async`` on the event loop."""

    hit: Callable[[int], RateLimitDecision]
    hit_async: Callable[[int], Awaitable[RateLimitDecision]]


class RateLimits:
    def __init__(self, config: Config, limiter: RateLimiter) -> None:
        limits = config.rate_limit
        self._limiter = limiter
        # Decisions in this process's memory never wait on the network.
        self.in_process = isinstance(limiter, MemoryRateLimiter)
        self._default = Quota(limits.requests, limits.per_seconds)
        self._failures = Quota(limits.failures_per_ip, limits.failures_per_seconds)
        self._quotas: dict[tuple[int, int], Quota] = {}  # the keys' own quotas, built once

    def charge(self, principal: Principal, cost: int = 1) -> RateLimitDecision | None:
        """Count ``cost`` requests against the credential's quota, all or none; the decision
        says whether they were allowed. Service tokens are not limited (None)."""
        if principal.kind == "service":
            return None
        return self._limiter.hit(credential_key(principal), self._quota_of(principal), cost)

    async def charge_async(self, principal: Principal, cost: int = 1) -> RateLimitDecision | None:
        """:meth:`charge` on the event loop: a shared limiter is asked without a thread."""
        if principal.kind == "service":
            return None
        key = credential_key(principal)
        return await self._limiter.hit_async(key, self._quota_of(principal), cost)

    def meter(self, principal: Principal) -> Meter | None:
        """:meth:`charge` with the credential's limiter key and quota found once (None: not
        limited); it stays right for as long as ``principal`` is the credential's answer."""
        if principal.kind == "service":
            return None
        key, quota = credential_key(principal), self._quota_of(principal)
        return Meter(
            partial(self._limiter.hit, key, quota), partial(self._limiter.hit_async, key, quota)
        )

    def _quota_of(self, principal: Principal) -> Quota:
        own = principal.rate_limit
        return self._default if own is None else self._quota(own)

    def _quota(self, own: tuple[int, int]) -> Quota:
        quota = self._quotas.get(own)
        if quota is None:
            if len(self._quotas) >= 1024:
                self._quotas.clear()
            quota = self._quotas[own] = Quota(*own)
        return quota

    def count_failure(self, ip: str | None) -> RateLimitDecision | None:
        """Count a failed authentication (a bad key, token or service token) from ``ip``; the
        refusal once past ``failures_per_ip``, so that the caller answers ``429`` instead of
        ``401``. Only failures come here: a valid credential is served whatever its address
        has been failing at."""
        if ip is None:
            return None
        decision = self._limiter.hit(failure_key(ip), self._failures)
        return None if decision.allowed else decision


def credential_key(principal: Principal) -> str:
    """One quota per credential: the same key however the credential is checked."""
    if principal.kind == "api_key":
        return f"key:{principal.id}"
    if principal.kind == "oauth_client":
        return f"client:{principal.id}"
    grant = principal.facts.get("grant_id")
    if grant:  # a user's OAuth token: one quota per grant
        return f"grant:{grant}"
    return f"user:{principal.id}"


def failure_key(ip: str) -> str:
    return f"auth-fail:ip:{throttled_address(ip)}"


def throttled_address(ip: str) -> str:
    """The address failures are counted against: one IPv4 address, or an IPv6 /64 (a single
    client usually holds a whole /64 and could otherwise start afresh at every request)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
