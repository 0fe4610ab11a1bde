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
from tessera.principal import ClientInfo
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
