"""The composition root: every store and service of a deployment, built from its Config.

This is the one module that knows both the core's services and the storage adapters that
serve their store Protocols. Only the edges (the web layer, the CLI, the integration's
local mode) import it; nothing in the core does (``tests/test_architecture.py``).
"""

from __future__ import annotations

from pathlib import Path

from tessera.accounts.email_links import EmailVerifications, PasswordResets
from tessera.accounts.hashing_pool import HashingPool, default_workers
from tessera.accounts.invitations import Invitations
from tessera.accounts.members import Members
from tessera.accounts.passwords import Passwords
from tessera.accounts.service import Accounts
from tessera.accounts.workspaces import Workspaces
from tessera.audit import AuditLog
from tessera.authn import Credentials
from tessera.authz import Authorizer, Refused
from tessera.clock import Clock, SystemClock
from tessera.config import Config, resolve_secret_key
from tessera.forward_auth import RouteTable
from tessera.keys.cache import Fleet, Subscribe, local_subscribe
from tessera.keys.service import ApiKeys
from tessera.keys.usage import UsageRecorder
from tessera.keys.verify import KeyVerifier
from tessera.mail import Mailer
from tessera.mail.smtp import SmtpMailer
from tessera.oauth.clients import OAuthClients
from tessera.oauth.grants import OAuthGrants
from tessera.oauth.issuer import TokenIssuer
from tessera.oauth.server import AuthorizationServer
from tessera.origins import deployment_origins
from tessera.providers import providers_from
from tessera.ratelimit import MemoryRateLimiter, RateLimiter
from tessera.ratelimit.policy import RateLimits
from tessera.ratelimit.redis import RedisRateLimiter
from tessera.ratelimit.resilient import ResilientRateLimiter
from tessera.scopes import ScopeCatalog
from tessera.service_tokens import ServiceTokens
from tessera.sessions.service import BrowserSessions
from tessera.social.service import SocialSignIn
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.audit import SqlAuditStore
from tessera.storage.db import Database
from tessera.storage.identities import SqlSocialStore
from tessera.storage.keys import SqlKeyStore, SqlUsageStore
from tessera.storage.links import SqlLinkStore
from tessera.storage.oauth import SqlOAuthStore
from tessera.storage.service_tokens import SqlServiceTokenStore
from tessera.storage.sessions import SqlSessionStore
from tessera.storage.tokens import SqlSigningKeyStore, SqlTokenStore
from tessera.tokens.service import UserTokens
from tessera.tokens.signing import SigningKeys

# Set by ``tessera serve --workers N`` for its workers (not a configuration key).
WORKERS_VARIABLE = "_TESSERA_WORKERS"


