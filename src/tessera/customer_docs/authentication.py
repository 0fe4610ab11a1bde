"""The deployment's own customer-facing "Authentication" page (SPEC section 10).

Built from the live configuration and scope catalog, so that its key prefix, address, scopes,
token lifetimes and rate limits are the deployment's real ones. Each section is a function of
:class:`Facts` in :data:`SECTIONS`; a new capability (an OAuth 2.0 authorization server, for
one) adds its section there once it exists, and a section whose subject is switched off in the
configuration returns ``None``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from tessera.config import Config
from tessera.customer_docs.calls import as_json, curl_post, key_request, new_key_body, token_request
from tessera.customer_docs.facts import Facts
from tessera.customer_docs.markdown import Page, Section, block, code, table, text
from tessera.edge.problems import ERRORS
from tessera.errors import (
    Conflict,
    EmailTaken,
    Forbidden,
    ImmutableField,
    InvalidExpiry,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TesseraError,
    Unauthorized,
    UnknownScope,
    UnknownWorkspace,
    ValidationFailed,
    WorkspaceRequired,
)
from tessera.keys.format import CHECKSUM_LENGTH, RANDOM_LENGTH
from tessera.ratelimit.gcra import decide
from tessera.ratelimit.headers import rate_limit_headers
from tessera.scopes import Scope, ScopeCatalog

BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH


def build_page(config: Config, catalog: ScopeCatalog) -> Page:
    facts = Facts.of(config, catalog)
    sections = (make(facts) for make in SECTIONS)
    return Page(
        title="Authentication",
        intro=(
            f"How to authenticate with the API at {code(facts.base)}: API keys for servers "
            "and scripts, user access tokens for apps that act for a signed-in person, the "
            "limits every credential has, and what comes back when a request is refused."
        ),
        sections=tuple(s for s in sections if s is not None),
    )


def getting_a_key(facts: Facts) -> Section:
    account = (
        f", or create an account at <{facts.url('/signup')}> (you become the owner of a new "
        "organization)"
        if facts.signup_open
        else " (accounts are by invitation: ask an owner or admin of your organization)"
    )
    body = f"""\
Keys are made in the dashboard at <{facts.url("/")}>:

