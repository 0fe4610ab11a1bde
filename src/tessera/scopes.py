"""The scope catalog and roles (SPEC section 1).

A scope is ``resource:action``. A role is a set of patterns where ``*`` matches every scope,
``contacts:*`` every action on ``contacts`` and ``*:read`` the ``read`` action of every resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tessera.config import Config

BUILTIN_SCOPES: dict[str, str] = {
    "api_keys:read": "List and read API keys of the organization",
    "api_keys:write": "Create, update, roll and revoke API keys",
    "workspaces:read": "List workspaces",
    "workspaces:write": "Create, rename and delete workspaces",
    "members:read": "List members",
    "members:write": "Invite members, change roles, remove members",
    "oauth_clients:read": "List OAuth clients",
    "oauth_clients:write": "Register and manage OAuth clients",
    "audit:read": "Read the audit log",
}

# Built-in scopes a plain member holds by default.
MEMBER_BUILTINS = ("api_keys:read", "api_keys:write", "workspaces:read")
ADMIN_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    admin_only: bool

    @property
    def resource(self) -> str:
        return self.name.split(":", 1)[0]


def pattern_matches(pattern: str, scope: str) -> bool:
    if pattern in ("*", scope):
        return True
    p_resource, _, p_action = pattern.partition(":")
    resource, _, action = scope.partition(":")
    return p_resource in ("*", resource) and p_action in ("*", action)


class ScopeCatalog:
    """Every scope the deployment knows, and what each role grants."""

    def __init__(self, config: Config) -> None:
        scopes = {name: Scope(name, text, False) for name, text in BUILTIN_SCOPES.items()}
        for item in config.scope:
            scopes[item.name] = Scope(item.name, item.description, item.admin_only)
        self.scopes = scopes
        member_default = [s.name for s in config.scope if not s.admin_only] + list(MEMBER_BUILTINS)
        self.roles: dict[str, list[str]] = {
            "owner": ["*"],
            "admin": ["*"],
            "member": member_default,
            **{name: list(patterns) for name, patterns in config.roles.items()},
        }
        # Owners and admins keep every scope, whatever the config says.
        self.roles["owner"] = ["*"]
        self.roles["admin"] = ["*"]

    def __contains__(self, name: object) -> bool:
        return name in self.scopes

    def unknown(self, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if n not in self.scopes})

    def admin_only(self, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if n in self.scopes and self.scopes[n].admin_only})

    def granted_by_role(self, role: str) -> frozenset[str]:
        """The concrete scopes a role grants: patterns expanded over the catalog."""
        patterns = self.roles.get(role, [])
        return frozenset(
            name
            for name, scope in self.scopes.items()
            if any(pattern_matches(p, name) for p in patterns)
            and (not scope.admin_only or role in ADMIN_ROLES)
        )

    def grouped(self) -> dict[str, list[Scope]]:
        """Scopes by resource, for forms that list them."""
        groups: dict[str, list[Scope]] = {}
        for scope in sorted(self.scopes.values(), key=lambda s: s.name):
            groups.setdefault(scope.resource, []).append(scope)
        return groups
