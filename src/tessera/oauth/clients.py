"""Registering and managing OAuth clients: no client exceeds its registrant (SPEC section 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from tessera import audit
from tessera.clock import Clock
from tessera.errors import FieldError, Forbidden, NotFound, UnknownScope, ValidationFailed
from tessera.ids import digest, new_id, new_secret, same_digest
from tessera.oauth.records import LOOPBACK_HOSTS, OPENID_SCOPES, ClientType, OAuthClient
from tessera.oauth.store import OAuthStore
from tessera.principal import ClientInfo, Principal
from tessera.scopes import ADMIN_ROLES, ScopeCatalog
from tessera.text import checked_name, is_clean

SECRET_PREFIX = "cs"  # noqa: S105 (the prefix of a generated secret, not a secret)
MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2000
# Evicts whatever was remembered about these grants or clients, on every instance.
Forget = Callable[[list[str]], None]


@dataclass(frozen=True)
class ClientSpec:
    name: str
    redirect_uris: list[str]
    scopes: list[str]
    type: ClientType = "confidential"


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    secret: str | None  # shown once; None for a public client


class OAuthClients:
    def __init__(
        self, store: OAuthStore, clock: Clock, catalog: ScopeCatalog, forget: Forget
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._forget = forget

    def create(self, registrant: Principal, spec: ClientSpec, client: ClientInfo) -> NewClient:
        now = self._clock.now()
        secret = new_secret(SECRET_PREFIX) if spec.type == "confidential" else None
        record = OAuthClient(
            id=new_id("cli"),
            organization_id=registrant.organization(),
            name=checked_name(spec.name),
            type=spec.type,
            redirect_uris=checked_redirect_uris(spec.redirect_uris),
            scopes=self.checked_scopes(registrant, spec.scopes),
            secret_digest=digest(secret) if secret else None,
            created_at=now,
            created_by=registrant.user_id or registrant.id,
        )
        with self._store.transaction() as tx:
            tx.save_client(record)
            tx.record(_event("oauth_client.created", registrant, record, now, client))
        return NewClient(record, secret)

    def of_organization(self, organization_id: str) -> list[OAuthClient]:
        return self._store.clients(organization_id)

    def named(self, client_id: str) -> OAuthClient | None:
        """Any client by its id, deleted ones too (what a grant or a page names)."""
        return self._store.client(client_id) if is_clean(client_id) else None

    def get(self, organization_id: str, client_id: str) -> OAuthClient:
        found = self._store.client(client_id) if is_clean(client_id) else None
        if (
            found is None
            or found.deleted_at is not None
            or found.organization_id != organization_id
        ):
            raise NotFound(f"No OAuth client {client_id}.")
        return found

    def update(
        self, caller: Principal, client_id: str, changes: dict[str, Any], client: ClientInfo
    ) -> OAuthClient:
        record = self.get(caller.organization(), client_id)
        if "name" in changes and changes["name"] is not None:
            record = replace(record, name=checked_name(changes["name"]))
        if changes.get("redirect_uris") is not None:
            record = replace(record, redirect_uris=checked_redirect_uris(changes["redirect_uris"]))
        if changes.get("scopes") is not None:
            record = replace(record, scopes=self.checked_scopes(caller, changes["scopes"]))
        now = self._clock.now()
        with self._store.transaction() as tx:
            tx.save_client(record)
            tx.record(_event("oauth_client.updated", caller, record, now, client))
        self._forget([record.id])
        return record

    def rotate_secret(self, caller: Principal, client_id: str, client: ClientInfo) -> NewClient:
        record = self.get(caller.organization(), client_id)
        if not record.confidential:
            raise ValidationFailed("A public client has no secret.")
        secret = new_secret(SECRET_PREFIX)
        record = replace(record, secret_digest=digest(secret))
        now = self._clock.now()
        with self._store.transaction() as tx:
            tx.save_client(record)
            tx.record(_event("oauth_client.secret_rotated", caller, record, now, client))
        self._forget([record.id])
        return NewClient(record, secret)

    def delete(self, caller: Principal, client_id: str, client: ClientInfo) -> OAuthClient:
        """Delete the client and end every grant and token it holds, on every instance.

        Repeating it for a deleted client changes nothing but tells every instance again, so
        that a deletion answered ``503`` (saved, not yet acknowledged) is confirmed by
        repeating the request. Its grants need no telling: each is judged with its client."""
        deleted = self.named(client_id)
        if (
            deleted is not None
            and deleted.deleted_at is not None
            and deleted.organization_id == caller.organization()
        ):
            self._forget([deleted.id])
            return deleted
        record = self.get(caller.organization(), client_id)
        now = self._clock.now()
        record = replace(record, deleted_at=now)
        with self._store.transaction() as tx:
            tx.save_client(record)
            ended = tx.revoke_grants_of_client(record.id, now)
            tx.end_families_of(ended, now)
            tx.record(_event("oauth_client.deleted", caller, record, now, client))
        self._forget([record.id, *ended])
        return record

    def checked_scopes(self, registrant: Principal, scopes: list[str]) -> tuple[str, ...]:
        """``scopes`` when the registrant may give every one of them (403 otherwise)."""
        catalog_scopes = [s for s in scopes if s not in OPENID_SCOPES]
        unknown = self._catalog.unknown(catalog_scopes)
        if unknown:
            raise UnknownScope(
                f"Unknown scope: {', '.join(unknown)}.",
                errors=[FieldError("scopes", f"unknown scope {s}") for s in unknown],
            )
        admin_only = self._catalog.admin_only(catalog_scopes)
        if admin_only and registrant.kind == "user" and registrant.role not in ADMIN_ROLES:
            raise Forbidden(f"Only owners and admins can grant {', '.join(admin_only)}.")
        beyond = sorted(set(catalog_scopes) - registrant.scopes)
        if beyond:
            raise Forbidden(
                f"A client cannot hold scopes its registrant lacks: {', '.join(beyond)}."
            )
        return tuple(sorted(set(scopes)))


def authenticate_secret(client: OAuthClient, secret: str) -> bool:
    return client.secret_digest is not None and same_digest(client.secret_digest, digest(secret))


def checked_redirect_uris(uris: list[str]) -> tuple[str, ...]:
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise ValidationFailed(
            f"Give 1 to {MAX_REDIRECT_URIS} redirect URIs.",
            errors=[FieldError("redirect_uris", "1 to 20 URIs")],
        )
    for uri in uris:
        problem = _redirect_problem(uri)
        if problem:
            raise ValidationFailed(
                f"Redirect URI {uri[:200]!r}: {problem}",
                errors=[FieldError("redirect_uris", problem)],
            )
    return tuple(dict.fromkeys(uris))


def _redirect_problem(uri: str) -> str | None:
    if len(uri) > MAX_URI_LENGTH or not is_clean(uri) or any(c.isspace() for c in uri):
        return "not a valid URI"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return "not a valid URI"
    if parts.fragment or "#" in uri:
        return "a redirect URI may not have a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "must be https, or http on a loopback address"


def _event(
    action: audit.Action,
    actor: Principal,
    record: OAuthClient,
    now: Any,
    client: ClientInfo,
) -> audit.AuditEvent:
    return audit.by_principal(
        action,
        actor,
        ("oauth_client", record.id),
        now=now,
        client=client,
        details={"name": record.name},
    )
