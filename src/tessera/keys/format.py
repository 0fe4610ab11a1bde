"""The API key format of SPEC section 2.

``<prefix>_<environment>_<body>`` where the body is 30 base62 characters from a CSPRNG and six
base62 characters encoding the CRC32 of everything before them, so a scanner can tell a real
key from a random string offline.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
ENVIRONMENTS = ("live", "test")
KEY_PATTERN = re.compile(r"^([a-z0-9]{2,10})_(live|test)_([0-9A-Za-z]{36})$")


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    environment: str
    body: str

    @property
    def display_prefix(self) -> str:
        """What lists show: ``<prefix>_<environment>_`` and six characters of the body."""
        return f"{self.prefix}_{self.environment}_{self.body[:6]}"


def encode_base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


def checksum(text: str) -> str:
    return encode_base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


def generate(prefix: str, environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}")
    head = f"{prefix}_{environment}_" + "".join(
        secrets.choice(BASE62) for _ in range(RANDOM_LENGTH)
    )
    return head + checksum(head)


def parse(candidate: str, prefix: str | None = None) -> ParsedKey | None:
    """The parts of a well-formed key (of ``prefix`` when given), or ``None``."""
    match = KEY_PATTERN.match(candidate)
    if match is None:
        return None
    key_prefix, environment, body = match.groups()
    if prefix is not None and key_prefix != prefix:
        return None
    if checksum(candidate[:-CHECKSUM_LENGTH]) != body[RANDOM_LENGTH:]:
        return None
    return ParsedKey(key_prefix, environment, body)


def looks_like_key(candidate: str, prefix: str) -> bool:
    """Whether a bearer credential is meant as an API key (before checking the checksum)."""
    return candidate.startswith((f"{prefix}_live_", f"{prefix}_test_"))
