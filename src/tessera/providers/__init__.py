"""Outbound HTTP to sign-in providers (an adapter): each kind of provider as the
``social.store.Provider`` port, on Authlib's OAuth 2.0 client and joserfc's JWT checks."""

from __future__ import annotations

import httpx

from tessera.clock import Clock
from tessera.config import ProviderConfig
from tessera.providers.github import GitHubProvider
from tessera.providers.oidc import OidcProvider
from tessera.social.store import Provider

TIMEOUT_SECONDS = 10.0


def providers_from(configs: list[ProviderConfig], clock: Clock) -> dict[str, Provider]:
    """Every configured provider, by name, sharing one HTTP connection pool."""
    http = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    built: dict[str, Provider] = {}
    for config in configs:
        built[config.name] = (
            GitHubProvider(config, http)
            if config.kind == "github"
            else OidcProvider(config, http, clock)
        )
    return built
