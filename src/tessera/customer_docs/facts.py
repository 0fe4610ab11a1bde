"""What a deployment's customer-facing pages say that differs from one deployment to another."""

from __future__ import annotations

from dataclasses import dataclass

from tessera.config import Config
from tessera.ratelimit.gcra import Quota
from tessera.scopes import BUILTIN_SCOPES, Scope, ScopeCatalog


@dataclass(frozen=True)
class Facts:
    """What the page says that differs from one deployment to another."""

    base: str
    prefix: str
    label: str
    product_scopes: tuple[Scope, ...]
    account_scopes: tuple[Scope, ...]
    quota: Quota
    access_ttl_seconds: int
    refresh_ttl_days: int
    signing_algorithm: str
    signup_open: bool
    max_key_lifetime_days: int

    @classmethod
    def of(cls, config: Config, catalog: ScopeCatalog) -> Facts:
        product = {s.name for s in config.scope}
        return cls(
            base=config.issuer,
            prefix=config.key_prefix,
            label=config.workspace_label,
            product_scopes=tuple(catalog.scopes[s.name] for s in config.scope),
            account_scopes=tuple(
                catalog.scopes[name] for name in BUILTIN_SCOPES if name not in product
            ),
            quota=Quota(config.rate_limit.requests, config.rate_limit.per_seconds),
            access_ttl_seconds=config.tokens.access_ttl_seconds,
            refresh_ttl_days=config.tokens.refresh_ttl_days,
            signing_algorithm=config.tokens.signing_algorithm,
            signup_open=config.signup == "open",
            max_key_lifetime_days=config.max_key_lifetime_days,
        )

    @property
    def key_variable(self) -> str:
        """The environment variable the examples read the key from (a valid shell name)."""
        name = f"{self.prefix.upper()}_API_KEY"
        return name if name[0].isalpha() else f"KEY_{name}"

    @property
    def example_scopes(self) -> list[str]:
        """Scopes for the examples: the product's own where it has some."""
        grantable = [s.name for s in self.product_scopes if not s.admin_only]
        return grantable[:2] or ["workspaces:read"]

    def url(self, path: str) -> str:
        return self.base + path
