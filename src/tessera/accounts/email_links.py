"""Password reset and email verification by one-time links (SPEC section 3).

A link carries a random secret; only its digest is stored, with the address it was sent to.
It works once: a reset link for one hour, a verification link for a day. A reset request
answers the same whether or not the email has an account, and a reset ends every session and
refresh-token family of the person. Without a mail server an operator makes a reset link with
``tessera user reset-password`` and hands it over.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from urllib.parse import quote

from tessera import audit
from tessera.accounts.passwords import Passwords
from tessera.accounts.records import EmailLink, User, normalize_email
from tessera.accounts.store import AccountStore, EmailLinkChanges, EmailLinkStore
from tessera.clock import Clock
from tessera.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from tessera.ids import digest, new_id, new_secret
from tessera.mail import Mail, Mailer, messages
from tessera.principal import ClientInfo
from tessera.sessions.service import BrowserSessions

PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose, not a password)
EMAIL_VERIFICATION = "email_verification"
LIFETIMES = {PASSWORD_RESET: timedelta(hours=1), EMAIL_VERIFICATION: timedelta(hours=24)}
PATHS = {PASSWORD_RESET: "/password-reset/confirm", EMAIL_VERIFICATION: "/verify-email"}
NOT_VALID = "This link is not valid: it was used already, or it has expired."
# At most one mail of each kind a minute to one person: asking again and again (or someone
# else asking for them) cannot flood their mailbox.
COOLDOWN = timedelta(seconds=60)


class _Links:
    """Issuing and spending links of one purpose."""

    purpose: str

    def __init__(
        self,
        store: EmailLinkStore,
        accounts: AccountStore,
        clock: Clock,
        *,
        public_url: str,
        mailer: Mailer | None,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._clock = clock
        self._base = public_url.rstrip("/")
        self._mailer = mailer

    @property
    def sends_email(self) -> bool:
        return self._mailer is not None

    def _issue(self, tx: EmailLinkChanges, user: User) -> str:
        """A new link for ``user``, added to ``tx``; returns its URL."""
        now = self._clock.now()
        raw = new_secret("eml")
        tx.add_email_link(
            EmailLink(
                id=new_id("eml"),
                purpose=self.purpose,
                user_id=user.id,
                email=user.email,
                digest=digest(raw),
                created_at=now,
                expires_at=now + LIFETIMES[self.purpose],
            )
        )
        return f"{self._base}{PATHS[self.purpose]}?token={quote(raw)}"

    def _cooling_down(self, tx: EmailLinkChanges, user: User) -> bool:
        since = self._clock.now() - COOLDOWN
        return tx.email_links_since(user.id, self.purpose, since) > 0

    def _spend(self, tx: EmailLinkChanges, raw: str, now: datetime) -> User:
        """The person a usable link of this purpose belongs to, the link spent."""
        link = tx.email_link_by_digest(digest(raw))
        if link is None or link.purpose != self.purpose or not link.usable(now):
            raise NotFound(NOT_VALID)
        user = tx.user(link.user_id)
        # A link proves control of the address it went to, and of no other.
        if user is None or normalize_email(user.email) != normalize_email(link.email):
            raise NotFound(NOT_VALID)
        if not tx.spend_email_link(link.id, now):
            raise NotFound(NOT_VALID)  # another request used it a moment ago
        return user

    def send_quietly(self, mail: Mail) -> None:
        """Send a mail prepared earlier, after the answer went out: a failure is logged by
        the mailer and goes no further (the person can ask again)."""
        if self._mailer is None:
            return
        with suppress(ServiceUnavailable):
            self._mailer.send(mail)

    def _events(
        self, action: audit.Action, user: User, client: ClientInfo | None, actor: audit.Actor
    ) -> list[audit.AuditEvent]:
        return audit.in_organizations(
            action,
            self._accounts.organization_ids(user.id),
            now=self._clock.now(),
            actor=actor,
            target=("user", user.id),
            client=client,
        )


class PasswordResets(_Links):
    purpose = PASSWORD_RESET

    def __init__(
        self,
        store: EmailLinkStore,
        accounts: AccountStore,
        passwords: Passwords,
        sessions: BrowserSessions,
        clock: Clock,
        *,
        public_url: str,
        mailer: Mailer | None,
    ) -> None:
        super().__init__(store, accounts, clock, public_url=public_url, mailer=mailer)
        self._passwords = passwords
        self._sessions = sessions  # a reset signs the person out everywhere

    def request(self, email: str, client: ClientInfo) -> Mail | None:
        """The mail to send for a reset request, or None (no such account, or no mailer).

        The caller answers the same either way and sends the mail after answering, so
        neither the answer nor its timing tells whether the email has an account."""
        if self._mailer is None:
            return None
        with self._store.transaction() as tx:
            user = tx.user_by_email(email)
            if user is None or self._cooling_down(tx, user):
                return None
            url = self._issue(tx, user)
            for event in self._events("user.password_reset_requested", user, client, audit.SYSTEM):
                tx.record(event)
        return messages.password_reset(user.email, url)

    def operator_link(self, email: str) -> str:
        """A one-time reset link for ``tessera user reset-password``."""
        with self._store.transaction() as tx:
            user = tx.user_by_email(email)
            if user is None:
                raise NotFound(f"No user with the email {email}.")
            url = self._issue(tx, user)
            for event in self._events("user.password_reset_requested", user, None, audit.SYSTEM):
                tx.record(event)
        return url

    def check(self, raw: str) -> None:
        """Raises NotFound unless ``raw`` is a usable reset link (for the page's form)."""
        with self._store.transaction() as tx:
            link = tx.email_link_by_digest(digest(raw))
            if link is None or link.purpose != self.purpose or not link.usable(self._clock.now()):
                raise NotFound(NOT_VALID)

    def confirm(self, raw: str, password: str, client: ClientInfo) -> User:
        """Set the new password, spend every reset link of the person, and end their
        sessions and refresh-token families."""
        password_hash = self._passwords.hash(password)  # before the transaction: it is slow
        now = self._clock.now()
        with self._store.transaction() as tx:
            user = self._spend(tx, raw, now)
            tx.set_password_hash(user.id, password_hash)
            tx.spend_email_links_of(user.id, PASSWORD_RESET, now)
            for event in self._events("user.password_reset", user, client, ("user", user.id)):
                tx.record(event)
        self._sessions.end_all(user.id, client)
        return user


class EmailVerifications(_Links):
    purpose = EMAIL_VERIFICATION

    def for_new_user(self, user: User) -> Mail | None:
        """The verification mail for someone who just signed up, when mail is configured."""
        if self._mailer is None or user.email_verified:
            return None
        with self._store.transaction() as tx:
            url = self._issue(tx, user)
        return messages.email_verification(user.email, url)

    def send_to(self, user_id: str) -> None:
        """Email a verification link to the person's address now (blocking)."""
        if self._mailer is None:
            raise InvalidRequest("This deployment sends no email ([smtp] is not configured).")
        user = self._accounts.user(user_id)
        if user is None:
            raise NotFound(f"No user {user_id}.")
        if user.email_verified:
            raise Conflict("This email address is verified already.")
        with self._store.transaction() as tx:
            if self._cooling_down(tx, user):
                raise RateLimited(
                    "A verification link was sent less than a minute ago.",
                    retry_after=int(COOLDOWN.total_seconds()),
                )
            url = self._issue(tx, user)
        self._mailer.send(messages.email_verification(user.email, url))

    def confirm(self, raw: str, client: ClientInfo) -> User:
        now = self._clock.now()
        with self._store.transaction() as tx:
            user = self._spend(tx, raw, now)
            tx.set_email_verified(user.id, True)
            for event in self._events("user.email_verified", user, client, ("user", user.id)):
                tx.record(event)
        return User(
            user.id, user.email, user.name, user.created_at, user.password_hash, email_verified=True
        )