class Tessera:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        limiter: RateLimiter | None = None,
        config_dir: Path | None = None,
        workers: int = 1,
        mailer: Mailer | None = None,
    ) -> None:
        """``workers``: processes serving the same database (without Redis, several of them
        never trust their caches)."""
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.db = Database(config.database_url)
        self.secret_key = resolve_secret_key(config, config_dir=config_dir)
        self.catalog = ScopeCatalog(config)
        self.passwords = Passwords(
            config.password_profile,
            HashingPool(
                config.password_hashing_workers or default_workers(),
                config.password_hashing_queue,
            ),
        )
        self.audit_log = AuditLog(SqlAuditStore(self.db))
        self.account_store = SqlAccountStore(self.db)
        self.token_store = SqlTokenStore(self.db)
        self.accounts = Accounts(
            self.account_store,
            self.passwords,
            self.clock,
            self.catalog,
            signup_open=config.signup == "open",
        )
        self.workspaces = Workspaces(self.account_store, self.clock)
        self.members = Members(self.account_store, self.token_store, self.catalog, self.clock)
        self.fleet = (
            Fleet(
                config.redis_url,
                lease_ms=config.cache_lease_ms,
                refuse=config.revocation_fallback == "refuse",
            )
            if config.redis_url
            else None
        )
        subscribe: Subscribe = (
            self.fleet.subscribe if self.fleet else local_subscribe(workers=workers)
        )
        self.limiter: RateLimiter = limiter or _limiter(config, self.clock, self.fleet)
        self.rate_limits = RateLimits(config, self.limiter)
        self.signing = SigningKeys(
            SqlSigningKeyStore(self.db),
            self.secret_key,
            config.tokens.signing_algorithm,
            self.clock,
            config.tokens.access_ttl_seconds,
            config.tokens.jwks_max_age_seconds,
        )
        self.tokens = UserTokens(
            config,
            self.token_store,
            self.clock,
            self.accounts,
            self.signing,
            self.catalog,
            self.limiter,
            self.audit_log,
        )
        self.service_tokens = ServiceTokens(
            SqlServiceTokenStore(self.db), self.clock, subscribe=subscribe
        )
        self.usage = UsageRecorder(SqlUsageStore(self.db), self.clock)
        key_store = SqlKeyStore(self.db)
        self.key_verifier = KeyVerifier(
            config.key_prefix,
            keys=key_store,
            accounts=self.account_store,
            clock=self.clock,
            catalog=self.catalog,
            usage=self.usage,
            subscribe=subscribe,
        )
        self.api_keys = ApiKeys(
            config, key_store, self.clock, self.catalog, self.usage, self.key_verifier.forget
        )
        self.sessions = BrowserSessions(
            config.session,
            SqlSessionStore(self.db),
            self.token_store,
            self.account_store,
            self.clock,
        )
        self.social = SocialSignIn(
            providers_from(config.provider, self.clock),
            SqlSocialStore(self.db),
            self.clock,
            signup_open=config.signup == "open",
        )
        self._build_mail(config, mailer)
        self._oauth_parts(subscribe)
        self.credentials = Credentials(
            tokens=self.tokens,
            sessions=self.sessions,
            accounts=self.account_store,
            catalog=self.catalog,
            oauth=self.oauth_issuer,
        )
        self.routes = RouteTable(config)
        self.authorizer = Authorizer(
            keys=self.key_verifier,
            workspaces=self.key_verifier,
            access_tokens=self.credentials,
            service_tokens=self.service_tokens,
            sessions=self.credentials,
            quotas=self.rate_limits,
            routes=self.routes,
            key_prefix=config.key_prefix,
            origins=deployment_origins(config.public_url, tuple(config.allowed_origins)),
        )

    def _build_mail(self, config: Config, mailer: Mailer | None) -> None:
        """Invitations, password resets and email verification, emailed through ``[smtp]``
        when it is configured (or through ``mailer``, for tests)."""
        smtp = config.smtp
        self.mailer = mailer or (
            SmtpMailer(smtp.url, smtp.sender, timeout=smtp.timeout_seconds)
            if smtp.enabled
            else None
        )
        links = SqlLinkStore(self.db)
        url, mail = config.public_url, self.mailer
        self.invitations = Invitations(
            links,
            self.account_store,
            self.passwords,
            self.catalog,
            self.clock,
            public_url=url,
            mailer=mail,
        )
        self.password_resets = PasswordResets(
            links,
            self.account_store,
            self.passwords,
            self.sessions,
            self.clock,
            public_url=url,
            mailer=mail,
        )
        self.email_verifications = EmailVerifications(
            links, self.account_store, self.clock, public_url=url, mailer=mail
        )

    def _oauth_parts(self, subscribe: Subscribe | None) -> None:
        """The authorization server: clients, grants, the token issuer, Authlib's server."""
        store = SqlOAuthStore(self.db)
        self.oauth_grants = OAuthGrants(store, self.clock, subscribe=subscribe)
        self.oauth_clients = OAuthClients(store, self.clock, self.catalog, self.oauth_grants.forget)
        self.oauth_issuer = TokenIssuer(
            self.config,
            self.clock,
            store,
            self.token_store,
            self.oauth_grants,
            self.signing,
            self.accounts,
            self.catalog,
        )
        self.oauth_server = AuthorizationServer(
            self.oauth_issuer,
            store.client,
            self._service_token_valid,
            sorted(self.catalog.scopes),
            self.rate_limits.count_failure,
        )

    def _service_token_valid(self, raw: str) -> bool:
        found = self.service_tokens.service_principal(raw, allow_database=True)
        return not isinstance(found, Refused)

    def start(self, *, migrate: bool = True) -> None:
        """Bring the database up to date and make sure a signing key exists."""
        if migrate:
            self.db.migrate()
        self.signing.ensure_current()

    def readiness(self) -> dict[str, bool]:
        checks = {"database": self.db.ping()}
        if isinstance(self.limiter, ResilientRateLimiter):
            checks["redis"] = self.limiter.ping()
        return checks

    def serve_in_background(self) -> None:
        """Start the work a serving process does besides answering: writing key usage."""
        self.usage.start()

    def close(self) -> None:
        self.usage.stop()
        self.key_verifier.close()
        self.service_tokens.close()
        self.oauth_grants.close()
        if self.fleet is not None:
            self.fleet.close()
        self.db.dispose()


def _limiter(config: Config, clock: Clock, fleet: Fleet | None) -> RateLimiter:
    """Redis when configured (limits shared by every instance), else this process's memory."""
    local = MemoryRateLimiter(clock)
    if fleet is None:
        return local
    shared = RedisRateLimiter.from_url(config.redis_url, clock)
    return ResilientRateLimiter(
        shared, local, config.rate_limit.on_redis_error, instances=lambda: fleet.counted_instances
    )
