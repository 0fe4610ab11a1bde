"""Setting up a deployment directly through its services, for tests and benchmarks that then
talk to it over the network."""

from __future__ import annotations

from tessera.deployment import Tessera
from tessera.keys.rules import KeySpec
from tessera.principal import ClientInfo, Principal

PASSWORD = "correct horse battery"


def new_owner(
    tessera: Tessera, email: str = "ops@example.com", organization: str = "Acme"
) -> Principal:
    """A user signed up with a new organization, as the owner principal acting in it."""
    account = tessera.accounts.create_user(
        email=email, password=PASSWORD, name="Ops", organization_name=organization
    )
    return tessera.credentials.user_principal(account.user.id, account.organization.id)


def new_key(tessera: Tessera, owner: Principal, spec: KeySpec) -> tuple[str, str]:
    """A new API key; returns its raw value and its id."""
    created = tessera.api_keys.create(owner, spec, ClientInfo())
    return created.raw, created.key.id


def new_service_token(tessera: Tessera, name: str = "tests") -> str:
    _, raw = tessera.service_tokens.create(name)
    return raw
