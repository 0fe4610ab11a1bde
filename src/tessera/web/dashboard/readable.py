"""Values as people read them on the dashboard's pages: a browser rather than a user-agent
string, a moment rather than an RFC 3339 timestamp, a network rather than an address."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from functools import lru_cache

from ua_parser import parse_os, parse_user_agent

from tessera.errors import RateLimited, TesseraError

UNKNOWN = "Unknown browser"


@lru_cache(maxsize=512)
def user_agent(value: str | None) -> str:
    """``Mozilla/5.0 (X11; Linux x86_64) … Chrome/131.0.0.0 …`` → ``Chrome 131 on Linux``."""
    if not value:
        return UNKNOWN
    agent = parse_user_agent(value)
    system = parse_os(value)
    browser = f"{agent.family} {agent.major}" if agent and agent.major else None
    browser = browser or (agent.family if agent else None)
    platform = system.family if system and system.family != "Other" else None
    if browser is None or browser == "Other":
        return f"{UNKNOWN} on {platform}" if platform else value.split(" ", 1)[0][:40]
    return f"{browser} on {platform}" if platform else browser


def moment(value: str | None) -> str:
    """``2026-11-24T13:05:09Z`` → ``2026-11-24 13:05 UTC``."""
    if not value:
        return "—"
    return f"{value[:10]} {value[11:16]} UTC"


def network(value: str | None) -> str:
    """An address made coarse: its /24 (IPv4) or /48 (IPv6) network."""
    if not value:
        return "—"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return "—"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def refusal(error: TesseraError, now: datetime) -> str:
    """A refusal's detail; for a rate limit, with when to try again."""
    if not isinstance(error, RateLimited):
        return error.detail
    at = (now + timedelta(seconds=error.retry_after)).strftime("%H:%M:%S UTC")
    reason = error.detail.removesuffix("; try again later.").removesuffix(".")
    return f"{reason}. Try again in {wait(error.retry_after)}, at {at}."


def wait(seconds: int) -> str:
    """``42`` → ``42 seconds``, ``300`` → ``5 minutes``, ``3700`` → ``1 hour 2 minutes``."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{text} {rest} minute{'s' if rest != 1 else ''}" if rest else text
