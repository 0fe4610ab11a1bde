"""Lists ordered newest first by ``(created_at, id)``, walked with opaque cursors."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tessera.clock import as_utc
from tessera.errors import InvalidRequest

MAX_LIMIT = 100
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the cursor of the next page (``None`` on the last)."""

    items: tuple[T, ...]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{as_utc(created_at).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return as_utc(datetime.fromisoformat(stamp)), row_id
    except ValueError:
        raise InvalidRequest("The cursor is not valid.") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    return limit
