"""KeyStore and UsageStore: keys and their usage read back as written, on every database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tessera.accounts.records import Organization, Workspace
from tessera.keys.records import ApiKey
from tessera.keys.store import KeyUse
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database
from tessera.storage.keys import SqlKeyStore, SqlUsageStore

ORG = "org_acme"


@pytest.fixture
def keys(db: Database, now: datetime) -> SqlKeyStore:
    """A key store whose database holds organization Acme with workspace ws_a."""
    with SqlAccountStore(db).transaction() as tx:
        tx.add_organization(Organization(ORG, "Acme", now))
        tx.add_workspace(Workspace("ws_a", ORG, "A", now))
    return SqlKeyStore(db)


def _key(now: datetime, number: int = 1, **fields: object) -> ApiKey:
    values: dict[str, object] = {
        "id": f"key_{number}",
        "organization_id": ORG,
        "name": f"Key {number}",
        "key_prefix": f"tsr_live_abc{number:03d}",
        "digest": f"{number:064x}",
        "environment": "live",
        "scopes": ("contacts:read", "workspaces:read"),
        "workspace_ids": ("ws_a",),
        "allowed_ips": ("10.0.0.0/8", "2001:db8::/32"),
        "rate_limit": (100, 60),
        "created_at": now + timedelta(seconds=number),
        "created_by": "usr_ada",
        "owner_user_id": "usr_ada",
        "expires_at": now + timedelta(days=10),
    }
    values.update(fields)
    return ApiKey(**values)


def _add(keys: SqlKeyStore, *added: ApiKey) -> None:
    with keys.transaction() as tx:
        for key in added:
            tx.add(key)


def test_a_key_reads_back_as_it_was_written(keys: SqlKeyStore, now: datetime) -> None:
    """Every field survives, times as aware UTC to the microsecond, by id and by digest."""
    key = _key(now)
    _add(keys, key)
    assert keys.get(key.id) == key
    assert keys.by_digest(key.digest) == key
    assert keys.get(key.id).expires_at.utcoffset() == timedelta(0)


def test_unset_and_empty_settings_stay_apart(keys: SqlKeyStore, now: datetime) -> None:
    """None (inherit, everywhere, unlimited, never) is not an empty tuple, and back again."""
    inheriting = _key(
        now, 1, scopes=None, workspace_ids=None, allowed_ips=None, rate_limit=None, expires_at=None
    )
    empty = _key(now, 2, scopes=(), workspace_ids=(), allowed_ips=())
    _add(keys, inheriting, empty)
    assert keys.get(inheriting.id) == inheriting and keys.get(empty.id) == empty
    assert keys.get(inheriting.id).inherits_creator_permissions


def test_unknown_keys_are_none(keys: SqlKeyStore) -> None:
    """An unknown id or digest is None."""
    assert keys.get("key_none") is None and keys.by_digest("0" * 64) is None


def test_pages_are_newest_first_and_hide_revoked_keys_unless_asked(
    keys: SqlKeyStore, now: datetime
) -> None:
    """Keys come newest first, by cursor; revoked ones only with include_revoked."""
    _add(keys, *(_key(now, n) for n in range(1, 6)))
    with keys.transaction() as tx:
        tx.revoke("key_3", now)
    first = keys.page(ORG, limit=2, cursor=None, include_revoked=False)
    second = keys.page(ORG, limit=2, cursor=first.next_cursor, include_revoked=False)
    assert [k.id for k in first.items + second.items] == ["key_5", "key_4", "key_2", "key_1"]
    assert second.next_cursor is None
    every = keys.page(ORG, limit=10, cursor=None, include_revoked=True)
    assert [k.id for k in every.items] == ["key_5", "key_4", "key_3", "key_2", "key_1"]
    assert keys.page("org_other", limit=10, cursor=None, include_revoked=True).items == ()


def test_changes_touch_only_their_field(keys: SqlKeyStore, now: datetime) -> None:
    """rename, revoke and set_expiry change one field each."""
    key = _key(now)
    _add(keys, key)
    later = now + timedelta(seconds=60, microseconds=5)
    with keys.transaction() as tx:
        tx.rename(key.id, "Renamed")
        tx.revoke(key.id, later)
        tx.set_expiry(key.id, later)
        assert tx.get(key.id) == replace(key, name="Renamed", revoked_at=later, expires_at=later)
    assert keys.get(key.id).name == "Renamed"


def test_existing_workspaces_are_those_of_the_organization(keys: SqlKeyStore) -> None:
    """Only ids of the organization's own workspaces are found."""
    with keys.transaction() as tx:
        assert tx.existing_workspaces(ORG, ["ws_a", "ws_missing"]) == {"ws_a"}
        assert tx.existing_workspaces("org_other", ["ws_a"]) == set()
        assert tx.existing_workspaces(ORG, []) == set()


def test_a_failed_transaction_adds_no_key(keys: SqlKeyStore, now: datetime) -> None:
    """An error inside the transaction undoes the key added in it."""
    with pytest.raises(RuntimeError), keys.transaction() as tx:
        tx.add(_key(now))
        raise RuntimeError
    assert keys.get("key_1") is None


def test_usage_adds_up_per_day_and_moves_the_last_use(
    db: Database, keys: SqlKeyStore, now: datetime
) -> None:
    """Two writes of the same day add up; last_used_at follows the latest write."""
    _add(keys, _key(now))
    usage = SqlUsageStore(db)
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    usage.add([KeyUse("key_1", {yesterday: (1, 0), today: (3, 1)}, now)])
    usage.add([KeyUse("key_1", {today: (2, 2)}, now + timedelta(seconds=1))])
    assert usage.days("key_1", yesterday) == {yesterday: (1, 0), today: (5, 3)}
    assert usage.days("key_1", today) == {today: (5, 3)}
    assert keys.get("key_1").last_used_at == now + timedelta(seconds=1)


def test_usage_without_an_accepted_use_keeps_the_last_use(
    db: Database, keys: SqlKeyStore, now: datetime
) -> None:
    """Refusals alone count, and leave last_used_at as it was."""
    _add(keys, _key(now))
    usage = SqlUsageStore(db)
    usage.add([KeyUse("key_1", {now.date(): (0, 4)}, None)])
    assert usage.days("key_1", now.date()) == {now.date(): (0, 4)}
    assert keys.get("key_1").last_used_at is None