1. Sign in at <{facts.url("/login")}>{account}.
2. Open **Settings → API Keys** and press **Create API Key**.
3. Name the key, tick the scopes it needs (see [Scopes](#scopes)), choose the \
{text(facts.label)}s it may act in and when it expires, and press **Create**.
4. Copy the key. It is shown once: only a digest of it is stored, so nobody can show it again. \
A lost key is revoked and replaced, never recovered.

A key holding `api_keys:write` can also make keys over the API, never with more than it holds \
itself; the answer is the only place the new key appears, in `"key"`:

{block("sh", curl_post(facts, "/v1/api-keys", new_key_body(facts)))}
"""
    return Section("getting-a-key", "Getting an API key", body)


def key_format(facts: Facts) -> Section:
    live, test = f"{facts.prefix}_live_", f"{facts.prefix}_test_"
    rows = [
        (code(live), "live", "Production traffic."),
        (code(test), "test", "Development and CI; a test key can make only test keys."),
    ]
    length = len(live) + BODY_LENGTH
    pattern = rf"\b{facts.prefix}_(live|test)_[0-9A-Za-z]{{{BODY_LENGTH}}}\b"
    body = f"""\
Every key starts with a prefix that says whose it is and what it is for:

{table(("Prefix", "Environment", "Use"), rows)}

After the prefix come {BODY_LENGTH} letters and digits: {RANDOM_LENGTH} random ones and a \
{CHECKSUM_LENGTH}-character checksum, {length} characters in all. Lists show only the start of a \
key, such as {code(live + "Ab12Cd")}: safe to display, and enough to tell support which key \
you mean.

The checksum lets a secret scanner recognise a real key offline. To search code, logs and \
tickets for leaked keys, look for:

{block("", pattern)}
"""
    return Section("key-format", "Key format", body)


def authenticating(facts: Facts) -> Section:
    variable = facts.key_variable
    key = f"{facts.prefix}_live_…"
    headers = f"Authorization: Bearer {key}\nX-API-Key: {key}"
    body = f"""\
Send the key with every request, in either of these headers:

{block("http", headers)}

Keep the key out of your code: the examples read it from the {code(variable)} environment \
variable. Each lists the {text(facts.label)}s the key can reach (scope `workspaces:read`).

{key_request(facts)}
"""
    return Section("authenticating", "Authenticating requests", body)


def scopes(facts: Facts) -> Section:
    parts = [
        "A scope is `resource:action`. A key holds the scopes ticked when it was made; a key "
        "made without any has whatever its creator's role grants at each request, and stops "
        "working when its creator leaves the organization. A request needing a scope the key "
        "lacks is answered `403`, naming the scope in `required_scopes` and in "
        '`WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`.',
        "Only an owner or admin of the organization can grant a scope marked **admin only**.",
    ]
    if facts.product_scopes:
        parts += ["### Scopes of the API", _scope_table(facts.product_scopes)]
    parts += ["### Account scopes", _scope_table(facts.account_scopes)]
    return Section("scopes", "Scopes", "\n\n".join(parts))


def workspaces(facts: Facts) -> Section:
    label = text(facts.label)
    body = f"""\
Your organization's data lives in {label}s. A request that acts inside one names it with the \
`X-Workspace-ID` header:

{block("http", "X-Workspace-ID: ws_…")}

- A key limited to exactly one {label} may leave the header out: that {label} is used.
- A key allowed several {label}s must send it where the request acts inside a {label}; \
without it the answer is `400` with `code: workspace_required`.
- A {label} outside the key's restriction is `403` with `code: forbidden`.

{code("GET " + facts.url("/v1/workspaces"))} lists the {label}s and their ids (scope \
`workspaces:read`), as in the examples above.
"""
    return Section("workspaces", f"{facts.label.capitalize()}s", body)


def user_tokens(facts: Facts) -> Section:
    sign_in = {"email": "ada@example.com", "password": "…"}
    refresh = {"grant_type": "refresh_token", "refresh_token": "rt_…"}
    answer = {
        "access_token": "eyJ…",
        "token_type": "Bearer",
        "expires_in": facts.access_ttl_seconds,
        "refresh_token": "rt_…",
    }
    body = f"""\
Apps that act for a signed-in person, rather than a server holding a key, exchange the \
person's email and password for an access token and a refresh token:

{token_request(facts, sign_in)}

The answer:

{block("json", as_json(answer))}

Send the access token as `Authorization: Bearer <access_token>`. It is a JWT (RFC 9068, header \
`typ: at+jwt`) signed with {facts.signing_algorithm}; its `iss` and `aud` are \
{code(facts.base)}, and the public keys that verify it are at \
<{facts.url("/.well-known/jwks.json")}>. It expires after \
{_duration(facts.access_ttl_seconds)} (`expires_in`, in seconds).

Before then, trade the refresh token for a new pair:

{token_request(facts, refresh)}

A refresh token works once: the answer carries a new one and the old one is spent. Presenting \
a spent refresh token again ends every token of that sign-in, since someone may have copied \
it; the person signs in again. A refresh token lasts at most {facts.refresh_ttl_days} days. \
To sign out, {code("POST " + facts.url("/v1/auth/logout"))} with \
`{{"refresh_token": "rt_…"}}`: the tokens of that sign-in stop working at once.
"""
    return Section("user-tokens", "User tokens and refresh", body)


def oauth_apps(facts: Facts) -> Section:
    endpoints = [
        ("Discovery", "/.well-known/openid-configuration"),
        ("Authorization URL", "/oauth2/authorize"),
        ("Token URL", "/oauth2/token"),
        ("Revocation (RFC 7009)", "/oauth2/revoke"),
        ("Introspection (RFC 7662)", "/oauth2/introspect"),
        ("Userinfo", "/oauth2/userinfo"),
        ("Public keys", "/.well-known/jwks.json"),
    ]
    rows = [(name, code(facts.url(path))) for name, path in endpoints]
    body = f"""\
This API is also an OAuth 2.0 and OpenID Connect authorization server, for applications that \
act on behalf of your users. Register the application under **Settings → OAuth Apps** to get \
its client id (and, for a server-side app, its secret, shown once), then use the \
authorization code flow with PKCE (`code_challenge_method=S256`; required for every app):

{table(("", "URL"), rows)}

Scopes: `openid`, `profile`, `email`, `offline_access` (a refresh token), and the scopes \
above. The person signs in, sees what the app asks for and allows it; the app is sent back to \
its registered redirect URI with `code`, `state` and `iss`, and trades the code (valid 60 \
seconds, once) at the token URL with the `code_verifier`. The access token is passed as \
`Authorization: Bearer <access_token>` like a user token, and can do no more than the scopes \
the person granted. People see and revoke the apps they allowed under **Settings → \
Authorized apps**; a revoked app's tokens stop working at once.
"""
    return Section("oauth", "OAuth apps", body)


def rate_limits(facts: Facts) -> Section:
    quota = facts.quota
    first, _ = decide(quota, None, 0.0)
    _, full = decide(quota, None, 0.0, cost=quota.requests)
    refused, _ = decide(quota, full, 0.0)
    headers = "\n".join(f"{name}: {value}" for name, value in rate_limit_headers(first))
    retry = dict(rate_limit_headers(refused))["Retry-After"]
    refusal = f"HTTP/1.1 429 Too Many Requests\nRetry-After: {retry}"
    body = f"""\
Every authenticated answer says where the credential stands. After the first request of a \
fresh quota of {quota.requests} requests per {_duration(quota.per_seconds, one="")}:

{block("http", headers)}

`X-RateLimit-Reset` is the number of seconds until the quota is full again. \
`RateLimit-Policy` and `RateLimit` carry the same figures in the IETF format \
(draft-ietf-httpapi-ratelimit-headers). The quota belongs to the credential: each key and each \
signed-in person has its own, and a key may have been given a limit of its own when it was made.

Past the limit the answer is `429` with `code: rate_limited` and how many seconds to wait:

{block("http", refusal)}

Wait that long before retrying; refused requests do not count against the quota. Repeated \
failed authentications from one address are slowed down the same way.
"""
    return Section("rate-limits", "Rate limits", body)


def errors(facts: Facts) -> Section:
    scope = facts.example_scopes[-1]
    example = (
        '{"type": "about:blank", "title": "Forbidden", "status": 403, "code": "forbidden",\n'
        f' "detail": "This credential lacks the scope {scope}.", "request_id": "req_…",\n'
        f' "required_scopes": ["{scope}"]}}'
    )
    label = text(facts.label)
    rows = [
        (str(ERRORS[kind.code].status), code(kind.code), when.format(label=label))
        for kind, when in ERROR_ROWS
    ]
    rows.insert(-1, ("500", "`internal_error`", "Never expected; quote the `request_id`."))
    body = f"""\
Every error is `application/problem+json` and has the same shape:

{block("json", example)}

Programs should act on `code`, which is stable; `detail` is for people. Quote `request_id` \
when you contact support. A `401` also carries `WWW-Authenticate: Bearer realm="tessera"` \
(with `error="invalid_token"` when a credential was sent).

{table(("Status", "Code", "When"), rows)}
"""
    return Section("errors", "Errors", body)


def revocation(facts: Facts) -> Section:
    auth = f'-H "Authorization: Bearer ${facts.key_variable}"'
    expiry = (
        f" On this API every key expires, at most {facts.max_key_lifetime_days} days after it "
        "is made."
        if facts.max_key_lifetime_days
        else ""
    )
    roll = curl_post(facts, "/v1/api-keys/key_…/roll", {"expires_old_in_seconds": 3600})
    body = f"""\
Revoking a key is immediate and final: the next request with it is refused with `401`. In the \
dashboard, open **Settings → API Keys**, find the key by its name or prefix, press **Revoke** \
and confirm. Over the API (scope `api_keys:write`):

{block("sh", f"curl -X DELETE {shlex.quote(facts.url('/v1/api-keys/key_…'))} {auth}")}

To replace a key without downtime, **roll** it: you get a new key with the same settings and \
choose how long the old one keeps working (up to 7 days) while you deploy the new one:

{block("sh", roll)}

A key can also be given an expiry date, after which it is refused like a revoked one.{expiry} \
Ending a sign-in (`POST /v1/auth/logout`, or **Sessions → Sign out everywhere** in the \
dashboard) ends its user tokens at once.
"""
    return Section("revocation", "Revoking and rolling keys", body)


def security(facts: Facts) -> Section:
    label = text(facts.label)
    body = f"""\
- **Keep keys on servers.** Never put a key in a web page, a mobile app or a public \
repository: anyone who can read it can use it. Apps in people's hands use user tokens.
- **Keep keys out of code.** Read them from the environment or a secret manager.
- **One key per integration, with the least it needs**: only the scopes it uses, only the \
{label}s it works in, an expiry, and, when your servers' addresses are fixed, `allowed_ips` \
(set when the key is made over the API).
- **Test keys for testing.** Use {code(facts.prefix + "_test_")} keys in development and CI, \
{code(facts.prefix + "_live_")} keys only in production.
- **Roll keys** regularly, and whenever someone who could read them leaves.
- **Watch for leaks** with the pattern under [Key format](#key-format); revoke a leaked key at \
once and check its requests per day on its page in the dashboard.
- **Treat refresh tokens like passwords**, and log neither keys nor tokens.
- **Call the API over HTTPS only.**
"""
    return Section("security", "Security best practices", body)


# The sections in page order. Each takes the facts and returns its section, or None when its
# subject is switched off; a new capability's section joins the list where it reads best.
SECTIONS: tuple[Callable[[Facts], Section | None], ...] = (
    getting_a_key,
    key_format,
    authenticating,
    scopes,
    workspaces,
    user_tokens,
    oauth_apps,
    rate_limits,
    errors,
    revocation,
    security,
)

ERROR_ROWS: tuple[tuple[type[TesseraError], str], ...] = (
    (InvalidRequest, "The request cannot be read (a malformed header, body or path)."),
    (WorkspaceRequired, "The key may act in several {label}s and none was named."),
    (Unauthorized, "No credential, or one that is malformed, unknown, expired or revoked."),
    (
        Forbidden,
        "A valid credential that is not allowed: a missing scope, a {label} or an "
        "address outside its restrictions, or a cross-site request.",
    ),
    (NotFound, "Unknown id, or the id of another organization's object."),
    (Conflict, "The request conflicts with the current state."),
    (EmailTaken, "An account with that email exists."),
    (ValidationFailed, "A field is invalid; `errors` lists `field` and `message`."),
    (UnknownScope, "A scope that does not exist on this API."),
    (UnknownWorkspace, "A {label} that does not exist in your organization."),
    (InvalidExpiry, "An expiry in the past, or beyond what this API allows."),
    (ImmutableField, "Only a key's name can change: revoke it and make a new one."),
    (RateLimited, "Over the rate limit; retry after `Retry-After` seconds."),
    (ServiceUnavailable, "The service cannot answer right now; retry shortly."),
)


def _scope_table(scopes: tuple[Scope, ...]) -> str:
    rows = [
        (code(s.name), text(s.description) or "—", "**Yes**" if s.admin_only else "No")
        for s in sorted(scopes, key=lambda s: s.name)
    ]
    return table(("Scope", "Grants", "Admin only"), rows)


def _duration(seconds: int, one: str = "1 ") -> str:
    """``3600`` is "1 hour", ``90`` "90 seconds"; ``one`` is what a single unit is preceded by
    ("1 hour", or "hour" in "per hour")."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            count = seconds // size
            return f"{one}{unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
