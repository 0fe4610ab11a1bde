"""Lists ordered newest first by ``(created_at, id)``, walked with opaque cursors."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from tessera.clock import as_utc
from tessera.errors import InvalidRequest

MAX_LIMIT = 100


class Listed(Protocol):
    id: Any
    created_at: Any


Row = TypeVar("Row", bound=Listed)


def newest_first(
    session: Session,
    query: Select[Row],
    columns: tuple[InstrumentedAttribute[datetime], InstrumentedAttribute[str]],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """One page of ``query``, and the cursor of the next page (``None`` on the last)."""
    created_at, row_id = columns
    limit = check_limit(limit)
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        query = query.where(
            or_(created_at < after_at, and_(created_at == after_at, row_id < after_id))
        )
    query = query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1].created_at, page[-1].id) if more else None


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
