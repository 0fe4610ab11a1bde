"""AccountStore: users, organizations, members and workspaces, read back as they were written."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tessera.accounts.records import Member, Membership, Organization, User, Workspace
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database


def _seed(store: SqlAccountStore, now: datetime) -> tuple[User, Organization, Workspace]:
    user = User("usr_ada", "Ada@Example.com", "Ada", now, "argon2-hash")
    organization = Organization("org_acme", "Acme", now)
    workspace = Workspace("ws_default", organization.id, "Default", now)
    with store.transaction() as tx:
        tx.add_user(user)
        tx.add_organization(organization)
        tx.add_workspace(workspace)
        tx.add_member(organization.id, user.id, "owner", now)
    return user, organization, workspace


def test_records_read_back_as_written(db: Database, now: datetime) -> None:
    """A user (with its hash), an organization, a workspace and a member survive the trip."""
    store = SqlAccountStore(db)
    user, organization, workspace = _seed(store, now)
    assert store.user(user.id) == user and store.user(user.id).password_hash == "argon2-hash"
    assert store.organization(organization.id) == organization
    assert store.workspace(workspace.id) == workspace
    assert store.workspaces(organization.id) == [workspace]
    assert store.member(organization.id, user.id) == Member(user, organization.id, "owner", now)
    assert store.memberships(user.id) == [Membership(organization, "owner", now)]
    assert store.role(user.id, organization.id) == "owner"


def test_an_email_is_found_in_any_case(db: Database, now: datetime) -> None:
    """Email look-ups ignore case and surrounding space; the email keeps its written form."""
    store = SqlAccountStore(db)
    user, _, _ = _seed(store, now)
    found = store.user_by_email("  ada@EXAMPLE.com ")
    assert found == user and found.email == "Ada@Example.com"


def test_unknown_ids_are_none(db: Database) -> None:
    """Look-ups of what does not exist answer None or an empty list, never raise."""
    store = SqlAccountStore(db)
    assert store.user("usr_none") is None and store.user_by_email("no@example.com") is None
    assert store.organization("org_none") is None and store.workspace("ws_none") is None
    assert store.member("org_none", "usr_none") is None and store.role("usr_none", "o") is None
    assert store.memberships("usr_none") == [] and store.members("org_none") == []


def test_members_and_memberships_are_oldest_first(db: Database, now: datetime) -> None:
    """An organization lists its members, and a user their organizations, by joining time."""
    store = SqlAccountStore(db)
    ada, acme, _ = _seed(store, now)
    bob = User("usr_bob", "bob@example.com", "Bob", now)
    later = Organization("org_later", "Later", now)
    with store.transaction() as tx:
        tx.add_user(bob)
        tx.add_organization(later)
        tx.add_member(acme.id, bob.id, "member", now + timedelta(seconds=1))
        tx.add_member(later.id, ada.id, "admin", now + timedelta(seconds=2))
    assert [m.user.id for m in store.members(acme.id)] == [ada.id, bob.id]
    assert [m.organization.id for m in store.memberships(ada.id)] == [acme.id, later.id]


def test_roles_and_owner_counts_change_in_a_transaction(db: Database, now: datetime) -> None:
    """set_role, owner_count and remove_member see and make changes inside one transaction."""
    store = SqlAccountStore(db)
    ada, acme, _ = _seed(store, now)
    with store.transaction() as tx:
        assert tx.owner_count(acme.id) == 1
        tx.set_role(acme.id, ada.id, "admin")
        assert tx.owner_count(acme.id) == 0
    assert store.role(ada.id, acme.id) == "admin"
    with store.transaction() as tx:
        tx.remove_member(acme.id, ada.id)
    assert store.member(acme.id, ada.id) is None


def test_workspaces_are_renamed_and_deleted(db: Database, now: datetime) -> None:
    """Renaming keeps everything else; deleting removes only that workspace."""
    store = SqlAccountStore(db)
    _, acme, default = _seed(store, now)
    other = Workspace("ws_other", acme.id, "Other", now + timedelta(seconds=1))
    with store.transaction() as tx:
        tx.add_workspace(other)
        tx.rename_workspace(default.id, "Production")
        tx.delete_workspace(other.id)
    assert store.workspaces(acme.id) == [Workspace(default.id, acme.id, "Production", now)]


def test_organizations_are_found_by_exact_name(db: Database, now: datetime) -> None:
    """Names are not unique: every organization of that name, oldest first."""
    store = SqlAccountStore(db)
    _, acme, _ = _seed(store, now)
    twin = Organization("org_twin", "Acme", now + timedelta(seconds=1))
    with store.transaction() as tx:
        tx.add_organization(twin)
        assert tx.organizations_named("Acme") == [acme, twin]
        assert tx.organizations_named("acme") == []


def test_a_password_hash_is_replaced(db: Database, now: datetime) -> None:
    """set_password_hash changes the hash and nothing else."""
    store = SqlAccountStore(db)
    ada, _, _ = _seed(store, now)
    with store.transaction() as tx:
        tx.set_password_hash(ada.id, "stronger-hash")
    assert store.user(ada.id).password_hash == "stronger-hash"


def test_an_email_is_marked_verified(db: Database, now: datetime) -> None:
    """Users start unverified; set_email_verified changes that flag and nothing else."""
    store = SqlAccountStore(db)
    ada, _, _ = _seed(store, now)
    assert ada.email_verified is False
    with store.transaction() as tx:
        tx.set_email_verified(ada.id, True)
    assert store.user(ada.id) == replace(ada, email_verified=True)


def test_a_failed_transaction_leaves_nothing(db: Database, now: datetime) -> None:
    """An error inside the transaction undoes every change made in it."""
    store = SqlAccountStore(db)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add_user(User("usr_gone", "gone@example.com", "Gone", now))
        raise RuntimeError
    assert store.user("usr_gone") is None
