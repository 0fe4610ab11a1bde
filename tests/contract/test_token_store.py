"""TokenStore and SigningKeyStore: refresh-token families, racing spends and signing keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tessera.accounts.records import User
from tessera.storage import models
from tessera.storage.accounts import SqlAccountStore
from tessera.storage.db import Database
from tessera.storage.tokens import SqlSigningKeyStore, SqlTokenStore
from tessera.tokens.store import KeyInfo, RefreshToken, RefreshTokenFamily


@pytest.fixture
def tokens(db: Database, now: datetime) -> SqlTokenStore:
    """A token store whose database holds the user usr_ada."""
    with SqlAccountStore(db).transaction() as tx:
        tx.add_user(User("usr_ada", "ada@example.com", "Ada", now))
    return SqlTokenStore(db)


def _family(now: datetime, family_id: str = "rtf_1") -> RefreshTokenFamily:
    return RefreshTokenFamily(
        family_id, "usr_ada", "org_acme", "tessera", "a:b c:d", now, now + timedelta(days=30)
    )


def _start(tokens: SqlTokenStore, now: datetime, family_id: str = "rtf_1") -> RefreshToken:
    token = RefreshToken(f"rtk_{family_id}", f"{hash(family_id) & 0xFFFF:064x}", family_id, now)
    with tokens.transaction() as tx:
        tx.add_family(_family(now, family_id))
        tx.add_token(token)
    return token


def test_a_family_and_its_token_read_back_as_written(tokens: SqlTokenStore, now: datetime) -> None:
    """Both records survive the round trip; the token is found by its digest."""
    token = _start(tokens, now)
    assert tokens.family("rtf_1") == _family(now) and tokens.family("rtf_none") is None
    with tokens.transaction() as tx:
        assert tx.token(token.digest) == token
        assert tx.token("f" * 64) is None and tx.family("rtf_none") is None


def test_a_token_is_spent_once(tokens: SqlTokenStore, now: datetime) -> None:
    """The first spend wins; every later one is told it lost."""
    token = _start(tokens, now)
    with tokens.transaction() as tx:
        assert tx.spend(token.id, now) is True
    with tokens.transaction() as tx:
        assert tx.spend(token.id, now + timedelta(seconds=1)) is False
        assert tx.token(token.digest).spent_at == now


def test_of_racing_spends_exactly_one_wins(
    db: Database, tokens: SqlTokenStore, now: datetime
) -> None:
    """Eight threads spend the same token at once, each in its own transaction: one wins."""
    token = _start(tokens, now)
    start, results = threading.Barrier(8), []

    def spend() -> None:
        store = SqlTokenStore(db)
        start.wait()
        with store.transaction() as tx:
            results.append(tx.spend(token.id, now))

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_revoking_keeps_the_first_end(tokens: SqlTokenStore, now: datetime) -> None:
    """A family ended once keeps that end time when ended again."""
    _start(tokens, now)
    with tokens.transaction() as tx:
        tx.revoke_family("rtf_1", now)
        tx.revoke_family("rtf_1", now + timedelta(hours=1))
    assert tokens.family("rtf_1").revoked_at == now


def test_every_family_of_a_user_ends_at_once(tokens: SqlTokenStore, now: datetime) -> None:
    """revoke_families_of ends the user's live families and leaves ended ones as they were."""
    for family_id in ("rtf_1", "rtf_2", "rtf_3"):
        _start(tokens, now, family_id)
    with tokens.transaction() as tx:
        tx.revoke_family("rtf_3", now)
        tx.revoke_families_of("usr_ada", now + timedelta(seconds=5))
    ends = [tokens.family(f).revoked_at for f in ("rtf_1", "rtf_2", "rtf_3")]
    assert ends == [now + timedelta(seconds=5)] * 2 + [now]


def test_a_failed_transaction_starts_no_family(tokens: SqlTokenStore, now: datetime) -> None:
    """An error inside the transaction undoes the family and its token."""
    with pytest.raises(RuntimeError), tokens.transaction() as tx:
        tx.add_family(_family(now))
        raise RuntimeError
    assert tokens.family("rtf_1") is None


@pytest.fixture
def signing_keys(db: Database) -> Iterator[SqlSigningKeyStore]:
    """The signing key store, its table put back as it was afterwards: the suite shares the
    signing keys of a PostgreSQL database between tests."""
    before = {k.kid: k.retired_at for k in SqlSigningKeyStore(db).all()}
    yield SqlSigningKeyStore(db)
    with db.session() as session:
        for row in session.scalars(select(models.SigningKey)):
            if row.kid not in before:
                session.delete(row)
            else:
                row.retired_at = before[row.kid]


def test_a_new_signing_key_retires_the_current_ones(
    signing_keys: SqlSigningKeyStore, now: datetime
) -> None:
    """add_current retires every live key at the new key's creation time, in one step; keys
    come oldest first, their private halves only by kid."""
    kept = {k.kid for k in signing_keys.all()}
    first = KeyInfo("sig_1", "RS256", {"kty": "RSA", "kid": "sig_1"}, now, None)
    later = now + timedelta(minutes=5)
    second = KeyInfo("sig_2", "ES256", {"kty": "EC"}, later, None)
    signing_keys.add_current(first, "ciphertext-1")
    signing_keys.add_current(second, "ciphertext-2")
    stored = [k for k in signing_keys.all() if k.kid not in kept]
    assert stored == [replace(first, retired_at=later), second]
    assert all(k.retired_at is not None for k in signing_keys.all() if k.kid in kept)
    assert signing_keys.encrypted_private_key("sig_1") == "ciphertext-1"
    assert signing_keys.encrypted_private_key("sig_none") is None


def test_a_key_replaced_in_the_same_instant_comes_before_its_replacement(
    signing_keys: SqlSigningKeyStore, now: datetime
) -> None:
    """Two rotations within one clock tick: the retired key is listed before the live one,
    whatever their ids, so the live one is taken as the newest."""
    kept = {k.kid for k in signing_keys.all()}
    for first, second in (("sig_a", "sig_b"), ("sig_d", "sig_c")):
        signing_keys.add_current(KeyInfo(first, "ES256", {}, now, None), "c")
        signing_keys.add_current(KeyInfo(second, "ES256", {}, now, None), "c")
        listed = [
            k.kid for k in signing_keys.all() if k.kid not in kept and k.kid in (first, second)
        ]
        assert listed == [first, second]
