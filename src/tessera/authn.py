"""Users as principals: from an access token, from a browser session, or by their id.

These are the pipeline's authenticators for people (``authz/``); API keys and service tokens
have theirs in ``keys/verify.py`` and ``service_tokens.py``. A user acts in one organization
at a time, with what their current role there grants.
"""

from __future__ import annotations

from dataclasses import replace

from tessera.accounts.store import AccountStore
from tessera.authz.decision import Refused
from tessera.authz.ports import SessionIdentity
from tessera.errors import Unauthorized
from tessera.principal import Principal
from tessera.scopes import ScopeCatalog
from tessera.sessions.service import BrowserSessions
from tessera.tokens.service import UserTokens

MAX_COOKIE_LENGTH = 200


class Credentials:
    def __init__(
        self,
        *,
        tokens: UserTokens,
        sessions: BrowserSessions,
        accounts: AccountStore,
        catalog: ScopeCatalog,
    ) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._accounts = accounts
        self._catalog = catalog

    def token_principal(self, token: str, organization_id: str | None) -> Principal | Refused:
        """The token's user with what both the token's ``scope`` and their current role allow:
        a role change counts from the next request, and never widens a token."""
        try:
            claims = self._tokens.verify_access_token(token)
        except Unauthorized as refused:
            return Refused("unauthorized", refused.detail)
        principal = self.user_principal(claims.user_id, organization_id or claims.organization_id)
        if principal.organization_id is None and organization_id is not None:
            return Refused("unknown_organization", f"No organization {organization_id}.")
        return replace(
            principal,
            scopes=principal.scopes & claims.scope,
            via="access_token",
            facts={"family_id": claims.family_id or ""},
        )

    def session_identity(self, raw: str, organization_id: str | None) -> SessionIdentity | None:
        """The user of a live session, if the cookie's value names one; its idle limit is
        pushed back when due (``renewed``: the cookie is to be sent again)."""
        if len(raw) > MAX_COOKIE_LENGTH:
            return None
        active = self._sessions.authenticate(raw)
        if active is None:
            return None
        principal = self.user_principal(active.user_id, organization_id)
        principal = replace(principal, via="session", facts={"session_id": active.id})
        return SessionIdentity(principal, active.refreshed)

    def user_principal(self, user_id: str, organization_id: str | None) -> Principal:
        """A user acting in ``organization_id`` with what their current role grants there."""
        if organization_id is None:
            memberships = self._accounts.memberships(user_id)
            organization_id = memberships[0].organization.id if memberships else None
        role = self._accounts.role(user_id, organization_id) if organization_id else None
        if role is None:
            organization_id = None
        scopes = self._catalog.granted_by_role(role) if role else frozenset()
        return Principal(
            kind="user",
            id=user_id,
            organization_id=organization_id,
            scopes=scopes,
            user_id=user_id,
            role=role,
        )
