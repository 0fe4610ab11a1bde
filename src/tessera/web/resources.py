"""The resources the API answers with (SPEC sections 2, 3, 5 and 7), as response models.

The routes build their answers as dictionaries (``key_resource``, ``user_resource``…); these
models describe them in the OpenAPI document and shape what goes out. They refuse unknown
fields, so an answer that grows a field its model lacks fails loudly in the tests instead of
drifting away from its description.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tessera.authz.decision import VerificationCode

Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-21T09:30:00Z"])
]
Day = Annotated[str, Field(json_schema_extra={"format": "date"}, examples=["2026-11-21"])]


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyRateLimit(Resource):
    requests: int
    per_seconds: int


class ApiKey(Resource):
    id: str = Field(examples=["key_2Zb8cQ0pXJ4wVh6NsA1r"])
    object: Literal["api_key"]
    name: str
    key_prefix: str = Field(examples=["tsr_live_Ab12Cd"])
    environment: Literal["live", "test"]
    scopes: list[str] | None = Field(description="null: the creator's permissions, live.")
    inherits_creator_permissions: bool
    workspace_ids: list[str] | None = Field(description="null: every workspace.")
    allowed_ips: list[str] | None = Field(description="null: any address.")
    rate_limit: KeyRateLimit | None = Field(description="null: the deployment's default.")
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None
    last_used_at: Timestamp | None = Field(description="May lag real use by up to 60 seconds.")
    revoked_at: Timestamp | None
    active: bool = Field(description="false once revoked or expired.")


class NewApiKey(ApiKey):
    key: str = Field(description="The raw key: shown in this answer only, never again.")


class ApiKeyList(Resource):
    data: list[ApiKey]
    next_cursor: str | None


class UsageDay(Resource):
    date: Day
    requests: int = Field(description="Every request made with the key that day, refused or not.")
    rejected: int = Field(description="The part of those requests that was refused.")


class KeyUsage(Resource):
    data: list[UsageDay] = Field(description="One entry per day, oldest first, ending today.")


class User(Resource):
    id: str = Field(examples=["usr_7Qm3Zr9vT1kLw0Xa2Bcd"])
    object: Literal["user"]
    email: str
    email_verified: bool = Field(
        description="Whether the person proved control of the email (a link or a provider)."
    )
    name: str
    created_at: Timestamp


class Organization(Resource):
    id: str = Field(examples=["org_5Hn2Yq8uS0jKv9Wz1Abc"])
    object: Literal["organization"]
    name: str
    created_at: Timestamp


class SignedUp(Resource):
    user: User
    organization: Organization


class TokenPair(Resource):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str


class Membership(Resource):
    organization: Organization
    role: str = Field(examples=["owner"])


class Me(Resource):
    user: User
    memberships: list[Membership]


class Workspace(Resource):
    id: str = Field(examples=["ws_3Fk9Lm2Np7Qr1St4Uv6W"])
    object: Literal["workspace"]
    name: str
    organization_id: str
    created_at: Timestamp


class DeletedWorkspace(Workspace):
    deleted: bool


class WorkspaceList(Resource):
    data: list[Workspace]
    next_cursor: str | None


class Member(Resource):
    object: Literal["member"]
    user: User
    role: str = Field(examples=["member"])
    created_at: Timestamp


class RemovedMember(Member):
    removed: bool


class MemberList(Resource):
    data: list[Member]
    next_cursor: str | None


class BrowserSession(Resource):
    id: str = Field(examples=["ses_8Tg1Hj4Kl7Mn0Pq3Rs6V"])
    object: Literal["session"]
    created_at: Timestamp
    last_seen_at: Timestamp
    expires_at: Timestamp
    ip: str | None
    user_agent: str | None
    current: bool = Field(description="true for the session this request came with.")


class SessionList(Resource):
    data: list[BrowserSession]
    next_cursor: str | None


class Actor(Resource):
    kind: str = Field(
        examples=["user"], description="user, api_key, service, oauth_client or system."
    )
    id: str | None


class Target(Resource):
    kind: str = Field(examples=["api_key"])
    id: str


class AuditEvent(Resource):
    id: str = Field(examples=["evt_1Aa2Bb3Cc4Dd5Ee6Ff7G"])
    object: Literal["audit_event"]
    action: str = Field(examples=["api_key.created"])
    actor: Actor
    target: Target | None
    organization_id: str | None
    ip: str | None
    user_agent: str | None
    created_at: Timestamp
    details: dict[str, Any]


class AuditEventList(Resource):
    data: list[AuditEvent]
    next_cursor: str | None


class VerdictRateLimit(Resource):
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int | None = Field(default=None, description="Only when over the limit.")


class Verdict(Resource):
    """The verification API's answer; the key's fields only when the key exists."""

    valid: bool = Field(description='true only when code is "valid".')
    code: VerificationCode
    key_id: str | None = None
    organization_id: str | None = None
    environment: Literal["live", "test"] | None = None
    scopes: list[str] | None = None
    workspace_ids: list[str] | None = None
    workspace_id: str | None = None
    expires_at: Timestamp | None = None
    missing_scopes: list[str] | None = Field(
        default=None, description='On "insufficient_scope": the scopes the key lacks.'
    )
    rate_limit: VerdictRateLimit | None = None


class Health(Resource):
    status: Literal["ok"]


class Readiness(Resource):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(examples=[{"database": True, "redis": True}])


class Jwks(Resource):
    keys: list[dict[str, Any]] = Field(description="Public JWKs (RFC 7517), newest first.")


class OAuthClient(Resource):
    id: str = Field(examples=["cli_2Zb8cQ0pXJ4wVh6NsA1r"])
    object: Literal["oauth_client"]
    client_id: str = Field(description="Equal to id.")
    name: str
    type: Literal["confidential", "public"]
    redirect_uris: list[str]
    scopes: list[str]
    created_at: Timestamp
    created_by: str | None


class NewOAuthClient(OAuthClient):
    client_secret: str | None = Field(
        default=None, description="Confidential clients only: shown in this answer only."
    )


class OAuthClientList(Resource):
    data: list[OAuthClient]
    next_cursor: str | None


class OAuthGrant(Resource):
    id: str = Field(examples=["grt_2Zb8cQ0pXJ4wVh6NsA1r"])
    object: Literal["oauth_grant"]
    client: dict[str, Any] = Field(description="The application: id, name.")
    organization: dict[str, Any] = Field(description="The organization: id, name.")
    scopes: list[str]
    created_at: Timestamp
    last_used_at: Timestamp | None


class OAuthGrantList(Resource):
    data: list[OAuthGrant]
    next_cursor: str | None
