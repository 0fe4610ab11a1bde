"""What the integration's two modes share: the request's credential in, the caller out."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from tessera.authz.decision import Allowed, Refused
from tessera.principal import Principal
from tessera.ratelimit.gcra import RateLimitDecision


class Presented(NamedTuple):  # one per request: a named tuple, cheaper to build
    credential: str
    workspace_id: str | None
    organization_id: str | None
    client_ip: str | None
    ask: bytes | None = None  # the digest of all of the above and the scopes asked for


class Check(Protocol):
    """How the integration decides: on the server's stores, or by asking the server."""

    # Whether :meth:`again` may answer: only then is a request's ask digest worth computing.
    remembers: bool

    async def __call__(
        self, presented: Presented, scopes: tuple[str, ...]
    ) -> Checked | Refused: ...

    async def again(self, ask: bytes) -> Checked | Allowed | None:
        """A request decided before with the same :attr:`Presented.ask`, answered in one step
        while what that decision read still stands; None: decide it."""

    def forget(self, key_digest: str) -> None: ...


class Checked(NamedTuple):
    principal: Principal
    quota: RateLimitDecision | None  # the figures after this request, as in ``Allowed``
    client_ip: str | None = None
    # Uses a cached answer may still serve: the quota the server reported as remaining.
    budget: int = 0
    unreported: int = 0  # uses served from the cache that the server has not counted yet
