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
from tessera.oauth.issuer import TokenIssuer
from tessera.principal import Principal
from tessera.scopes import ScopeCatalog
from tessera.sessions.service import BrowserSessions
from tessera.tokens.service import FIRST_PARTY_CLIENT, AccessClaims, UserTokens

MAX_COOKIE_LENGTH = 200


class Credentials:
    def __init__(
        self,
        *,
        tokens: UserTokens,
        sessions: BrowserSessions,
        accounts: AccountStore,
        catalog: ScopeCatalog,
        oauth: TokenIssuer | None = None,
    ) -> None:
        self._tokens = tokens
        self._oauth = oauth
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
        if claims.client_id != FIRST_PARTY_CLIENT:
            return self._oauth_principal(claims, organization_id)
        principal = self.user_principal(claims.user_id, organization_id or claims.organization_id)
        if principal.organization_id is None and organization_id is not None:
            return Refused("unknown_organization", f"No organization {organization_id}.")
        return replace(
            principal,
            scopes=principal.scopes & claims.scope,
            via="access_token",
            facts={"family_id": claims.family_id or ""},
        )

    def _oauth_principal(
        self, claims: AccessClaims, organization_id: str | None
    ) -> Principal | Refused:
        """An OAuth token acts in the one organization it was granted for, with at most its
        granted scopes; once its grant or client ends it is refused at once."""
        if self._oauth is None:
            return Refused("unauthorized", "The access token is not valid.")
        bound = claims.organization_id
        if bound is None or (organization_id is not None and organization_id != bound):
            return Refused("unknown_organization", f"No organization {organization_id}.")
        if claims.grant_id is None:
            return self._client_principal(self._oauth, claims, bound)
        allowed = self._oauth.grants.grant_scopes(claims.grant_id)
        if allowed is None:
            return Refused("unauthorized", "The access token has been revoked.")
        principal = self.user_principal(claims.user_id, bound)
        if principal.organization_id is None:
            return Refused("unauthorized", "The access token's person left the organization.")
        return replace(
            principal,
            scopes=principal.scopes & claims.scope & allowed,
            via="access_token",
            client_id=claims.client_id,
            facts={"family_id": claims.family_id or "", "grant_id": claims.grant_id},
        )

    def _client_principal(
        self, oauth: TokenIssuer, claims: AccessClaims, organization_id: str
    ) -> Principal | Refused:
        live = oauth.live_client_scopes(claims.client_id)
        if live is None or live[0].organization_id != organization_id:
            return Refused("unauthorized", "The access token has been revoked.")
        return Principal(
            kind="oauth_client",
            id=claims.client_id,
            organization_id=organization_id,
            scopes=live[1] & claims.scope,
            via="access_token",
            client_id=claims.client_id,
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
