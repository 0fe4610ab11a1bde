"""SocialStore: identities unique by (provider, subject), pending sign-ins taken once, and a
takeover (password, sessions, refresh tokens) in one transaction."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from tessera.accounts.records import User
from tessera.errors import Conflict
from tessera.sessions.store import BrowserSession
from tessera.social.records import Identity, PendingSignIn
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database
from tessera.storage.identities import SqlSocialStore
from tessera.storage.sessions import SqlSessionStore
from tessera.storage.tokens import SqlTokenStore
from tessera.tokens.store import RefreshTokenFamily


@pytest.fixture
def store(db: Database, now: datetime) -> SqlSocialStore:
    """A social store whose database holds the user usr_ada, with a password."""
    with SqlAccountStore(db).transaction() as tx:
        tx.add_user(User("usr_ada", "ada@example.com", "Ada", now, password_hash="$argon2id$x"))
    return SqlSocialStore(db)


def _identity(now: datetime, number: int = 1, **fields: object) -> Identity:
    values: dict[str, object] = {
        "id": f"idn_{number}",
        "user_id": "usr_ada",
        "provider": "corp",
        "subject": f"subject-ü-{number}",
        "email": "ada@example.com",
        "created_at": now + timedelta(seconds=number),
        "last_used_at": None,
    }
    values.update(fields)
    return Identity(**values)  # type: ignore[arg-type]


def _pending(now: datetime, state: str = "a" * 64) -> PendingSignIn:
    return PendingSignIn(
        state_digest=state,
        browser_digest="b" * 64,
        provider="corp",
        nonce="n" * 43,
        code_verifier="v" * 64,
        return_to="/settings/sessions?x=1",
        link_user_id=None,
        created_at=now,
        expires_at=now + timedelta(minutes=10),
    )


def test_identities_read_back_as_written(store: SqlSocialStore, now: datetime) -> None:
    first, second = _identity(now, 1), _identity(now, 2, provider="github", email=None)
    with store.transaction() as tx:
        tx.add_identity(second)
        tx.add_identity(first)
    assert store.identities_of("usr_ada") == [first, second]
    with store.transaction() as tx:
        assert tx.identity("corp", first.subject) == first
        assert tx.identity("github", first.subject) is None
        tx.touch_identity(first.id, now + timedelta(days=1), "new@example.com")
    touched = store.identities_of("usr_ada")[0]
    assert touched.last_used_at == now + timedelta(days=1) and touched.email == "new@example.com"


def test_a_provider_subject_belongs_to_one_identity(store: SqlSocialStore, now: datetime) -> None:
    with store.transaction() as tx:
        tx.add_identity(_identity(now, 1, subject="same"))
    with pytest.raises(Conflict), store.transaction() as tx:
        tx.add_identity(_identity(now, 2, subject="same"))
    assert len(store.identities_of("usr_ada")) == 1


def test_a_pending_sign_in_is_taken_once(store: SqlSocialStore, now: datetime) -> None:
    pending = _pending(now)
    with store.transaction() as tx:
        tx.add_pending(pending)
    with store.transaction() as tx:
        assert tx.take_pending(pending.state_digest, now) == pending
    with store.transaction() as tx:
        assert tx.take_pending(pending.state_digest, now) is None
        assert tx.take_pending("c" * 64, now) is None


def test_two_callbacks_racing_with_one_state_take_it_once(
    store: SqlSocialStore, now: datetime
) -> None:
    pending = _pending(now)
    with store.transaction() as tx:
        tx.add_pending(pending)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        with store.transaction() as tx:
            results.append(tx.take_pending(pending.state_digest, now))

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is None for r in results) == [False, True]


def test_expired_pending_sign_ins_are_cleared(store: SqlSocialStore, now: datetime) -> None:
    old = _pending(now - timedelta(hours=1), "d" * 64)
    with store.transaction() as tx:
        tx.add_pending(old)
        tx.add_pending(_pending(now))
    with store.transaction() as tx:
        assert tx.take_pending(old.state_digest, now) is None


def test_a_takeover_ends_password_sessions_and_refresh_families(
    store: SqlSocialStore, db: Database, now: datetime
) -> None:
    sessions, tokens = SqlSessionStore(db), SqlTokenStore(db)
    with sessions.transaction() as tx:
        tx.add(
            BrowserSession(
                "ses_1",
                "1" * 64,
                "usr_ada",
                now,
                now,
                now + timedelta(days=7),
                now + timedelta(days=30),
            )
        )
    with tokens.transaction() as tx:
        tx.add_family(
            RefreshTokenFamily(
                "fam_1", "usr_ada", None, "tessera", "", now, now + timedelta(days=30)
            )
        )
    with store.transaction() as tx:
        tx.remove_password("usr_ada")
        assert tx.end_sessions_of("usr_ada", now) == ["ses_1"]
        tx.revoke_families_of("usr_ada", now)
        assert tx.organization_ids("usr_ada") == []
    assert SqlAccountStore(db).user("usr_ada").password_hash is None  # type: ignore[union-attr]
    assert sessions.open_sessions("usr_ada") == []
    family = tokens.family("fam_1")
    assert family is not None and family.revoked_at == now
