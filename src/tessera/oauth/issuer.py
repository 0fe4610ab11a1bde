"""What the authorization server does between the protocol library's steps: codes kept as
digests and spent once, token families (the user tokens' refresh machinery), RFC 9068 access
tokens, ID tokens, and looking a presented token up for revocation or introspection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tessera import audit
from tessera.accounts.service import Accounts
from tessera.clock import Clock
from tessera.config import Config
from tessera.errors import Unauthorized
from tessera.ids import digest, new_id
from tessera.oauth.grants import OAuthGrants
from tessera.oauth.records import OPENID_SCOPES, AuthorizationCode, OAuthClient
from tessera.oauth.store import OAuthStore
from tessera.scopes import ScopeCatalog
from tessera.tokens import refresh
from tessera.tokens.signing import SigningKeys
from tessera.tokens.store import RefreshTokenFamily, TokenStore

CODE_SECONDS = 60
OFFLINE = "offline_access"
ID_TOKEN_TYPE = "JWT"  # noqa: S105 (a media type, not a secret)


@dataclass(frozen=True)
class Subject:
    """Whom tokens are issued for: a person in an organization under a grant, or (for
    ``client_credentials``) the client itself (``user_id`` None)."""

    organization_id: str
    user_id: str | None = None
    grant_id: str | None = None
    scope: str = ""  # what the person allowed, on the consent page
    auth_time: datetime | None = None
    family: RefreshTokenFamily | None = None  # a refresh: the family it continues
    refresh_token: str | None = None  # a refresh: the successor already issued
    code_id: str | None = None  # an exchange: the code it spends


@dataclass(frozen=True)
class IssuedToken:
    """A token presented back to the server (revocation, introspection)."""

    kind: str  # "access_token" or "refresh_token"
    client_id: str
    scope: str
    subject: str
    organization_id: str | None
    issued_at: int
    expires_at: int
    active: bool
    family_id: str | None = None


class TokenIssuer:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: OAuthStore,
        tokens: TokenStore,
        grants: OAuthGrants,
        signing: SigningKeys,
        accounts: Accounts,
        catalog: ScopeCatalog,
    ) -> None:
        self._config = config
        self._clock = clock
        self._store = store
        self._tokens = tokens
        self.grants = grants
        self._signing = signing
        self._accounts = accounts
        self._catalog = catalog

    @property
    def issuer(self) -> str:
        return self._config.issuer

    def grantable(self, client: OAuthClient, user_id: str, organization_id: str) -> frozenset[str]:
        """What the person may allow the client in the organization: the client's scopes
        within the person's current role (and the protocol's own scopes)."""
        role = self._accounts.role(user_id, organization_id)
        held = self._catalog.granted_by_role(role) if role else frozenset()
        return frozenset(s for s in client.scopes if s in OPENID_SCOPES or s in held)

    def client_scopes(self, client: OAuthClient) -> frozenset[str]:
        """What a ``client_credentials`` token may hold: the client's scopes within what its
        registrant still holds in the client's organization."""
        registrant = client.created_by or ""
        role = self._accounts.role(registrant, client.organization_id)
        held = self._catalog.granted_by_role(role) if role else frozenset()
        return frozenset(s for s in client.scopes if s in held)

    def live_client_scopes(self, client_id: str) -> tuple[OAuthClient, frozenset[str]] | None:
        """A live client and what its ``client_credentials`` tokens may hold now."""
        if not self.grants.client_lives(client_id):
            return None
        client = self._store.client(client_id)
        if client is None or client.deleted_at is not None:
            return None
        return client, self.client_scopes(client)

    def save_code(
        self, raw: str, client: OAuthClient, subject: Subject, data: dict[str, Any]
    ) -> None:
        now = self._clock.now()
        assert subject.user_id is not None and subject.grant_id is not None
        code = AuthorizationCode(
            id=new_id("cod"),
            digest=digest(raw),
            grant_id=subject.grant_id,
            client_id=client.id,
            user_id=subject.user_id,
            organization_id=subject.organization_id,
            redirect_uri=str(data.get("redirect_uri") or ""),
            scope=subject.scope,
            nonce=data.get("nonce") or None,
            code_challenge=str(data.get("code_challenge") or ""),
            code_challenge_method=str(data.get("code_challenge_method") or ""),
            auth_time=subject.auth_time or now,
            created_at=now,
            expires_at=now + timedelta(seconds=CODE_SECONDS),
        )
        with self._store.transaction() as tx:
            tx.add_code(code)

    def take_code(self, raw: str, client_id: str) -> AuthorizationCode | None:
        """The code, spent now; None when unknown, expired, of another client or already spent.
        A code presented twice ends the tokens issued from it (RFC 6749 section 4.1.2)."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            code = tx.code(digest(raw))
            if code is None or code.client_id != client_id:
                return None
            if tx.spend_code(code.id, now):
                return code if code.expires_at > now else None
            tx.record(
                audit.event(
                    "oauth_code.replayed",
                    now=now,
                    organization_id=code.organization_id,
                    actor=("oauth_client", client_id),
                    target=("oauth_grant", code.grant_id),
                    details={"family_id": code.family_id},
                )
            )
        if code.family_id is not None:
            with self._tokens.transaction() as token_tx:
                token_tx.revoke_family(code.family_id, now)
        return None

    def subject_of_code(self, code: AuthorizationCode) -> Subject | None:
        if not self.grants.is_live(code.grant_id):
            return None
        return Subject(
            organization_id=code.organization_id,
            user_id=code.user_id,
            grant_id=code.grant_id,
            scope=code.scope,
            auth_time=code.auth_time,
            code_id=code.id,
        )

    def token(self, client: OAuthClient, subject: Subject, scope: str) -> dict[str, Any]:
        """The token response: an access token, and a refresh token when ``offline_access``
        was granted. Every exchange of a code starts a family, so that a replay of the code
        can end what it issued."""
        scopes = scope.split()
        family, raw_refresh = subject.family, subject.refresh_token
        if subject.user_id is not None and family is None:
            family, raw_refresh = self._start_family(client, subject, scope)
            if subject.code_id is not None:
                with self._store.transaction() as tx:
                    tx.set_code_family(subject.code_id, family.id)
        if subject.grant_id is not None:
            self.grants.touch(subject.grant_id)
        ttl = self._config.tokens.access_ttl_seconds
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": self._access_token(client, subject, scope, family, ttl),
            "expires_in": ttl,
            "scope": scope,
        }
        if raw_refresh is not None and OFFLINE in scopes:
            response["refresh_token"] = raw_refresh
        return response

    def rotate(self, raw: str, client_id: str) -> Subject | None:
        """The subject of a refresh token, with its successor issued; None when it is not a
        live refresh token of this client. A spent token presented again ends its family."""
        now = self._clock.now()
        with self._tokens.transaction() as tx:
            family = refresh.family_of(tx, raw)
            if family is None or family.client_id != client_id or family.grant_id is None:
                return None
            rotation = refresh.rotate(tx, raw, now)
            if rotation.reuse_detected:
                tx.record(
                    audit.event(
                        "refresh_token.reuse_detected",
                        now=now,
                        organization_id=family.organization_id,
                        actor=("oauth_client", client_id),
                        target=("user", family.user_id),
                        details={"family_id": family.id, "grant_id": family.grant_id},
                    )
                )
        if not rotation.ok or not self.grants.is_live(family.grant_id):
            return None
        return Subject(
            organization_id=family.organization_id or "",
            user_id=family.user_id,
            grant_id=family.grant_id,
            scope=family.scope,
            family=family,
            refresh_token=rotation.new_token,
        )

    def id_token(
        self, client: OAuthClient, subject: Subject, token: dict[str, Any], nonce: str | None
    ) -> str:
        from authlib.oidc.core.util import create_half_hash

        now = self._clock.now()
        algorithm = self._signing.algorithm
        at_hash = create_half_hash(token["access_token"], algorithm)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject.user_id,
            "aud": client.id,
            "azp": client.id,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self._config.tokens.access_ttl_seconds,
            "auth_time": int((subject.auth_time or now).timestamp()),
            "at_hash": at_hash.decode() if at_hash else None,
            **self.userinfo(subject.user_id or "", token.get("scope", "")),
        }
        if nonce:
            claims["nonce"] = nonce
        return self._signing.sign(claims, typ=ID_TOKEN_TYPE)

    def userinfo(self, user_id: str, scope: str) -> dict[str, Any]:
        """The OpenID claims about the person that ``scope`` allows."""
        user = self._accounts.user(user_id)
        claims: dict[str, Any] = {"sub": user_id}
        scopes = scope.split()
        if user is not None and "profile" in scopes:
            claims["name"] = user.name
        if user is not None and "email" in scopes:
            claims["email"] = user.email
            claims["email_verified"] = bool(user.email_verified)
        return claims

    def presented(self, raw: str) -> IssuedToken | None:
        """An access or refresh token this server issued, as it stands now."""
        return self._access(raw) if raw.count(".") == 2 else self._refresh(raw)

    def revoke(self, token: IssuedToken) -> None:
        """End the family the token belongs to: its refresh tokens and its access tokens."""
        if token.family_id is not None:
            with self._tokens.transaction() as tx:
                tx.revoke_family(token.family_id, self._clock.now())

    def _access(self, raw: str) -> IssuedToken | None:
        try:
            _, claims = self._signing.decode(raw)
        except Unauthorized:
            return None
        client_id = str(claims.get("client_id", ""))
        if claims.get("iss") != self.issuer or not client_id.startswith("cli_"):
            return None
        family_id = claims.get("fid")
        live = self._claims_live(claims)
        return IssuedToken(
            kind="access_token",
            client_id=client_id,
            scope=str(claims.get("scope", "")),
            subject=str(claims.get("sub", "")),
            organization_id=claims.get("org_id"),
            issued_at=int(claims.get("iat", 0)),
            expires_at=int(claims.get("exp", 0)),
            active=live and int(claims.get("exp", 0)) > self._clock.now().timestamp(),
            family_id=str(family_id) if family_id else None,
        )

    def _claims_live(self, claims: dict[str, Any]) -> bool:
        grant_id, family_id = claims.get("gid"), claims.get("fid")
        if grant_id is None:
            return self.grants.client_lives(str(claims.get("client_id", "")))
        family = self._tokens.family(str(family_id)) if family_id else None
        family_ok = family is not None and family.revoked_at is None
        return family_ok and self.grants.is_live(str(grant_id))

    def _refresh(self, raw: str) -> IssuedToken | None:
        with self._tokens.transaction() as tx:
            stored = tx.token(digest(raw))
            family = tx.family(stored.family_id) if stored else None
        if stored is None or family is None or family.grant_id is None:
            return None
        now = self._clock.now()
        active = (
            stored.spent_at is None
            and family.revoked_at is None
            and family.expires_at > now
            and self.grants.is_live(family.grant_id)
        )
        return IssuedToken(
            kind="refresh_token",
            client_id=family.client_id,
            scope=family.scope,
            subject=family.user_id,
            organization_id=family.organization_id,
            issued_at=int(stored.created_at.timestamp()),
            expires_at=int(family.expires_at.timestamp()),
            active=active,
            family_id=family.id,
        )

    def _start_family(
        self, client: OAuthClient, subject: Subject, scope: str
    ) -> tuple[RefreshTokenFamily, str]:
        assert subject.user_id is not None
        with self._tokens.transaction() as tx:
            return refresh.start_family(
                tx,
                user_id=subject.user_id,
                organization_id=subject.organization_id,
                client_id=client.id,
                scope=scope,
                now=self._clock.now(),
                ttl_days=self._config.tokens.refresh_ttl_days,
                grant_id=subject.grant_id,
            )

    def _access_token(
        self,
        client: OAuthClient,
        subject: Subject,
        scope: str,
        family: RefreshTokenFamily | None,
        ttl: int,
    ) -> str:
        now = self._clock.now()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject.user_id or client.id,
            "aud": self.issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
            "jti": new_id("jti"),
            "client_id": client.id,
            "scope": scope,
            "org_id": subject.organization_id,
        }
        if family is not None:
            claims["fid"] = family.id
        if subject.grant_id is not None:
            claims["gid"] = subject.grant_id
        return self._signing.sign(claims)
