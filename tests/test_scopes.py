"""Scope patterns and role grants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tessera.config import load_config
from tessera.scopes import ScopeCatalog, pattern_matches

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)


@given(resource=NAMES, action=NAMES)
def test_wildcards_match_as_documented(resource: str, action: str) -> None:
    """`*` matches all, `r:*` every action of r, `*:a` action a of every resource."""
    scope = f"{resource}:{action}"
    assert pattern_matches("*", scope)
    assert pattern_matches(f"{resource}:*", scope)
    assert pattern_matches(f"*:{action}", scope)
    assert pattern_matches(scope, scope)
    assert not pattern_matches(f"{resource}x:*", scope)
    assert not pattern_matches(f"{resource}:{action}x", scope)


def test_member_default_and_redefinition() -> None:
    """member: non-admin catalog scopes plus three built-ins, unless the config redefines it."""
    scopes = [
        {"name": "contacts:read"},
        {"name": "admin:marketing", "admin_only": True},
    ]
    default = ScopeCatalog(load_config(environ={}, overrides={"scope": scopes}))
    assert default.granted_by_role("member") == {
        "contacts:read",
        "api_keys:read",
        "api_keys:write",
        "workspaces:read",
    }
    redefined = ScopeCatalog(
        load_config(environ={}, overrides={"scope": scopes, "roles": {"member": ["contacts:*"]}})
    )
    assert redefined.granted_by_role("member") == {"contacts:read"}


def test_admin_only_scopes_go_to_owners_and_admins_only() -> None:
    """Even a role with `*` does not hold admin-only scopes unless it is owner or admin."""
    catalog = ScopeCatalog(
        load_config(
            environ={},
            overrides={
                "scope": [{"name": "admin:marketing", "admin_only": True}],
                "roles": {"superuser": ["*"]},
            },
        )
    )
    assert "admin:marketing" in catalog.granted_by_role("owner")
    assert "admin:marketing" in catalog.granted_by_role("admin")
    assert "admin:marketing" not in catalog.granted_by_role("superuser")
    assert "audit:read" in catalog.granted_by_role("superuser")


def test_unknown_role_grants_nothing() -> None:
    """Deny by default."""
    assert ScopeCatalog(load_config(environ={})).granted_by_role("ghost") == frozenset()
