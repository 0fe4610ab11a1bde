"""Password login, refresh, logout and access-token verification for users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from tessera import audit
from tessera.accounts import service as accounts
from tessera.accounts.passwords import Passwords
from tessera.clock import Clock
from tessera.config import Config
from tessera.errors import Unauthorized
from tessera.ids import new_id
from tessera.principal import ClientInfo
from tessera.ratelimit import RateLimiter
from tessera.ratelimit.logins import LoginThrottle
from tessera.scopes import ScopeCatalog
from tessera.storage.db import Database
from tessera.storage.models import RefreshTokenFamily, User
from tessera.tokens import refresh
from tessera.tokens.signing import SigningKeys

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


class UserTokens:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Clock,
        passwords: Passwords,
        signing: SigningKeys,
        catalog: ScopeCatalog,
        limiter: RateLimiter,
    ) -> None:
        self._config = config
        self._db = db
        self._clock = clock
        self._passwords = passwords
        self._signing = signing
        self._catalog = catalog
        self._throttle = LoginThrottle(config.rate_limit, limiter)

    def login(self, email: str, password: str, client: ClientInfo) -> TokenPair:
        user = self.check_password(email, password, client)
        with self._db.session() as session:
            pair = self._start(session, user, client)
            audit.record(
                session,
                "user.logged_in",
                now=self._clock.now(),
                organization_id=self._home_org(session, user),
                actor=("user", user.id),
                target=("user", user.id),
                client=client,
            )
        return pair

    def check_password(self, email: str, password: str, client: ClientInfo) -> User:
        """The user these credentials belong to, behind the login throttle
        (``ratelimit/logins.py``); a failure is counted and audited. Both login forms (tokens
        and the dashboard's session) go through here."""
        # No account has a longer email; the cap keeps a flood of huge strings out of memory.
        email_key = accounts.normalize_email(email)[:320]
        self._throttle.check(email_key, client.ip)
        with self._db.session() as session:
            try:
                user = accounts.check_password(session, self._passwords, email, password)
            except Unauthorized:
                self._throttle.failed(email_key, client.ip)
                self._audit_failure(session, email, client)
            else:
                self._throttle.succeeded(email_key, client.ip)
                return user
        raise Unauthorized("The email or password is incorrect.")

    def refresh(self, raw_token: str, client: ClientInfo) -> TokenPair:
        now = self._clock.now()
        with self._db.session() as session:
            rotation = refresh.rotate(session, raw_token, now)
            if rotation.reuse_detected and rotation.family is not None:
                family = rotation.family
                audit.record(
                    session,
                    "refresh_token.reuse_detected",
                    now=now,
                    organization_id=family.organization_id,
                    actor=("user", family.user_id),
                    target=("user", family.user_id),
                    client=client,
                    details={"family_id": family.id},
                )
            pair = self._pair(rotation.family, rotation.new_token) if rotation.ok else None
        if pair is None:
            raise Unauthorized("The refresh token is not valid.")
        return pair

    def logout(self, raw_token: str) -> None:
        with self._db.session() as session:
            family = refresh.family_of(session, raw_token)
            if family is not None:
                refresh.revoke_family(session, family.id, self._clock.now())

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
        )

    def _start(self, session: Session, user: User, client: ClientInfo) -> TokenPair:
        organization_id = self._home_org(session, user)
        scope = self._role_scope(session, user.id, organization_id)
        family, raw = refresh.start_family(
            session,
            user_id=user.id,
            organization_id=organization_id,
            client_id=FIRST_PARTY_CLIENT,
            scope=scope,
            now=self._clock.now(),
            ttl_days=self._config.tokens.refresh_ttl_days,
        )
        return self._pair(family, raw)

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

    def _home_org(self, session: Session, user: User) -> str | None:
        rows = accounts.memberships(session, user.id)
        return rows[0][1].id if rows else None

    def _role_scope(self, session: Session, user_id: str, organization_id: str | None) -> str:
        member = accounts.membership(session, user_id, organization_id) if organization_id else None
        granted = self._catalog.granted_by_role(member.role) if member else frozenset()
        return " ".join(sorted(granted))

    def _family_revoked(self, family_id: str) -> bool:
        with self._db.read() as session:
            family = session.get(RefreshTokenFamily, family_id)
            return family is None or family.revoked_at is not None

    def _audit_failure(self, session: Session, email: str, client: ClientInfo) -> None:
        # Every organization of the person sees it: the failed credentials would have opened
        # each of them. An unknown email is recorded in no organization's log.
        user_id, organizations = accounts.person_by_email(session, email)
        audit.record_in_organizations(
            session,
            "user.login_failed",
            organizations,
            now=self._clock.now(),
            actor=("system", None),
            target=("user", user_id) if user_id else None,
            client=client,
            details={"email": email[:320]} if accounts.EMAIL_PATTERN.match(email) else {},
        )
