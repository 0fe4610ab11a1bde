"""Dashboard: Members (invite by email, change a role, remove, leave) — SPEC section 10.

Every change goes through the same services as the API (``Members``, ``Invitations``), so the
same rules hold here: the role an inviter gives is at most their own, only owners touch
owners, and the last owner can be neither removed nor demoted nor leave.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from tessera.edge.problems import status_of
from tessera.errors import NotFound, TesseraError
from tessera.scopes import ADMIN_ROLES
from tessera.web.dashboard import forms
from tessera.web.dashboard.pages import (
    Visitor,
    check_form,
    organization_of,
    page_context,
    posted_form,
    redirect,
    render,
    require_scope,
    signed_in,
)
from tessera.web.deps import client_info, tessera_of
from tessera.web.routes.invitations import InvitationBody

router = APIRouter(include_in_schema=False)
PAGE = "/settings/members"


@router.get("/settings/members")
def members_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return _members(request, who)


def _members(request: Request, who: Visitor, *, status: int = 200, **context: Any) -> Response:
    tessera = tessera_of(request)
    organization_id = organization_of(who)
    members = [
        {"user": m.user, "role": m.role, "created_at": m.as_resource()["created_at"]}
        for m in tessera.members.list(organization_id)
    ]
    now = tessera.clock.now()
    can_manage = who.principal.role in ADMIN_ROLES
    invitations = tessera.invitations.list(organization_id) if can_manage else []
    return render(
        request,
        "members.html",
        status=status,
        **page_context(who, "members"),
        members=members,
        invitations=[i.as_resource(now) for i in invitations],
        roles=sorted(tessera.catalog.roles),
        invite_roles=_roles_to_give(request, who),
        can_manage=can_manage,
        sends_email=tessera.invitations.sends_email,
        form=context.pop("form", {}),
        **context,
    )


def _roles_to_give(request: Request, who: Visitor) -> list[str]:
    """The roles this person may invite with: none above their own."""
    catalog = tessera_of(request).catalog
    return [
        role
        for role in sorted(catalog.roles)
        if (role != "owner" or who.principal.role == "owner")
        and catalog.granted_by_role(role) <= who.principal.scopes
    ]


@router.post("/settings/members/invite")
async def invite(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    form = await request.form()
    fields = {k: str(form.get(k, "")) for k in ("email", "role")}
    tessera = tessera_of(request)
    try:
        check_form(request, who, form)
        require_scope(who, "members:write")
        body = forms.read(InvitationBody, form)
        # Off the event loop: the invitation may be emailed, which waits on the mail server.
        new = await run_in_threadpool(
            tessera.invitations.create,
            who.principal,
            email=body.email,
            role=body.role,
            client=client_info(request),
        )
    except TesseraError as refused:
        errors = forms.field_errors(refused)
        return _members(
            request,
            who,
            status=status_of(refused),
            error=forms.summary(refused, errors, fields),
            errors=errors,
            form=fields,
        )
    if new.invitation.emailed:
        return _members(request, who, message=f"Invitation emailed to {new.invitation.email}.")
    return _members(request, who, invited=new.invitation, invite_url=new.url)


@router.post("/settings/members/invitations/{invitation_id}/revoke")
def revoke_invitation(
    invitation_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    require_scope(who, "members:write")
    tessera_of(request).invitations.revoke(who.principal, invitation_id, client_info(request))
    return redirect(request, who, PAGE, "The invitation was revoked.")


@router.post("/settings/members/{user_id}/role")
def change_role(
    user_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    try:
        changed = tessera_of(request).members.change_role(
            who.principal,
            user_id=user_id,
            role=str(form.get("role", "")),
            client=client_info(request),
        )
    except TesseraError as refused:
        return _members(request, who, status=status_of(refused), error=refused.detail)
    notice = f"{changed.user.name or changed.user.email} is now {changed.role}."
    return redirect(request, who, PAGE, notice)


@router.get("/settings/members/leave")
def leave_page(request: Request, who: Visitor = Depends(signed_in)) -> Response:
    return render(
        request, "member_remove.html", **page_context(who, "members"), member=None, leaving=True
    )


@router.post("/settings/members/leave")
def leave(
    request: Request, who: Visitor = Depends(signed_in), form: FormData = Depends(posted_form)
) -> Response:
    check_form(request, who, form)
    try:
        tessera_of(request).members.remove(
            who.principal, user_id=who.user.id, client=client_info(request)
        )
    except TesseraError as refused:
        return _members(request, who, status=status_of(refused), error=refused.detail)
    return RedirectResponse("/", status_code=303)


@router.get("/settings/members/{user_id}/remove")
def remove_page(user_id: str, request: Request, who: Visitor = Depends(signed_in)) -> Response:
    member = tessera_of(request).accounts.role(user_id, organization_of(who))
    found = tessera_of(request).accounts.user(user_id) if member else None
    if found is None:
        raise NotFound(f"No member {user_id} in this organization.")
    return render(
        request,
        "member_remove.html",
        **page_context(who, "members"),
        member=found,
        leaving=False,
    )


@router.post("/settings/members/{user_id}/remove")
def remove(
    user_id: str,
    request: Request,
    who: Visitor = Depends(signed_in),
    form: FormData = Depends(posted_form),
) -> Response:
    check_form(request, who, form)
    try:
        tessera_of(request).members.remove(
            who.principal, user_id=user_id, client=client_info(request)
        )
    except TesseraError as refused:
        return _members(request, who, status=status_of(refused), error=refused.detail)
    return redirect(request, who, PAGE, "The member was removed.")
