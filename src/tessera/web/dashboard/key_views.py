"""What the key pages show of a key beyond its resource: its status in words (a rolled key in its
grace period included), the filters of the list, and the scope picker's group headings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.keys.records import ApiKey, key_resource

STATUSES = ("active", "grace", "expired", "revoked")
STATUS_LABELS = {
    "active": "Active",
    "grace": "Grace period",
    "expired": "Expired",
    "revoked": "Revoked",
}
ENVIRONMENTS = ("live", "test")
# Headings for the built-in resources; a catalog's own resources are written out from their names.
HEADINGS = {
    "api_keys": "API keys",
    "oauth_clients": "OAuth apps",
    "audit": "Audit log",
}


def scope_heading(resource: str) -> str:
    """``api_keys`` → "API keys", ``contacts`` → "Contacts", ``mail_lists`` → "Mail lists"."""
    if resource in HEADINGS:
        return HEADINGS[resource]
    words = resource.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def key_views(rows: Iterable[ApiKey], now: datetime) -> list[dict[str, Any]]:
    """Each key's resource with ``status``, and ``replaced_by`` for a key rolled into another."""
    rows = list(rows)
    successors = {r.rolled_from: r.id for r in rows if r.rolled_from}
    views = []
    for row in rows:
        view = key_resource(row, now)
        view["replaced_by"] = successors.get(row.id)
        view["status"] = _status(view)
        view["status_label"] = STATUS_LABELS[view["status"]]
        views.append(view)
    return views


def _status(view: Mapping[str, Any]) -> str:
    if view["revoked_at"]:
        return "revoked"
    if not view["active"]:
        return "expired"
    return "grace" if view["replaced_by"] and view["expires_at"] else "active"


@dataclass(frozen=True)
class KeyFilter:
    """The key list's filters: a name or prefix, an environment, a status (empty: any)."""

    text: str = ""
    environment: str = ""
    status: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> KeyFilter:
        environment = query.get("environment", "")
        status = query.get("status", "")
        return cls(
            text=query.get("q", "").strip()[:100],
            environment=environment if environment in ENVIRONMENTS else "",
            status=status if status in STATUSES else "",
        )

    @property
    def active(self) -> bool:
        return bool(self.text or self.environment or self.status)

    def keeps(self, view: Mapping[str, Any]) -> bool:
        text = self.text.lower()
        if text and text not in view["name"].lower() and text not in view["key_prefix"].lower():
            return False
        if self.environment and view["environment"] != self.environment:
            return False
        return not self.status or view["status"] == self.status
