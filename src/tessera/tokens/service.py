"""Password login, refresh, logout and access-token verification for users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tessera import audit
from tessera.accounts import service as accounts
from tessera.accounts.records import User
from tessera.clock import Clock
from tessera.config import Config
from tessera.errors import Unauthorized
from tessera.ids import new_id
from tessera.principal import ClientInfo
from tessera.ratelimit import RateLimiter
from tessera.ratelimit.logins import LoginThrottle
from tessera.scopes import ScopeCatalog
from tessera.tokens import refresh
from tessera.tokens.signing import SigningKeys
from tessera.tokens.store import RefreshTokenFamily, TokenChanges, TokenStore

FIRST_PARTY_CLIENT = "tessera"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str

    def as_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    organization_id: str | None
    family_id: str | None
    client_id: str
    scope: frozenset[str]
    grant_id: str | None = None  # an OAuth token: the grant it was issued under


class UserTokens:
    def __init__(
        self,
        config: Config,
        store: TokenStore,
        clock: Clock,
        accounts: accounts.Accounts,
        signing: SigningKeys,
        catalog: ScopeCatalog,
        limiter: RateLimiter,
        audit_log: audit.AuditLog,
    ) -> None:
        self._config = config
        self._store = store
        self._audit_log = audit_log
        self._clock = clock
        self._accounts = accounts
        self._signing = signing
        self._catalog = catalog
        self._throttle = LoginThrottle(config.rate_limit, limiter)

    def login(self, email: str, password: str, client: ClientInfo) -> TokenPair:
        user = self.check_password(email, password, client)
        with self._store.transaction() as tx:
            pair, organization_id = self._start(tx, user)
            tx.record(
                audit.event(
                    "user.logged_in",
                    now=self._clock.now(),
                    organization_id=organization_id,
                    actor=("user", user.id),
                    target=("user", user.id),
                    client=client,
                )
            )
        return pair

    def check_password(self, email: str, password: str, client: ClientInfo) -> User:
        """The user these credentials belong to, behind the login throttle
        (``ratelimit/logins.py``); a failure is counted and audited. Both login forms (tokens
        and the dashboard's session) go through here."""
        # No account has a longer email; the cap keeps a flood of huge strings out of memory.
        email_key = accounts.normalize_email(email)[:320]
        self._throttle.check(email_key, client.ip)
        try:
            user = self._accounts.check_password(email, password)
        except Unauthorized:
            self._throttle.failed(email_key, client.ip)
            self._audit_failure(email, client)
        else:
            self._throttle.succeeded(email_key, client.ip)
            return user
        raise Unauthorized("The email or password is incorrect.")

    def refresh(self, raw_token: str, client: ClientInfo) -> TokenPair:
        now = self._clock.now()
        with self._store.transaction() as tx:
            rotation = refresh.rotate(tx, raw_token, now)
            if rotation.reuse_detected and rotation.family is not None:
                family = rotation.family
                tx.record(
                    audit.event(
                        "refresh_token.reuse_detected",
                        now=now,
                        organization_id=family.organization_id,
                        actor=("user", family.user_id),
                        target=("user", family.user_id),
                        client=client,
                        details={"family_id": family.id},
                    )
                )
            pair = self._pair(rotation.family, rotation.new_token) if rotation.ok else None
        if pair is None:
            raise Unauthorized("The refresh token is not valid.")
        return pair

    def logout(self, raw_token: str) -> None:
        with self._store.transaction() as tx:
            family = refresh.family_of(tx, raw_token)
            if family is not None:
                tx.revoke_family(family.id, self._clock.now())

    def verify_access_token(self, token: str) -> AccessClaims:
        _, claims = self._signing.decode(token)
        now = int(self._clock.now().timestamp())
        expected = (claims.get("iss"), claims.get("aud"))
        if expected != (self._config.issuer, self._config.issuer):
            raise Unauthorized("The access token was not issued for this deployment.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise Unauthorized("The access token has expired.")
        family_id = claims.get("fid")
        if family_id is not None and self._family_revoked(str(family_id)):
            raise Unauthorized("The access token has been revoked.")
        return AccessClaims(
            user_id=str(claims.get("sub")),
            organization_id=claims.get("org_id"),
            family_id=family_id,
            client_id=str(claims.get("client_id")),
            scope=frozenset(str(claims.get("scope", "")).split()),
            grant_id=claims.get("gid"),
        )

    def _start(self, tx: TokenChanges, user: User) -> tuple[TokenPair, str | None]:
        organization_id = self._accounts.home_organization(user.id)
        scope = self._role_scope(user.id, organization_id)
        family, raw = refresh.start_family(
            tx,
            user_id=user.id,
            organization_id=organization_id,
            client_id=FIRST_PARTY_CLIENT,
            scope=scope,
            now=self._clock.now(),
            ttl_days=self._config.tokens.refresh_ttl_days,
        )
        return self._pair(family, raw), organization_id

    def _pair(self, family: RefreshTokenFamily | None, raw_refresh: str | None) -> TokenPair:
        assert family is not None and raw_refresh is not None
        now = self._clock.now()
        ttl = self._config.tokens.access_ttl_seconds
        claims = {
            "iss": self._config.issuer,
            "sub": family.user_id,
            "aud": self._config.issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
            "jti": new_id("jti"),
            "client_id": family.client_id,
            "scope": family.scope,
            "org_id": family.organization_id,
            "fid": family.id,
        }
        return TokenPair(self._signing.sign(claims), ttl, raw_refresh)

    def _role_scope(self, user_id: str, organization_id: str | None) -> str:
        role = self._accounts.role(user_id, organization_id) if organization_id else None
        granted = self._catalog.granted_by_role(role) if role else frozenset()
        return " ".join(sorted(granted))

    def _family_revoked(self, family_id: str) -> bool:
        family = self._store.family(family_id)
        return family is None or family.revoked_at is not None

    def _audit_failure(self, email: str, client: ClientInfo) -> None:
        # Every organization of the person sees it: the failed credentials would have opened
        # each of them. An unknown email is recorded in no organization's log.
        user_id, organizations = self._accounts.person_by_email(email)
        self._audit_log.record(
            *audit.in_organizations(
                "user.login_failed",
                organizations,
                now=self._clock.now(),
                actor=audit.SYSTEM,
                target=("user", user_id) if user_id else None,
                client=client,
                details={"email": email[:320]} if accounts.EMAIL_PATTERN.match(email) else {},
            )
        )
