"""The SQL half of cursor pagination (``tessera/pagination.py``): one page, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from tessera.pagination import check_limit, decode_cursor, encode_cursor


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
