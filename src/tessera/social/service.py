"""Social sign-in: start at a provider, come back, and find (or make) the person (SPEC
section 3).

An identity is (provider, subject). On a first sign-in, an email the provider calls verified
links to the user with that email; when that user's own email was not verified, its password
is removed and its sessions and refresh-token families end in the same transaction, because
the provider proved control of the email and the password's holder did not (this defeats
account pre-hijacking). An email the provider does not call verified never links. With no
such user, a new one is made when signup is open.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tessera import audit
from tessera.accounts.records import Organization, User, Workspace
from tessera.accounts.service import FIRST_WORKSPACE, check_email
from tessera.clock import Clock
from tessera.errors import Conflict, NotFound, ValidationFailed
from tessera.ids import digest, new_id
from tessera.principal import ClientInfo
from tessera.social.records import Identity, PendingSignIn, Profile
from tessera.social.store import Provider, ProviderError, SocialChanges, SocialStore
from tessera.text import PERSON_NAME_MAX_LENGTH, is_clean

PENDING_SECONDS = 600  # from the sign-in button to the callback


class SignInRefused(Exception):
    """A social sign-in that cannot go on; ``reason`` says why, ``detail`` says it to a person.

    Reasons: ``unknown_provider``, ``bad_state``, ``provider_error`` (the provider answered an
    error, such as ``access_denied``), ``unavailable`` (the provider cannot be reached),
    ``invalid`` (its answer failed Tessera's checks), ``signup_closed``, ``email_in_use``,
    ``no_email``, ``already_linked``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the value of the cookie that binds the sign-in to it."""

    url: str
    browser_secret: str


@dataclass(frozen=True)
class Finished:
    user_id: str
    provider: str
    return_to: str
    linked: bool  # a signed-in person linked a provider: no new session is needed


class SocialSignIn:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        store: SocialStore,
        clock: Clock,
        *,
        signup_open: bool,
    ) -> None:
        self._providers = dict(providers)
        self._store = store
        self._clock = clock
        self._signup_open = signup_open

    @property
    def providers(self) -> list[Provider]:
        return list(self._providers.values())

    def provider(self, name: str) -> Provider:
        found = self._providers.get(name)
        if found is None:
            raise SignInRefused("unknown_provider", f"No sign-in provider named {name!r}.")
        return found

    def begin(
        self,
        name: str,
        *,
        redirect_uri: str,
        return_to: str,
        link_user_id: str | None = None,
    ) -> Started:
        """A pending sign-in, and the provider's authorization URL for it."""
        provider = self.provider(name)
        state, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        now = self._clock.now()
        try:
            url = provider.authorization_url(
                redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
            )
        except ProviderError as failed:
            raise SignInRefused(failed.reason, failed.detail) from None
        pending = PendingSignIn(
            state_digest=digest(state),
            browser_digest=digest(browser),
            provider=name,
            nonce=nonce,
            code_verifier=verifier,
            return_to=return_to,
            link_user_id=link_user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=PENDING_SECONDS),
        )
        with self._store.transaction() as tx:
            tx.add_pending(pending)
        return Started(url, browser)

    def finish(
        self,
        name: str,
        params: Mapping[str, str],
        browser_secret: str | None,
        *,
        redirect_uri: str,
        client: ClientInfo,
    ) -> Finished:
        """The callback: the state taken once and checked against this browser, the provider's
        answer checked, then the person found, linked or made."""
        provider = self.provider(name)
        pending = self._take(name, params.get("state", ""), browser_secret)
        if "error" in params:
            error = params["error"][:100]
            said = params.get("error_description", "")[:300]
            detail = f"{provider.display_name} did not sign you in ({error})."
            raise SignInRefused("provider_error", f"{detail} {said}".strip())
        code = params.get("code", "")
        if not code:
            raise SignInRefused("invalid", f"{provider.display_name} sent no authorization code.")
        try:
            profile = provider.profile(
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
                issuer=params.get("iss"),
            )
        except ProviderError as failed:
            raise SignInRefused(failed.reason, failed.detail) from None
        if not is_clean(profile.subject) or not 1 <= len(profile.subject) <= 255:
            raise SignInRefused("invalid", f"{provider.display_name} sent no usable subject.")
        user_id = self._person(provider, profile, pending, client)
        return Finished(user_id, name, pending.return_to, pending.link_user_id is not None)

    def identities(self, user_id: str) -> list[Identity]:
        return self._store.identities_of(user_id)

    def unlink(self, user_id: str, identity_id: str, client: ClientInfo) -> None:
        """Remove a linked provider, unless it is the person's last way to sign in."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            mine = tx.identities_of(user_id)
            found = next((i for i in mine if i.id == identity_id), None)
            if found is None:
                raise NotFound(f"No identity {identity_id}.")
            user = tx.user(user_id)
            if len(mine) == 1 and (user is None or user.password_hash is None):
                raise Conflict(
                    "This is your only way to sign in: set a password or link another "
                    "provider first."
                )
            tx.remove_identity(identity_id)
            _record(tx, "user.identity_unlinked", user_id, found, now, client)

    def _take(self, name: str, state: str, browser_secret: str | None) -> PendingSignIn:
        refused = SignInRefused(
            "bad_state",
            "This sign-in link is not valid here: it expired, was already used, or was "
            "started in another browser. Start again from the sign-in page.",
        )
        if not state or len(state) > 200 or not is_clean(state):
            raise refused
        now = self._clock.now()
        with self._store.transaction() as tx:
            pending = tx.take_pending(digest(state), now)
        if (
            pending is None
            or pending.provider != name
            or pending.expires_at <= now
            or browser_secret is None
            or not secrets.compare_digest(pending.browser_digest, digest(browser_secret))
        ):
            raise refused
        return pending

    def _person(
        self, provider: Provider, profile: Profile, pending: PendingSignIn, client: ClientInfo
    ) -> str:
        now = self._clock.now()
        email = _usable_email(profile.email)
        with self._store.transaction() as tx:
            known = tx.identity(provider.name, profile.subject)
            if pending.link_user_id is not None:
                return _link_signed_in(tx, provider, profile, email, known, pending, now, client)
            if known is not None:
                tx.touch_identity(known.id, now, email)
                if profile.email_verified and email is not None:
                    owner = tx.user(known.user_id)
                    if owner is not None and _same(owner.email, email):
                        tx.set_email_verified(owner.id, True)
                return known.user_id
            existing = tx.user_by_email(email) if email else None
            if existing is not None:
                if not profile.email_verified:
                    raise SignInRefused(
                        "email_in_use",
                        f"An account with the email {email} exists, and {provider.display_name} "
                        "does not say this email is verified, so it cannot sign in to that "
                        "account. Sign in with your password, then link "
                        f"{provider.display_name} under Settings → Sign-in methods.",
                    )
                return _link_by_email(tx, provider, profile, email, existing, now, client)
            if email is None:
                raise SignInRefused(
                    "no_email",
                    f"{provider.display_name} did not share an email address, which an account "
                    "here needs.",
                )
            if not self._signup_open:
                raise SignInRefused(
                    "signup_closed",
                    f"No account here has the email {email}, and sign-up is closed on this "
                    "deployment. Ask an administrator for an invitation.",
                )
            return _sign_up(tx, provider, profile, email, now, client)


def _link_signed_in(
    tx: SocialChanges,
    provider: Provider,
    profile: Profile,
    email: str | None,
    known: Identity | None,
    pending: PendingSignIn,
    now: datetime,
    client: ClientInfo,
) -> str:
    user_id = pending.link_user_id
    assert user_id is not None
    if known is not None and known.user_id != user_id:
        raise SignInRefused(
            "already_linked",
            f"This {provider.display_name} account is already linked to another user.",
        )
    if known is None:
        if any(i.provider == provider.name for i in tx.identities_of(user_id)):
            raise SignInRefused(
                "already_linked",
                f"Another {provider.display_name} account is linked to you already; unlink it "
                "first.",
            )
        identity = _identity(user_id, provider, profile, email, now)
        tx.add_identity(identity)
        _record(tx, "user.identity_linked", user_id, identity, now, client)
    else:
        tx.touch_identity(known.id, now, email)
    return user_id


def _link_by_email(
    tx: SocialChanges,
    provider: Provider,
    profile: Profile,
    email: str | None,
    user: User,
    now: datetime,
    client: ClientInfo,
) -> str:
    """A provider-verified email matching a user: link; an unverified holder loses its
    password and every session and token family."""
    taken_over = not user.email_verified
    ended: list[str] = []
    if taken_over:
        tx.remove_password(user.id)
        ended = tx.end_sessions_of(user.id, now)
        tx.revoke_families_of(user.id, now)
        tx.set_email_verified(user.id, True)
    identity = _identity(user.id, provider, profile, email, now)
    tx.add_identity(identity)
    organizations = _organizations(tx, user.id)
    for session_id in ended:
        for event in audit.in_organizations(
            "session.ended",
            organizations,
            now=now,
            actor=audit.SYSTEM,
            target=("session", session_id),
            client=client,
            details={"reason": "email_verified_by_provider", "provider": provider.name},
        ):
            tx.record(event)
    _record(
        tx,
        "user.identity_linked",
        user.id,
        identity,
        now,
        client,
        extra={"by": "verified_email", "password_removed": taken_over and bool(user.password_hash)},
    )
    return user.id


def _sign_up(
    tx: SocialChanges,
    provider: Provider,
    profile: Profile,
    email: str,
    now: datetime,
    client: ClientInfo,
) -> str:
    """A new person, owning a new organization with its first workspace, as at sign-up."""
    name = _person_name(profile.name, email)
    user = User(
        id=new_id("usr"),
        email=email,
        name=name,
        created_at=now,
        password_hash=None,
        email_verified=profile.email_verified,
    )
    tx.add_user(user)
    organization = Organization(new_id("org"), _organization_name(name), now)
    tx.add_organization(organization)
    tx.add_workspace(Workspace(new_id("ws"), organization.id, FIRST_WORKSPACE, now))
    tx.add_member(organization.id, user.id, "owner", now)
    tx.record(
        audit.event(
            "user.signed_up",
            now=now,
            organization_id=organization.id,
            actor=("user", user.id),
            target=("user", user.id),
            client=client,
            details={"provider": provider.name},
        )
    )
    identity = _identity(user.id, provider, profile, email, now)
    tx.add_identity(identity)
    _record(tx, "user.identity_linked", user.id, identity, now, client)
    return user.id


def _identity(
    user_id: str, provider: Provider, profile: Profile, email: str | None, now: datetime
) -> Identity:
    return Identity(
        id=new_id("idn"),
        user_id=user_id,
        provider=provider.name,
        subject=profile.subject,
        email=email,
        created_at=now,
        last_used_at=now,
    )


def _record(
    tx: SocialChanges,
    action: audit.Action,
    user_id: str,
    identity: Identity,
    now: datetime,
    client: ClientInfo,
    extra: dict[str, object] | None = None,
) -> None:
    for event in audit.in_organizations(
        action,
        _organizations(tx, user_id),
        now=now,
        actor=("user", user_id),
        target=("identity", identity.id),
        client=client,
        details={"provider": identity.provider, **(extra or {})},
    ):
        tx.record(event)


def _organizations(tx: SocialChanges, user_id: str) -> list[str]:
    return tx.organization_ids(user_id)


def _usable_email(email: str | None) -> str | None:
    if not email:
        return None
    try:
        return check_email(email)
    except ValidationFailed:  # a provider's odd address is no address here
        return None


def _same(one: str, other: str) -> bool:
    return one.strip().lower() == other.strip().lower()


def _person_name(name: str, email: str) -> str:
    cleaned = name.strip() if is_clean(name) else ""
    return cleaned[:PERSON_NAME_MAX_LENGTH] or email.split("@")[0]


def _organization_name(person: str) -> str:
    return f"{person[:80]}'s organization"
