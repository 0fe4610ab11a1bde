"""OAuth revocations across instances sharing PostgreSQL and Redis (SPEC section 6)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tessera.authz import Refused
from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.oauth.clients import ClientSpec
from tessera.oauth.issuer import Subject
from tessera.oauth.records import OAuthClient
from tessera.principal import ClientInfo, Principal
from tests.fixtures import make_config
from tests.provisioning import new_owner
from tests.services import require_redis

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def fleet_of_two(database_url: str, clock: ManualClock) -> Iterator[tuple[Tessera, Tessera]]:
    config = make_config(database_url, redis_url=require_redis(), cache_lease_ms=300)
    first, second = Tessera(config, clock=clock), Tessera(config, clock=clock)
    first.start(migrate=False)
    deadline = time.monotonic() + 10
    for deployment in (first, second):
        assert deployment.fleet is not None
        while not deployment.fleet.lease.held():
            assert time.monotonic() < deadline, "no cache lease was granted"
            time.sleep(0.01)
    yield first, second
    first.close()
    second.close()


def test_deleting_a_client_on_one_instance_stops_its_tokens_on_the_other(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """A client_credentials token the second instance has served is refused there the moment
    the first instance's deletion returns."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    spec = ClientSpec("App", ["https://app.example/cb"], ["workspaces:read"])
    client = first.oauth_clients.create(owner, spec, ClientInfo()).client
    subject = Subject(organization_id=client.organization_id)
    token = first.oauth_issuer.token(client, subject, "workspaces:read")["access_token"]
    for _ in range(2):  # the second look-up is served from the cache
        principal = second.credentials.token_principal(token, None)
        assert not isinstance(principal, Refused) and principal.kind == "oauth_client"
    first.oauth_clients.delete(owner, client.id, ClientInfo())
    assert isinstance(second.credentials.token_principal(token, None), Refused)


def _authorized(
    first: Tessera, owner: Principal, scopes: list[str]
) -> tuple[OAuthClient, str, str]:
    """A client the owner has authorized (as the consent page does): the client, the grant's
    id, and an access token issued under the grant by the first instance."""
    spec = ClientSpec("App", ["https://app.example/cb"], scopes)
    client = first.oauth_clients.create(owner, spec, ClientInfo()).client
    organization_id = owner.organization()
    user_id = owner.user_id or ""
    grant = first.oauth_grants.consent(
        client, user_id, organization_id, frozenset(scopes), ClientInfo()
    )
    scope = " ".join(sorted(scopes))
    subject = Subject(organization_id, user_id, grant.id, scope, first.clock.now())
    return client, grant.id, first.oauth_issuer.token(client, subject, scope)["access_token"]


def _served(second: Tessera, token: str) -> Principal:
    """The token's principal on the second instance, asked twice so that its grant's verdict is
    then served from that instance's cache."""
    for _ in range(2):
        principal = second.credentials.token_principal(token, None)
        assert not isinstance(principal, Refused), principal
    return principal


def test_revoking_a_grant_on_one_instance_stops_its_token_on_the_other(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """A person's authorization-code token, served by the second instance with its grant's
    verdict cached there, is refused there the moment the first instance's revocation returns,
    and the cached verdict is gone rather than waiting for its time to live. (The token is also
    refused by its refresh family's check, which reads the database; the grant's verdict is the
    part only eviction keeps true.)"""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    _, grant_id, token = _authorized(first, owner, ["openid", "workspaces:read"])
    principal = _served(second, token)
    assert principal.kind == "user" and principal.facts["grant_id"] == grant_id
    assert second.oauth_grants.is_live(grant_id)
    first.oauth_grants.revoke(owner.user_id or "", grant_id, ClientInfo())
    assert not second.oauth_grants.is_live(grant_id)
    assert isinstance(second.credentials.token_principal(token, None), Refused)


def test_narrowing_a_client_on_one_instance_narrows_its_users_tokens_on_the_other(
    fleet_of_two: tuple[Tessera, Tessera],
) -> None:
    """The client's scopes bound every grant's tokens; the second instance, which had the
    client's scopes cached, applies the narrowing the moment the first instance's update
    returns."""
    first, second = fleet_of_two
    owner = new_owner(first, "ada@example.com")
    client, _, token = _authorized(first, owner, ["openid", "workspaces:read"])
    assert "workspaces:read" in _served(second, token).scopes
    first.oauth_clients.update(owner, client.id, {"scopes": ["openid"]}, ClientInfo())
    narrowed = second.credentials.token_principal(token, None)
    assert not isinstance(narrowed, Refused) and "workspaces:read" not in narrowed.scopes
