"""From a presented credential to a :class:`Principal`.

``Authorization: Bearer`` carries API keys, user access tokens and service tokens; they are
told apart by form. Every failure is :class:`Unauthorized`; nothing here says why a key failed
beyond what the caller already knows.
"""

from __future__ import annotations

from dataclasses import replace

from tessera.accounts.store import AccountStore
from tessera.errors import Forbidden, NotFound, Unauthorized, WorkspaceRequired, WouldBlock
from tessera.keys.format import looks_like_key
from tessera.keys.verify import KeyVerifier, resolve_workspace
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ScopeCatalog
from tessera.service_tokens import SERVICE_PREFIX, ServiceTokens
from tessera.tokens.service import UserTokens

MAX_CREDENTIAL_LENGTH = 4096
KEY_REFUSALS = {
    "expired": "The API key has expired.",
    "revoked": "The API key has been revoked.",
}


class Credentials:
    def __init__(
        self,
        key_prefix: str,
        *,
        keys: KeyVerifier,
        tokens: UserTokens,
        service_tokens: ServiceTokens,
        accounts: AccountStore,
        catalog: ScopeCatalog,
    ) -> None:
        self._key_prefix = key_prefix
        self._keys = keys
        self._tokens = tokens
        self._service_tokens = service_tokens
        self._accounts = accounts
        self._catalog = catalog

    def authenticate(
        self,
        credential: str,
        *,
        organization_id: str | None = None,
        client: ClientInfo | None = None,
        allow_database: bool = True,
    ) -> Principal:
        """With ``allow_database=False`` only cached answers are used, and
        :class:`WouldBlock` is raised when a look-up would have to wait."""
        if not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
            raise Unauthorized("The credential is malformed.")
        if credential.startswith(SERVICE_PREFIX + "_"):
            return self._service_tokens.authenticate(credential, allow_database=allow_database)
        if looks_like_key(credential, self._key_prefix):
            principal = self.api_key(credential, client, allow_database=allow_database)
            return _in_organization(principal, organization_id)
        if credential.count(".") == 2:
            if not allow_database:
                raise WouldBlock  # user tokens check their family and membership
            return self.user_from_access_token(credential, organization_id)
        raise Unauthorized("The credential is malformed.")

    def api_key(
        self, raw: str, client: ClientInfo | None, *, allow_database: bool = True
    ) -> Principal:
        verdict = self._keys.verify(
            raw,
            client_ip=client.ip if client else None,
            count_rate=False,
            allow_database=allow_database,
        )
        if verdict.code == "ip_forbidden":
            raise Forbidden("This API key may not be used from this address.")
        if verdict.principal is None or not verdict.valid:
            raise Unauthorized(KEY_REFUSALS.get(verdict.code, "The API key is not valid."))
        return verdict.principal

    def in_workspace(
        self,
        principal: Principal,
        requested: str | None,
        *,
        required: bool = False,
        allow_database: bool = True,
    ) -> Principal:
        """The principal acting in the workspace of ``X-Workspace-ID`` (SPEC section 5)."""
        workspace = resolve_workspace(principal.workspace_ids, requested, required=required)
        if workspace == "workspace_required":
            raise WorkspaceRequired("Name the workspace with X-Workspace-ID.")
        if workspace == "workspace_forbidden" or (
            workspace is not None
            and not self._keys.in_organization(
                workspace, principal.organization_id, allow_database=allow_database
            )
        ):
            raise Forbidden(f"This credential may not act in workspace {requested}.")
        if workspace is None:
            return principal
        return replace(principal, workspace_id=workspace)

    def user_from_access_token(self, token: str, organization_id: str | None) -> Principal:
        """The token's user with what both the token's ``scope`` and their current role allow:
        a role change counts from the next request, and never widens a token."""
        claims = self._tokens.verify_access_token(token)
        principal = self.user_principal(claims.user_id, organization_id or claims.organization_id)
        if principal.organization_id is None and organization_id is not None:
            raise NotFound(f"No organization {organization_id}.")
        return replace(
            principal,
            scopes=principal.scopes & claims.scope,
            via="access_token",
            facts={"family_id": claims.family_id or ""},
        )

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


def _in_organization(principal: Principal, organization_id: str | None) -> Principal:
    """A credential bound to one organization answers 404 for any other (never 403)."""
    if organization_id and organization_id != principal.organization_id:
        raise NotFound(f"No organization {organization_id}.")
    return principal
