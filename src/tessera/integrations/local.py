"""The integration's local mode: the server's own checks, on the server's database and Redis.

Only :meth:`~tessera.integrations.fastapi.Authenticator.local` imports this module, so that an
application in remote mode never loads the server (SQLAlchemy, the deployment).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from tessera.clock import Clock
from tessera.config import Config
from tessera.deployment import Tessera
from tessera.errors import InsufficientScope, Unauthorized, WouldBlock
from tessera.integrations.checks import Checked, Presented


class LocalCheck:
    """The same checks as Tessera's own endpoints, on the same database and Redis."""

    def __init__(self, config: Config, clock: Clock | None) -> None:
        self.tessera = Tessera(config, clock=clock)

    def forget(self, key_digest: str) -> None:
        self.tessera.key_verifier.forget(key_digest)

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked:
        try:  # from the caches, on the event loop
            return self._check(presented, scopes, allow_database=False)
        except WouldBlock:  # a look-up must wait: in a worker thread
            return await run_in_threadpool(self._check, presented, scopes, True)

    def _check(
        self, presented: Presented, scopes: tuple[str, ...], allow_database: bool
    ) -> Checked:
        tessera = self.tessera
        if not allow_database and not tessera.rate_limits.in_process:
            raise WouldBlock
        try:
            principal = tessera.credentials.authenticate(
                presented.credential,
                organization_id=presented.organization_id,
                client=presented.client,
                allow_database=allow_database,
            )
        except Unauthorized:
            tessera.rate_limits.count_failure(presented.client.ip)
            raise
        principal = tessera.credentials.in_workspace(
            principal, presented.workspace_id, allow_database=allow_database
        )
        missing = principal.missing_scopes(scopes)
        if missing:
            raise InsufficientScope(missing)
        return Checked(principal, tessera.rate_limits.charge(principal))
