"""JWT signing keys (joserfc): kept in the database, private halves encrypted at rest.

Rotation adds a key, published in the JWKS at once. It signs only once it is older than
``jwks_max_age_seconds`` (the JWKS ``Cache-Control`` max-age), so that every verifier caching
the JWKS has seen it before the first token it signs; until then the previous key signs. A
superseded key stays published until every token it may have signed has expired.

The JWKS and the choice of the signing key read the database each time, so every instance
agrees at once; only the decrypted private halves, which never change, are kept in memory.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from tessera.clock import Clock
from tessera.errors import ConfigError, Unauthorized
from tessera.ids import new_id
from tessera.tokens.store import KeyInfo, SigningKeyStore

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
# How long verification trusts its list of keys; a token naming an unknown kid reloads it.
RELOAD_SECONDS = 60
# Leeway for clocks that disagree, added to how long a superseded key stays published.
LEEWAY_SECONDS = 60

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
        jwks_max_age: int,
    ) -> None:
        self._store = store
        self._fernet = Fernet(_derive_key(secret_key, b"tessera signing keys"))
        self._algorithm = algorithm
        self._clock = clock
        self._access_ttl = access_ttl
        self._jwks_max_age = jwks_max_age
        self._private: dict[str, AnyKey] = {}
        self._known: dict[str, KeyInfo] = {}
        self._known_at = float("-inf")

    def ensure_current(self) -> None:
        """Create the first signing key if there is none, and check that ``secret_key``
        opens the key that signs (a wrong one stops the start, not the first login)."""
        if not any(k.retired_at is None for k in self._read()):
            self.rotate()
        self._current()

    def rotate(self) -> str:
        """Add a new key and retire the previous one; returns the new kid. The new key is
        published now and signs once it is older than the JWKS max-age."""
        now = self._clock.now()
        key = _generate(self._algorithm)
        kid = new_id("sig")
        public = {**key.as_dict(private=False), "kid": kid, "alg": self._algorithm, "use": "sig"}
        self._store.add_current(
            KeyInfo(kid, self._algorithm, public, now, retired_at=None),
            self._fernet.encrypt(key.as_pem(private=True)).decode(),
        )
        self._private[kid] = key
        self._read()
        return kid

    @property
    def algorithm(self) -> str:
        """The algorithm of the key that signs now."""
        return self._current().algorithm

    def algorithms(self) -> list[str]:
        """The algorithms of every published key: each token signed now or until the next
        rotation takes effect uses one of them (the configured algorithm applies only to keys
        made from now on)."""
        published = self._published(self._read())
        if not published:
            return [self.algorithm]
        return sorted({k.algorithm for k in published})

    def sign(self, claims: dict[str, Any], *, typ: str = ACCESS_TOKEN_TYPE) -> str:
        """``claims`` signed by the current key; ``typ`` is ``at+jwt`` unless an ID token."""
        current = self._current()
        header = {"alg": current.algorithm, "typ": typ, "kid": current.kid}
        return jwt.encode(header, claims, current.key, algorithms=[current.algorithm])

    def decode(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims of a token signed by one of our keys (algorithm pinned per key)."""
        try:
            info = self._find(_unverified_kid(token))
            key = self._private_key(info)
            decoded = jwt.decode(token, key, algorithms=[info.algorithm])
        except (JoseError, ValueError) as exc:
            raise Unauthorized("The access token is not valid.") from exc
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthorized("The access token is not valid.")
        return decoded.header, decoded.claims

    def jwks(self) -> dict[str, Any]:
        """Every published key, newest first, as the database has them now."""
        return {"keys": [k.public_jwk for k in reversed(self._published(self._read()))]}

    def _current(self) -> LoadedKey:
        """The newest key older than the JWKS max-age; while every key is younger (a new
        deployment), the oldest one."""
        published = self._published(self._read())
        if not published:
            self.rotate()
            published = self._published(self._read())
        horizon = self._clock.now() - timedelta(seconds=self._jwks_max_age)
        seen = [k for k in published if k.created_at <= horizon]
        chosen = seen[-1] if seen else published[0]
        return LoadedKey(
            chosen.kid,
            chosen.algorithm,
            self._private_key(chosen),
            chosen.public_jwk,
            chosen.created_at,
            chosen.retired_at,
        )

    def _published(self, keys: list[KeyInfo]) -> list[KeyInfo]:
        """Current keys, and superseded ones while tokens they signed may still be alive;
        oldest first."""
        return [k for k in keys if self._is_published(k)]

    def _is_published(self, key: KeyInfo) -> bool:
        # A superseded key signs until its successor is older than the max-age; its tokens
        # live the access-token lifetime after that.
        alive = self._access_ttl + self._jwks_max_age + LEEWAY_SECONDS
        horizon = self._clock.now() - timedelta(seconds=alive)
        return key.retired_at is None or key.retired_at > horizon

    def _find(self, kid: str) -> KeyInfo:
        stale = self._clock.timestamp() - self._known_at > RELOAD_SECONDS
        if stale or kid not in self._known:
            self._read()  # another instance (or the CLI) may have rotated
        info = self._known.get(kid)
        if info is None or not self._is_published(info):
            raise ValueError("unknown or expired signing key")
        return info

    def _read(self) -> list[KeyInfo]:
        """Every key, oldest first, without the private halves."""
        keys = self._store.all()
        self._known = {k.kid: k for k in keys}
        self._known_at = self._clock.timestamp()
        return keys

    def _private_key(self, info: KeyInfo) -> AnyKey:
        key = self._private.get(info.kid)
        if key is None:
            encrypted = self._store.encrypted_private_key(info.kid)
            if encrypted is None:
                raise ValueError("unknown signing key")
            key = self._private[info.kid] = self._decrypt(encrypted, info.algorithm)
        return key

    def _decrypt(self, encrypted: str, algorithm: str) -> AnyKey:
        try:
            pem = self._fernet.decrypt(encrypted.encode())
        except InvalidToken:
            raise ConfigError(
                "secret_key is not the one that encrypted the signing keys in this database"
            ) from None
        key_class = RSAKey if algorithm.startswith("RS") else ECKey
        return key_class.import_key(pem)


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
