"""Settings → Audit Log: events with the names of their actors and targets beside the ids,
filters by action, actor and date, and the same selection as CSV (SPEC sections 7, 10)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tessera import audit
from tessera.deployment import Tessera
from tessera.web.dashboard.pages import (
    Visitor,
    organization_of,
    page_context,
    render,
    require_scope,
    signed_in,
)
from tessera.web.deps import tessera_of

router = APIRouter(include_in_schema=False)
PAGE = "/settings/audit-log"
PAGE_SIZE = 50
CSV_MAX_ROWS = 10_000
FAMILIES = sorted({a.split(".", 1)[0] for a in audit.ACTIONS})


@dataclass(frozen=True)
class AuditFilter:
    """What the page's filter form asks for; a value that does not parse is left out."""

    action: str = ""
    actor: str = ""
    start: date | None = None
    end: date | None = None  # included

    @classmethod
    def of(cls, query: Mapping[str, str]) -> AuditFilter:
        action = query.get("action", "")
        known = action in audit.ACTIONS or action in FAMILIES
        return cls(
            action=action if known else "",
            actor=query.get("actor", "").strip()[:64],
            start=_day(query.get("from", "")),
            end=_day(query.get("to", "")),
        )

    def query(self) -> dict[str, Any]:
        """Keyword arguments of ``AuditLog.page`` for this selection."""
        return {
            "action": self.action or None,
            "actor_id": self.actor or None,
            "since": _midnight(self.start) if self.start else None,
            "before": _midnight(self.end + timedelta(days=1)) if self.end else None,
        }

    def params(self) -> dict[str, str]:
        """The selection as query parameters, for links that keep it."""
        found = {"action": self.action, "actor": self.actor}
        found |= {"from": self.start.isoformat() if self.start else ""}
        found |= {"to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in found.items() if v}


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class Names:
    """Names of the organization's people, keys and workspaces, by id."""

    def __init__(self, tessera: Tessera, organization_id: str) -> None:
        self._tessera = tessera
        self.people = {
            m.user.id: _person(m.user.name, m.user.email)
            for m in tessera.members.list(organization_id)
        }
        keys = tessera.api_keys.page(organization_id, limit=100, include_revoked=True).items
        self.keys = {k.id: k.name for k in keys}
        workspaces = tessera.workspaces.in_organization(organization_id)
        self.workspaces = {w.id: w.name for w in workspaces}

    def of(self, kind: str | None, identifier: str | None) -> str | None:
        if not identifier:
            return None
        if kind in ("user", "member") or identifier.startswith("usr_"):
            return self.people.get(identifier) or self._former(identifier)
        if kind == "api_key" or identifier.startswith("key_"):
            return self.keys.get(identifier)
        if kind == "workspace" or identifier.startswith("ws_"):
            return self.workspaces.get(identifier)
        return None

    def _former(self, user_id: str) -> str | None:
        user = self._tessera.accounts.user(user_id)
        name = _person(user.name, user.email) if user else None
        self.people[user_id] = name or ""
        return name


def _person(name: str | None, email: str) -> str:
    return f"{name} ({email})" if name else email


def _rows(events: tuple[audit.AuditEvent, ...], names: Names) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        row = audit.to_resource(event)
        row["actor_name"] = names.of(event.actor_kind, event.actor_id)
        row["target_name"] = names.of(event.target_kind, event.target_id)
        rows.append(row)
    return rows


@router.get(PAGE)
def audit_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    require_scope(who, "audit:read")
    tessera = tessera_of(request)
    organization_id = organization_of(who)
    chosen = AuditFilter.of(request.query_params)
    page = tessera.audit_log.page(
        organization_id,
        limit=PAGE_SIZE,
        cursor=request.query_params.get("cursor") or None,
        **chosen.query(),
    )
    names = Names(tessera, organization_id)
    return render(
        request,
        "audit.html",
        **page_context(who, "audit"),
        events=_rows(page.items, names),
        next_cursor=page.next_cursor,
        chosen=chosen,
        filtered=bool(chosen.params()),
        older=urlencode({**chosen.params(), "cursor": page.next_cursor or ""}),
        csv_link=PAGE + ".csv?" + urlencode(chosen.params()),
        actions=[*FAMILIES, *audit.ACTIONS],
        actors=[("People", names.people), ("API keys", names.keys)],
    )


@router.get(PAGE + ".csv")
def audit_csv(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    require_scope(who, "audit:read")
    tessera = tessera_of(request)
    organization_id = organization_of(who)
    chosen = AuditFilter.of(request.query_params)
    names = Names(tessera, organization_id)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in _rows(tuple(_every(tessera, organization_id, chosen)), names):
        writer.writerow([_cell(value) for value in _csv_row(row)])
    day = tessera.clock.now().date().isoformat()
    filename = f"audit-log-{day}.csv"
    return Response(
        text.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


COLUMNS = (
    "id",
    "created_at",
    "action",
    "actor_kind",
    "actor_id",
    "actor_name",
    "target_kind",
    "target_id",
    "target_name",
    "ip",
    "user_agent",
    "details",
)


def _every(
    tessera: Tessera, organization_id: str, chosen: AuditFilter
) -> Iterator[audit.AuditEvent]:
    cursor: str | None = None
    count = 0
    while count < CSV_MAX_ROWS:
        page = tessera.audit_log.page(organization_id, limit=100, cursor=cursor, **chosen.query())
        yield from page.items
        count += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return


def _csv_row(row: Mapping[str, Any]) -> list[Any]:
    target = row["target"] or {}
    return [
        row["id"],
        row["created_at"],
        row["action"],
        row["actor"]["kind"],
        row["actor"]["id"],
        row["actor_name"],
        target.get("kind"),
        target.get("id"),
        row["target_name"],
        row["ip"],
        row["user_agent"],
        json.dumps(row["details"], ensure_ascii=False, sort_keys=True),
    ]


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
