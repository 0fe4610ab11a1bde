"""JWT signing keys (joserfc): kept in the database, private halves encrypted at rest.

Rotation adds a key and makes it current; the previous key stays published in the JWKS
and keeps verifying until every token it signed has expired.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from tessera.clock import Clock, as_utc
from tessera.errors import ConfigError, Unauthorized
from tessera.ids import new_id
from tessera.tokens.store import SigningKeyStore, StoredSigningKey

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
RELOAD_SECONDS = 60

AnyKey = RSAKey | ECKey


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    key: AnyKey
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


class SigningKeys:
    def __init__(
        self,
        store: SigningKeyStore,
        secret_key: str,
        algorithm: str,
        clock: Clock,
        access_ttl: int,
    ) -> None:
        self._store = store
        self._fernet = Fernet(_derive_key(secret_key, b"tessera signing keys"))
        self._algorithm = algorithm
        self._clock = clock
        self._access_ttl = access_ttl
        self._keys: dict[str, LoadedKey] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def ensure_current(self) -> None:
        """Create the first signing key if there is none."""
        self._reload()
        if not self._live_keys():
            self.rotate()

    def rotate(self) -> str:
        """Add a new key, make it current, retire the previous one; returns the new kid."""
        now = self._clock.now()
        key = _generate(self._algorithm)
        kid = new_id("sig")
        public = {**key.as_dict(private=False), "kid": kid, "alg": self._algorithm, "use": "sig"}
        self._store.add_current(
            StoredSigningKey(
                kid=kid,
                algorithm=self._algorithm,
                encrypted_private_key=self._fernet.encrypt(key.as_pem(private=True)).decode(),
                public_jwk=public,
                created_at=now,
            )
        )
        self._reload()
        return kid

    def sign(self, claims: dict[str, Any]) -> str:
        current = self._current()
        header = {"alg": current.algorithm, "typ": ACCESS_TOKEN_TYPE, "kid": current.kid}
        return jwt.encode(header, claims, current.key, algorithms=[current.algorithm])

    def decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims of a token signed by one of our keys (algorithm pinned per key)."""
        try:
            kid = _unverified_kid(token)
            loaded = self._find(kid)
            decoded = jwt.decode(token, loaded.key, algorithms=[loaded.algorithm])
        except (JoseError, ValueError) as exc:
            raise Unauthorized("The access token is not valid.") from exc
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthorized("The access token is not valid.")
        return decoded.header, decoded.claims

    def jwks(self) -> dict[str, Any]:
        self._maybe_reload()
        return {"keys": [k.public_jwk for k in self._published()]}

    def _published(self) -> list[LoadedKey]:
        """Current keys, and retired ones while tokens they signed may still be alive."""
        keys = [k for k in self._keys.values() if self._is_published(k)]
        return sorted(keys, key=lambda k: k.created_at, reverse=True)

    def _is_published(self, key: LoadedKey) -> bool:
        horizon = self._clock.now() - timedelta(seconds=self._access_ttl + 60)
        return key.retired_at is None or as_utc(key.retired_at) > horizon

    def _live_keys(self) -> list[LoadedKey]:
        return [k for k in self._keys.values() if k.retired_at is None]

    def _current(self) -> LoadedKey:
        self._maybe_reload()
        live = sorted(self._live_keys(), key=lambda k: as_utc(k.created_at))
        if not live:
            self.ensure_current()
            live = self._live_keys()
        return live[-1]

    def _find(self, kid: str) -> LoadedKey:
        if kid not in self._keys:
            self._reload()  # another instance (or the CLI) may have rotated
        loaded = self._keys.get(kid)
        if loaded is None or not self._is_published(loaded):
            raise ValueError("unknown or expired signing key")
        return loaded

    def _maybe_reload(self) -> None:
        if self._clock.timestamp() - self._loaded_at > RELOAD_SECONDS:
            self._reload()

    def _reload(self) -> None:
        with self._lock:
            keys = {stored.kid: self._load(stored) for stored in self._store.all()}
        self._keys = keys
        self._loaded_at = self._clock.timestamp()

    def _load(self, row: StoredSigningKey) -> LoadedKey:
        try:
            pem = self._fernet.decrypt(row.encrypted_private_key.encode())
        except InvalidToken:
            raise ConfigError(
                "secret_key is not the one that encrypted the signing keys in this database"
            ) from None
        key_class = RSAKey if row.algorithm.startswith("RS") else ECKey
        return LoadedKey(
            row.kid,
            row.algorithm,
            key_class.import_key(pem),
            row.public_jwk,
            row.created_at,
            row.retired_at,
        )


def _generate(algorithm: str) -> AnyKey:
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", private=True)
    return RSAKey.generate_key(2048, private=True)


def _derive_key(secret: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _unverified_kid(token: str) -> str:
    header_segment = token.split(".", 1)[0]
    padded = header_segment + "=" * (-len(header_segment) % 4)
    header = json.loads(base64.urlsafe_b64decode(padded))
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(kid, str):
        raise ValueError("no kid")
    return kid
