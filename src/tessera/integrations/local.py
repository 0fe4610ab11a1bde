"""The integration's local mode: the server's own pipeline, on the server's database and Redis.

Only :meth:`~tessera.integrations.fastapi.Authenticator.local` imports this module, so that an
application in remote mode never loads the server (SQLAlchemy, the deployment).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from tessera.authz import Ask, Refused, RequestFacts
from tessera.clock import Clock
from tessera.config import Config
from tessera.deployment import Tessera
from tessera.integrations.checks import Checked, Presented


class LocalCheck:
    """The decision Tessera's own endpoints would make, from the same stores; a request
    repeated with the same credential, headers and scopes is decided again in one step, as the
    server's hot endpoints do (``Authorizer.decide_again``)."""

    remembers = True

    def __init__(self, config: Config, clock: Clock | None) -> None:
        self.tessera = Tessera(config, clock=clock)
        # The pipeline's own answer (an ``Allowed``), with no step of ours in between.
        self.again = self.tessera.authorizer.decide_again_on_loop

    def forget(self, key_digest: str) -> None:
        self.tessera.key_verifier.forget(key_digest)

    async def __call__(self, presented: Presented, scopes: tuple[str, ...]) -> Checked | Refused:
        facts = RequestFacts(
            presented.credential,
            scopes,
            None,
            presented.workspace_id,
            False,
            presented.organization_id,
            presented.client_ip,
        )
        ask = Ask(presented.ask, None) if presented.ask is not None else None
        # From the caches on the event loop; in a worker thread only when a look-up must wait.
        decision = await self.tessera.authorizer.decide_on_loop(facts, run_in_threadpool, ask=ask)
        if isinstance(decision, Refused):
            return decision
        return Checked(decision.principal, decision.quota)
