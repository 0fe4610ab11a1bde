"""Opaque identifiers and secrets: a prefix, then URL-safe random characters."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PROCESS = secrets.token_urlsafe(6)
_REQUESTS = itertools.count(1)


def new_id(prefix: str) -> str:
    """``org_``, ``usr_``… followed by 20 base62 characters (119 bits)."""
    return f"{prefix}_{random_base62(20)}"


def random_base62(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def next_request_id() -> str:
    """Unique across processes (a random prefix per process) and cheap: ids are not secrets."""
    return f"req_{_PROCESS}{next(_REQUESTS):x}"


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A bearer secret such as ``rt_…`` or ``svc_…``."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a high-entropy secret is stored and looked up.

    Secrets here carry at least 119 random bits, so a fast unsalted hash is safe and lets the
    database find the row by an index; passwords, which are guessable, use Argon2id instead.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
