"""The one authorization pipeline: the facts of a request in, a decision out.

Every way in (the API's dependency, forward auth, the verification API, the integration's
local mode) turns its request into :class:`RequestFacts`, asks :meth:`Authorizer.decide`, and
renders the :class:`Allowed` or :class:`Refused` it gets. Nothing here raises for an expected
refusal, and nothing here knows HTTP.
"""

from tessera.authz.decision import (
    Allowed,
    Ask,
    Decision,
    RefusalCode,
    Refused,
    RequestFacts,
    refusal_error,
)
from tessera.authz.pipeline import Authorizer
from tessera.authz.workspaces import Resolved, resolve_workspace

__all__ = [
    "Allowed",
    "Ask",
    "Authorizer",
    "Decision",
    "RefusalCode",
    "Refused",
    "RequestFacts",
    "Resolved",
    "refusal_error",
    "resolve_workspace",
]
