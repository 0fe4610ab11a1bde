"""What the pipeline asks of the rest of Tessera: one small Protocol per collaborator.

Each answers with data (a principal, or a :class:`~tessera.authz.decision.Refused`); with
``allow_database=False`` each answers from memory or raises ``WouldBlock``, so that the
pipeline can run on the event loop and move to a worker thread only when it must wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tessera.authz.decision import Refused
from tessera.keys.cache import CacheHold
from tessera.keys.verify import KeyHold, KeyIdentity
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision
from tessera.ratelimit.policy import Meter


@dataclass(frozen=True)
class SessionIdentity:
    principal: Principal
    renewed: bool  # the idle limit moved: the cookie is to be sent again


class Keys(Protocol):
    def identify(self, raw: str, *, client_ip: str | None, allow_database: bool) -> KeyIdentity: ...

    def hold(self, key_digest: str) -> KeyHold | None:
        """What made the key of this digest valid from memory alone, if anything did."""
        ...

    def holds(self, hold: KeyHold) -> bool:
        """Whether that answer still stands: nothing was revoked, evicted or expired since."""
        ...

    def record_use(
        self, key_id: str, *, accepted: bool, count: int, client_ip: str | None = None
    ) -> None:
        """Count ``count`` uses of the key, accepted or refused (its usage figures); an
        accepted one from ``client_ip`` is the key's last use."""
        ...

    def use_counter(self, key_id: str, *, count: int, client_ip: str | None) -> Callable[[], None]:
        """:meth:`record_use` of ``count`` accepted uses, prepared for requests repeated many
        times: each call counts them."""
        ...


class WorkspaceOwners(Protocol):
    def in_organization(
        self, workspace_id: str, organization_id: str | None, *, allow_database: bool
    ) -> bool: ...


class AccessTokens(Protocol):
    def token_principal(self, token: str, organization_id: str | None) -> Principal | Refused:
        """The user of an access token (always a look-up: never from memory alone)."""
        ...


class ServiceTokens(Protocol):
    def service_principal(self, raw: str, *, allow_database: bool) -> Principal | Refused: ...

    def hold(self, raw: str) -> CacheHold | None:
        """What says the token is live, from memory, if anything does."""
        ...

    def holds(self, hold: CacheHold) -> bool:
        """Whether that still stands: the token was not revoked since."""
        ...


class Sessions(Protocol):
    def session_identity(self, raw: str, organization_id: str | None) -> SessionIdentity | None:
        """The live session of a cookie's value (always a look-up)."""
        ...


class Quotas(Protocol):
    @property
    def in_process(self) -> bool:
        """Whether the limiter answers from this process's memory (never waiting)."""
        ...

    def charge(self, principal: Principal, cost: int) -> RateLimitDecision | None:
        """Count ``cost`` requests of the credential (all or none); None: not limited."""
        ...

    async def charge_async(self, principal: Principal, cost: int) -> RateLimitDecision | None:
        """:meth:`charge` for a caller on the event loop, which it never blocks."""
        ...

    def meter(self, principal: Principal) -> Meter | None:
        """:meth:`charge` prepared for requests repeated many times (None: not limited)."""
        ...

    def count_failure(self, ip: str | None) -> RateLimitDecision | None:
        """Count a failed authentication from ``ip``; the refusal once it is past its limit."""
        ...


class Routes(Protocol):
    def route_scopes(self, method: str, uri: str) -> tuple[str, ...] | Refused:
        """The scopes forward auth requires for the original request."""
        ...
