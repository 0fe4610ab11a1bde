"""OAuthStore: clients, grants and codes; a code spent once of any number of racing spends."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tessera.accounts.records import Organization, User
from tessera.oauth.records import AuthorizationCode, OAuthClient, OAuthGrant
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database
from tessera.storage.oauth import SqlOAuthStore


@pytest.fixture
def store(db: Database, now: datetime) -> SqlOAuthStore:
    """An OAuth store whose database holds the organization org_acme and the user usr_ada."""
    with SqlAccountStore(db).transaction() as tx:
        tx.add_organization(Organization("org_acme", "Acme", now))
        tx.add_user(User("usr_ada", "ada@example.com", "Ada", now))
    return SqlOAuthStore(db)


def _client(now: datetime, client_id: str = "cli_1") -> OAuthClient:
    return OAuthClient(
        id=client_id,
        organization_id="org_acme",
        name="App",
        type="confidential",
        redirect_uris=("https://app.example/cb", "http://127.0.0.1/cb"),
        scopes=("openid", "contacts:read"),
        secret_digest="d" * 64,
        created_at=now,
        created_by="usr_ada",
    )


def _grant(now: datetime, grant_id: str = "grt_1") -> OAuthGrant:
    return OAuthGrant(grant_id, "cli_1", "usr_ada", "org_acme", "openid contacts:read", now)


def _code(now: datetime) -> AuthorizationCode:
    return AuthorizationCode(
        id="cod_1",
        digest="c" * 64,
        grant_id="grt_1",
        client_id="cli_1",
        user_id="usr_ada",
        organization_id="org_acme",
        redirect_uri="https://app.example/cb",
        scope="openid",
        nonce="n",
        code_challenge="x" * 43,
        code_challenge_method="S256",
        auth_time=now,
        created_at=now,
        expires_at=now + timedelta(seconds=60),
    )


def _seed(store: SqlOAuthStore, now: datetime) -> None:
    with store.transaction() as tx:
        tx.save_client(_client(now))
        tx.save_grant(_grant(now))
        tx.add_code(_code(now))


def test_records_read_back_as_written(store: SqlOAuthStore, now: datetime) -> None:
    """Client, grant and code survive the round trip, the code found by its digest."""
    _seed(store, now)
    assert store.client("cli_1") == _client(now)
    assert store.grant("grt_1") == _grant(now)
    assert store.clients("org_acme") == [_client(now)]
    assert store.grants_of("usr_ada") == [_grant(now)]
    with store.transaction() as tx:
        assert tx.code("c" * 64) == _code(now)
        assert tx.code("0" * 64) is None and tx.client("cli_none") is None


def test_saving_a_client_replaces_it(store: SqlOAuthStore, now: datetime) -> None:
    """A deleted client leaves the organization's list but can still be read by id."""
    _seed(store, now)
    deleted = replace(_client(now), name="Renamed", deleted_at=now)
    with store.transaction() as tx:
        tx.save_client(deleted)
    assert store.client("cli_1") == deleted and store.clients("org_acme") == []


def test_the_live_grant_and_revoking_every_grant_of_a_client(
    store: SqlOAuthStore, now: datetime
) -> None:
    """live_grant finds the unrevoked grant; revoking a client's grants names those it ended."""
    _seed(store, now)
    with store.transaction() as tx:
        assert tx.live_grant("cli_1", "usr_ada", "org_acme") == _grant(now)
        assert tx.revoke_grants_of_client("cli_1", now) == ["grt_1"]
    with store.transaction() as tx:
        assert tx.live_grant("cli_1", "usr_ada", "org_acme") is None
        assert tx.revoke_grants_of_client("cli_1", now) == []
    assert store.grants_of("usr_ada") == []


def test_touching_a_grant_records_its_last_use(store: SqlOAuthStore, now: datetime) -> None:
    """last_used_at is the moment given."""
    _seed(store, now)
    store.touch_grant("grt_1", now + timedelta(minutes=1))
    grant = store.grant("grt_1")
    assert grant is not None and grant.last_used_at == now + timedelta(minutes=1)


def test_of_racing_spends_of_a_code_exactly_one_wins(store: SqlOAuthStore, now: datetime) -> None:
    """Eight threads spend one code: one is told it won; the code names its tokens' family."""
    _seed(store, now)
    wins: list[bool] = []

    def spend() -> None:
        with store.transaction() as tx:
            wins.append(tx.spend_code("cod_1", now))

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]
    with store.transaction() as tx:
        tx.set_code_family("cod_1", "rtf_1")
    with store.transaction() as tx:
        code = tx.code("c" * 64)
    assert code is not None and code.used_at == now and code.family_id == "rtf_1"


def test_ending_the_families_of_grants(db: Database, store: SqlOAuthStore, now: datetime) -> None:
    """Families issued under the grants end; others, and those already ended, keep theirs."""
    from tessera.storage.tokens import SqlTokenStore
    from tessera.tokens.store import RefreshTokenFamily

    tokens = SqlTokenStore(db)
    later = now + timedelta(days=30)
    with tokens.transaction() as tx:
        for family_id, grant_id in (("rtf_1", "grt_1"), ("rtf_2", "grt_2"), ("rtf_3", None)):
            family = RefreshTokenFamily(
                family_id, "usr_ada", "org_acme", "cli_1", "openid", now, later, None, grant_id
            )
            tx.add_family(family)
    with store.transaction() as tx:
        tx.end_families_of(["grt_1", "grt_2"], now)
        tx.end_families_of([], now)
    assert [tokens.family(f).revoked_at for f in ("rtf_1", "rtf_2", "rtf_3")] == [now, now, None]
