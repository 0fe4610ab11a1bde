"""The invitation and email-link stores: read back as written, and spent exactly once even
when requests race on several connections."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from tessera.accounts.records import EmailLink, Invitation, Organization, User
from tessera.storage.db import Database
from tessera.storage.links import SqlLinkStore


def _seed(store: SqlLinkStore, now: datetime) -> tuple[User, Organization]:
    user = User("usr_ada", "Ada@Example.com", "Ada", now, "hash")
    organization = Organization("org_acme", "Acme", now)
    with store.transaction() as tx:
        tx.add_user(user)
        tx.add_organization(organization)
    return user, organization


def _invitation(now: datetime, number: int = 1, email: str = "Bob@Example.com") -> Invitation:
    return Invitation(
        id=f"inv_{number}",
        organization_id="org_acme",
        email=email,
        role="member",
        digest=f"{number:064d}",
        created_at=now + timedelta(seconds=number),
        created_by="usr_ada",
        expires_at=now + timedelta(days=7),
        emailed=True,
    )


def _link(now: datetime, number: int = 1, purpose: str = "password_reset") -> EmailLink:
    return EmailLink(
        id=f"eml_{number}",
        purpose=purpose,
        user_id="usr_ada",
        email="Ada@Example.com",
        digest=f"{number:064x}",
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )


def test_invitation_reads_back_as_written(db: Database, now: datetime) -> None:
    """By id, by digest, in the list and among an email's open invitations (any case)."""
    store = SqlLinkStore(db)
    _seed(store, now)
    invitation = _invitation(now)
    with store.transaction() as tx:
        tx.add_invitation(invitation)
    with store.transaction() as tx:
        assert tx.invitation("inv_1") == invitation
        assert tx.invitation_by_digest(invitation.digest) == invitation
        assert tx.pending_invitations_for("org_acme", "bob@EXAMPLE.com") == [invitation]
        assert tx.invitation_by_digest("f" * 64) is None
    assert store.invitations("org_acme") == [invitation]


def test_list_is_newest_first_and_leaves_out_closed_ones(db: Database, now: datetime) -> None:
    """Accepted and revoked invitations leave the list; the rest come newest first."""
    store = SqlLinkStore(db)
    _seed(store, now)
    with store.transaction() as tx:
        for number in (1, 2, 3, 4):
            tx.add_invitation(_invitation(now, number, f"p{number}@example.com"))
        assert tx.accept_invitation("inv_2", "usr_ada", now)
        assert tx.revoke_invitation("inv_3", now)
    assert [i.id for i in store.invitations("org_acme")] == ["inv_4", "inv_1"]
    with store.transaction() as tx:
        accepted = tx.invitation("inv_2")
    assert accepted == replace(
        _invitation(now, 2, "p2@example.com"), accepted_at=now, accepted_by="usr_ada"
    )


def test_an_invitation_is_accepted_once_among_racing_requests(db: Database, now: datetime) -> None:
    """Eight transactions accept the same invitation at once: exactly one succeeds, and a
    revoked or accepted invitation can be neither accepted nor revoked again."""
    store = SqlLinkStore(db)
    _seed(store, now)
    with store.transaction() as tx:
        tx.add_invitation(_invitation(now))

    def accept(_: int) -> bool:
        with store.transaction() as tx:
            return tx.accept_invitation("inv_1", "usr_ada", now)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(accept, range(8)))
    assert results.count(True) == 1
    with store.transaction() as tx:
        assert not tx.revoke_invitation("inv_1", now)


def test_email_link_reads_back_and_is_spent_once(db: Database, now: datetime) -> None:
    """A link comes back by digest; of racing spends exactly one wins."""
    store = SqlLinkStore(db)
    _seed(store, now)
    link = _link(now)
    with store.transaction() as tx:
        tx.add_email_link(link)
    with store.transaction() as tx:
        assert tx.email_link_by_digest(link.digest) == link

    def spend(_: int) -> bool:
        with store.transaction() as tx:
            return tx.spend_email_link(link.id, now)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(spend, range(8)))
    assert results.count(True) == 1
    with store.transaction() as tx:
        assert tx.email_link_by_digest(link.digest) == replace(link, used_at=now)


def test_spending_every_link_of_a_purpose(db: Database, now: datetime) -> None:
    """A reset spends the person's other reset links and leaves verification links alone."""
    store = SqlLinkStore(db)
    _seed(store, now)
    with store.transaction() as tx:
        tx.add_email_link(_link(now, 1))
        tx.add_email_link(_link(now, 2))
        tx.add_email_link(_link(now, 3, "email_verification"))
        tx.spend_email_links_of("usr_ada", "password_reset", now)
    with store.transaction() as tx:
        used = {n: tx.email_link_by_digest(f"{n:064x}") for n in (1, 2, 3)}
    assert [link.used_at if link else None for link in used.values()] == [now, now, None]


def test_links_sent_since_a_moment_are_counted(db: Database, now: datetime) -> None:
    """Only links of the purpose, made at or after the moment, count."""
    store = SqlLinkStore(db)
    _seed(store, now)
    with store.transaction() as tx:
        tx.add_email_link(_link(now, 1))
        tx.add_email_link(replace(_link(now, 2), created_at=now - timedelta(minutes=5)))
        tx.add_email_link(_link(now, 3, "email_verification"))
        assert tx.email_links_since("usr_ada", "password_reset", now - timedelta(minutes=1)) == 1
        assert tx.email_links_since("usr_ada", "password_reset", now + timedelta(seconds=1)) == 0
