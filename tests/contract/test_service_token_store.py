"""ServiceTokenStore: tokens read back by digest, with their audit event in one transaction."""

from __future__ import annotations

from datetime import datetime

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
