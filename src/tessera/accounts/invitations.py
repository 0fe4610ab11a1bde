"""Invitations to an organization (SPEC section 3).

An invitation is bound to one email and carries a role no greater than its inviter's. Its link
is emailed when the deployment has a mail server, and otherwise handed once to the inviter to
pass on; only its digest is stored. It works once, for seven days: accepting it signs the
person up (even when sign-up is closed) or adds the signed-in person who has that email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from tessera import audit
from tessera.accounts.passwords import Passwords
from tessera.accounts.records import Invitation, Member, User, normalize_email
from tessera.accounts.service import check_email, check_person_name
from tessera.accounts.store import AccountStore, InvitationChanges, InvitationStore
from tessera.clock import Clock
from tessera.errors import (
    Conflict,
    EmailTaken,
    FieldError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from tessera.ids import digest, new_id, new_secret
from tessera.mail import Mailer, messages
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ScopeCatalog

INVITATION_DAYS = 7
ACCEPT_PATH = "/invitations/accept"
NOT_VALID = "This invitation link is not valid: it was used, revoked or has expired."


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    url: str  # the one-time link; the inviter sees it only when it was not emailed


class Invitations:
    def __init__(
        self,
        store: InvitationStore,
        accounts: AccountStore,
        passwords: Passwords,
        catalog: ScopeCatalog,
        clock: Clock,
        *,
        public_url: str,
        mailer: Mailer | None,
    ) -> None:
        self._store = store
        self._accounts = accounts  # names for the email: the organization, the inviter
        self._passwords = passwords
        self._catalog = catalog
        self._clock = clock
        self._base = public_url.rstrip("/")
        self._mailer = mailer

    @property
    def sends_email(self) -> bool:
        return self._mailer is not None

    def list(self, organization_id: str) -> list[Invitation]:
        """Invitations neither accepted nor revoked (expired ones too), the newest first."""
        return self._store.invitations(organization_id)

    def create(
        self, actor: Principal, *, email: str, role: str, client: ClientInfo
    ) -> NewInvitation:
        """Invite ``email`` into the actor's organization; an open invitation to the same
        email is replaced. Emailed when a mailer is configured: if the mail server refuses
        it, the invitation is revoked and the error raised."""
        organization_id = actor.organization()
        email = check_email(email)
        self._check_may_invite(actor, role)
        now = self._clock.now()
        raw = new_secret("inv")
        invitation = Invitation(
            id=new_id("inv"),
            organization_id=organization_id,
            email=email,
            role=role,
            digest=digest(raw),
            created_at=now,
            created_by=actor.id,
            expires_at=now + timedelta(days=INVITATION_DAYS),
            emailed=self._mailer is not None,
        )
        with self._store.transaction() as tx:
            _check_not_member(tx, organization_id, email)
            for earlier in tx.pending_invitations_for(organization_id, email):
                tx.revoke_invitation(earlier.id, now)
            tx.add_invitation(invitation)
            details = {"email": email, "role": role, "emailed": invitation.emailed}
            tx.record(self._event("invitation.created", actor, invitation.id, client, details))
        url = f"{self._base}{ACCEPT_PATH}?token={quote(raw)}"
        self._send(actor, invitation, url)
        return NewInvitation(invitation, url)

    def revoke(self, actor: Principal, invitation_id: str, client: ClientInfo) -> Invitation:
        now = self._clock.now()
        with self._store.transaction() as tx:
            found = tx.invitation(invitation_id)
            if found is None or found.organization_id != actor.organization():
                raise NotFound(f"No invitation {invitation_id}.")
            if not tx.revoke_invitation(invitation_id, now):
                raise Conflict("This invitation was already accepted or revoked.")
            tx.record(self._event("invitation.revoked", actor, invitation_id, client, {}))
            revoked = tx.invitation(invitation_id)
        assert revoked is not None
        return revoked

    def pending(self, raw: str) -> Invitation:
        """The open invitation behind a link, for the page that accepts it."""
        with self._store.transaction() as tx:
            return _open(tx, raw, self._clock.now())

    def organization_name(self, invitation: Invitation) -> str:
        organization = self._accounts.organization(invitation.organization_id)
        return organization.name if organization else invitation.organization_id

    def accept_new(self, raw: str, *, password: str, name: str, client: ClientInfo) -> Member:
        """Sign up through an invitation: a new user with the invitation's email and role."""
        password_hash = self._passwords.hash(password)  # before the transaction: it is slow
        now = self._clock.now()
        with self._store.transaction() as tx:
            invitation = _open(tx, raw, now)
            if tx.user_by_email(invitation.email) is not None:
                raise EmailTaken("An account with this email exists: sign in to accept.")
            user = User(
                id=new_id("usr"),
                email=invitation.email,
                name=check_person_name(name, invitation.email),
                created_at=now,
                password_hash=password_hash,
                email_verified=invitation.emailed,  # the link reached that mailbox
            )
            tx.add_user(user)
            self._join(tx, invitation, user, now, client)
            tx.record(
                audit.event(
                    "user.signed_up",
                    now=now,
                    organization_id=invitation.organization_id,
                    actor=("user", user.id),
                    target=("user", user.id),
                    client=client,
                    details={"invitation_id": invitation.id},
                )
            )
        return Member(user, invitation.organization_id, invitation.role, now)

    def accept_existing(self, raw: str, user_id: str, client: ClientInfo) -> Member:
        """A signed-in person accepting an invitation made out to their own email."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            invitation = _open(tx, raw, now)
            user = tx.user(user_id)
            if user is None or normalize_email(user.email) != normalize_email(invitation.email):
                raise Forbidden(
                    f"This invitation is for {invitation.email}; sign in with that email."
                )
            if tx.member(invitation.organization_id, user.id) is not None:
                raise Conflict("You are already a member of this organization.")
            if invitation.emailed and not user.email_verified:
                tx.set_email_verified(user.id, True)
            self._join(tx, invitation, user, now, client)
        return Member(user, invitation.organization_id, invitation.role, now)

    def _join(
        self,
        tx: InvitationChanges,
        invitation: Invitation,
        user: User,
        now: datetime,
        client: ClientInfo,
    ) -> None:
        if not tx.accept_invitation(invitation.id, user.id, now):
            raise NotFound(NOT_VALID)  # another request accepted it a moment ago
        tx.add_member(invitation.organization_id, user.id, invitation.role, now)
        tx.record(
            audit.event(
                "invitation.accepted",
                now=now,
                organization_id=invitation.organization_id,
                actor=("user", user.id),
                target=("invitation", invitation.id),
                client=client,
                details={"role": invitation.role, "email": invitation.email},
            )
        )

    def _send(self, actor: Principal, invitation: Invitation, url: str) -> None:
        if self._mailer is None:
            return
        inviter = self._accounts.user(actor.user_id) if actor.user_id else None
        mail = messages.invitation(
            invitation.email,
            self.organization_name(invitation),
            inviter.name if inviter else "A member",
            url,
            INVITATION_DAYS,
        )
        try:
            self._mailer.send(mail)
        except ServiceUnavailable:
            with self._store.transaction() as tx:
                tx.revoke_invitation(invitation.id, self._clock.now())
            raise ServiceUnavailable(
                "The invitation could not be emailed (the mail server refused it); try again."
            ) from None

    def _check_may_invite(self, actor: Principal, role: str) -> None:
        """The role must exist and grant no more than the inviter holds."""
        if role not in self._catalog.roles:
            raise ValidationFailed(
                f"Unknown role '{role}'.",
                errors=[FieldError("role", f"one of {sorted(self._catalog.roles)}")],
            )
        if role == "owner" and actor.role != "owner":
            raise Forbidden("Only an owner can invite an owner.")
        beyond = self._catalog.granted_by_role(role) - actor.scopes
        if beyond:
            raise Forbidden(
                f"The role '{role}' grants more than you hold ({' '.join(sorted(beyond))})."
            )

    def _event(
        self,
        action: audit.Action,
        actor: Principal,
        invitation_id: str,
        client: ClientInfo,
        details: dict[str, object],
    ) -> audit.AuditEvent:
        return audit.by_principal(
            action,
            actor,
            ("invitation", invitation_id),
            now=self._clock.now(),
            client=client,
            details=dict(details),
        )


def _open(tx: InvitationChanges, raw: str, now: datetime) -> Invitation:
    found = tx.invitation_by_digest(digest(raw))
    if found is None or found.status(now) != "pending":
        raise NotFound(NOT_VALID)
    return found


def _check_not_member(tx: InvitationChanges, organization_id: str, email: str) -> None:
    existing = tx.user_by_email(email)
    if existing is not None and tx.member(organization_id, existing.id) is not None:
        raise Conflict(f"{email} is already a member of this organization.")
