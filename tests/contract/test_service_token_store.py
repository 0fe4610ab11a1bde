"""ServiceTokenStore: tokens read back by digest, with their audit event in one transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tessera import audit
from tessera.service_tokens import ServiceToken
from tessera.storage.audit import SqlAuditStore
from tessera.storage.db import Database
from tessera.storage.service_tokens import SqlServiceTokenStore


def test_a_token_reads_back_by_its_digest(db: Database, now: datetime) -> None:
    """Every field survives; an unknown digest is None."""
    store = SqlServiceTokenStore(db)
    token = ServiceToken("svc_1", "billing", "a" * 64, now)
    with store.transaction() as tx:
        tx.add(token)
    assert store.by_digest(token.digest) == token
    assert store.by_digest("b" * 64) is None


def test_a_failed_transaction_keeps_neither_token_nor_event(db: Database, now: datetime) -> None:
    """A token and its audit event are written together or not at all."""
    store = SqlServiceTokenStore(db)
    event = audit.event(
        "service_token.created", now=now, organization_id="org_a", actor=audit.SYSTEM
    )
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add(ServiceToken("svc_1", "billing", "a" * 64, now))
        tx.record(event)
        raise RuntimeError
    assert store.by_digest("a" * 64) is None
    assert SqlAuditStore(db).page("org_a", limit=10, cursor=None, action=None).items == ()


def test_tokens_list_oldest_first_and_a_revocation_sticks(db: Database, now: datetime) -> None:
    """``every`` lists revoked tokens too; a revocation is kept and not repeated."""
    store = SqlServiceTokenStore(db)
    first = ServiceToken("svc_1", "billing", "a" * 64, now)
    second = ServiceToken("svc_2", "search", "b" * 64, now + timedelta(seconds=1))
    with store.transaction() as tx:
        tx.add(second)
        tx.add(first)
    later = now + timedelta(minutes=1)
    with store.transaction() as tx:
        assert tx.get("svc_1") == first
        assert tx.get("svc_nope") is None
        tx.revoke("svc_1", later)
    with store.transaction() as tx:
        tx.revoke("svc_1", later + timedelta(minutes=1))
    assert store.every() == [replace(first, revoked_at=later), second]
