"""Which workspace a request acts in (SPEC section 5)."""

from __future__ import annotations

from dataclasses import dataclass

from tessera.authz.decision import NAME_ONE, Refused, outside


@dataclass(frozen=True)
class Resolved:
    workspace_id: str | None  # None: the request acts in no workspace in particular


ANYWHERE = Resolved(None)


def resolve_workspace(
    allowed: tuple[str, ...] | None, requested: str | None, *, required: bool = False
) -> Resolved | Refused:
    """The requested workspace if the credential allows it; the only one when exactly one is
    allowed and none was named; a refusal otherwise."""
    if requested:
        if allowed is not None and requested not in allowed:
            return Refused("workspace_forbidden", outside(requested))
        return Resolved(requested)
    if allowed is not None and len(allowed) == 1:
        return Resolved(allowed[0])
    if required:
        return Refused("workspace_required", NAME_ONE)
    return ANYWHERE
