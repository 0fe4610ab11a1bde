"""Values carried across one redirect (post/redirect/get), in cookies read once.

A form post changes something, then redirects; the page it redirects to says what happened (a
notice) and, after creating or rolling a key, shows the new secret. Both travel in a cookie
encrypted with the deployment's secret and bound to the session, cleared by the page that reads
it: reloading that page shows neither again and repeats nothing. No server-side state is needed,
so any instance can serve the page after the redirect.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request

from tessera.deployment import Tessera

NOTICE = "tsr_notice"
SHOWN_ONCE = "tsr_shown_once"
LIFETIME_SECONDS = 300
# The secret's cookie goes only to the pages of API keys.
PATHS = {NOTICE: "/", SHOWN_ONCE: "/settings/api-keys"}


def carry(tessera: Tessera, session_id: str, name: str, value: str) -> str:
    """The ``Set-Cookie`` header that carries ``value`` to the next page of this session."""
    payload = json.dumps({"session": session_id, "value": value}).encode()
    token = _fernet(tessera).encrypt_at_time(payload, int(tessera.clock.timestamp()))
    return _cookie(tessera, name, token.decode(), LIFETIME_SECONDS)


def take(request: Request, tessera: Tessera, session_id: str, name: str) -> str | None:
    """The value carried in cookie ``name`` for this session, if any and still fresh."""
    token = request.cookies.get(name)
    if not token:
        return None
    try:
        payload = _fernet(tessera).decrypt_at_time(
            token.encode(), LIFETIME_SECONDS, int(tessera.clock.timestamp())
        )
        found = json.loads(payload)
    except (InvalidToken, ValueError):
        return None
    if not isinstance(found, dict) or found.get("session") != session_id:
        return None
    value = found.get("value")
    return value if isinstance(value, str) else None


def cleared(tessera: Tessera, name: str) -> str:
    """The ``Set-Cookie`` header that forgets cookie ``name``."""
    return _cookie(tessera, name, "", 0)


def _cookie(tessera: Tessera, name: str, value: str, max_age: int) -> str:
    parts = [f"{name}={value}", "HttpOnly", "SameSite=Lax", f"Path={PATHS[name]}"]
    parts.append(f"Max-Age={max_age}")
    if not tessera.config.is_loopback_http:
        parts.append("Secure")
    return "; ".join(parts)


def _fernet(tessera: Tessera) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tessera dashboard carry")
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(tessera.secret_key.encode())))
