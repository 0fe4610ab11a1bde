"""The authorization server on Authlib's framework-free core (RFC 6749, 7636, 7009, 7662 and
OpenID Connect Core's code flow). Only the integration is written here: the models Authlib
asks for, the hooks it leaves open, and a request type any web layer can fill in.

Every client uses the authorization code with PKCE S256 (``plain`` and a missing challenge are
refused); refresh tokens rotate through the user tokens' family machinery; confidential clients
may also use ``client_credentials``. No implicit and no password grant are registered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import (
    AuthorizationServer as _AuthorizationServer,
)
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749 import grants as rfc6749
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin

from tessera.oauth.clients import authenticate_secret
from tessera.oauth.issuer import OFFLINE, IssuedToken, Subject, TokenIssuer
from tessera.oauth.records import OPENID_SCOPES, AuthorizationCode, OAuthClient
from tessera.ratelimit.gcra import RateLimitDecision

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
SERVICE_METHOD = "service_token"
THROTTLED = "Too many failed authentications from this address."
# Counts a failed client authentication from an address; the refusal once it is past its limit.
CountFailure = Callable[[str | None], RateLimitDecision | None]


@dataclass(frozen=True)
class HttpRequest:
    """What the web layer hands over: the request as received, already read."""

    method: str
    uri: str
    headers: dict[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    client_ip: str | None = None  # the address failures are counted against


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: dict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self.payload = _Payload([*request.query, *request.form])
        self._args = dict(request.query)
        self._form = dict(request.form)
        self.client_ip = request.client_ip

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Client(ClientMixin):
    def __init__(self, record: OAuthClient) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.id

    def get_default_redirect_uri(self) -> None:
        return None  # every request names its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = (scope or "").split()
        return " ".join(s for s in dict.fromkeys(requested) if s in self.record.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.record.allows_redirect(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return authenticate_secret(self.record, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.record.confidential:
            return method in CONFIDENTIAL_METHODS
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.record.confidential
        return grant_type in ("authorization_code", "refresh_token")


class _ServiceCaller(ClientMixin):
    """A service token presented to the introspection endpoint: it may read any token."""

    def get_client_id(self) -> str:
        return ""

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == SERVICE_METHOD and endpoint == "introspection"


class _Code(AuthorizationCodeMixin):
    def __init__(self, record: AuthorizationCode) -> None:
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope

    def get_nonce(self) -> str | None:
        return self.record.nonce

    def get_auth_time(self) -> int:
        return int(self.record.auth_time.timestamp())


class _Token(TokenMixin):
    def __init__(self, issued: IssuedToken, subject: Subject | None = None) -> None:
        self.issued = issued
        self.subject = subject

    def check_client(self, client: Client) -> bool:
        return bool(self.issued.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.issued.scope

    def is_expired(self) -> bool:
        return not self.issued.active

    def is_revoked(self) -> bool:
        return not self.issued.active


class ThrottledClientError(InvalidClientError):
    """A failed client authentication from an address past ``failures_per_ip``: still
    ``invalid_client`` in the RFC 6749 shape, answered ``429`` with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(description=THROTTLED, status_code=429)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, ("Retry-After", str(max(1, self.retry_after)))]


class S256Only(CodeChallenge):
    """PKCE for every client, with S256 only (RFC 9700 section 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain is refused.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(rfc6749.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS
    server: AuthorizationServer

    def save_authorization_code(self, code: str, request: Any) -> None:
        subject: Subject = request.user
        self.server.issuer.save_code(code, request.client.record, subject, request.payload.data)

    def query_authorization_code(self, code: str, client: Client) -> _Code | None:
        found = self.server.issuer.take_code(code, client.get_client_id())
        return _Code(found) if found else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Nothing left to do: the code was spent when it was looked up."""

    def authenticate_user(self, authorization_code: _Code) -> Subject | None:
        return self.server.issuer.subject_of_code(authorization_code.record)


class OpenIDCode(_OpenIDCode):
    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__(require_nonce=False)
        self._issuer = issuer

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # each code is single-use, which already defeats a replayed response

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return self._issuer.userinfo(user.user_id or "", scope)

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        code = request.authorization_code
        nonce = code.get_nonce() if code is not None else None
        return self._issuer.id_token(request.client.record, request.user, token, nonce)


class RefreshGrant(rfc6749.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: AuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        client = self.request.client
        subject = self.server.issuer.rotate(refresh_token, client.get_client_id())
        if subject is None or subject.family is None:
            return None
        family = subject.family
        issued = IssuedToken(
            "refresh_token",
            family.client_id,
            family.scope,
            family.user_id,
            family.organization_id,
            0,
            0,
            True,
            family.id,
        )
        return _Token(issued, subject)

    def authenticate_user(self, refresh_token: _Token) -> Subject | None:
        return refresh_token.subject

    def revoke_old_credential(self, refresh_token: _Token) -> None:
        """Nothing left to do: the old token was spent when it was rotated."""


class ClientCredentials(rfc6749.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CONFIDENTIAL_METHODS)


class _TokenEndpointMixin:
    server: AuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        issued = self.server.issuer.presented(token_string)
        return _Token(issued) if issued else None


class Revocation(_TokenEndpointMixin, RevocationEndpoint):
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS

    def authenticate_token(self, request: Any, client: Client) -> _Token | None:
        # RFC 7009 section 2.2: a token of another client is not revoked, and not told apart.
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None

    def revoke_token(self, token: _Token, request: Any) -> None:
        self.server.issuer.revoke(token.issued)


class Introspection(_TokenEndpointMixin, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*CONFIDENTIAL_METHODS, SERVICE_METHOD]

    def check_permission(self, token: _Token, client: Any, request: Any) -> bool:
        return isinstance(client, _ServiceCaller) or token.check_client(client)

    def introspect_token(self, token: _Token) -> dict[str, Any]:
        issued = token.issued
        return {
            "active": True,
            "client_id": issued.client_id,
            "scope": issued.scope,
            "sub": issued.subject,
            "token_type": "Bearer" if issued.kind == "access_token" else "refresh_token",
            "exp": issued.expires_at,
            "iat": issued.issued_at,
            "iss": self.server.issuer.issuer,
            "org_id": issued.organization_id,
        }


class AuthorizationServer(_AuthorizationServer):
    def __init__(
        self,
        issuer: TokenIssuer,
        find_client: Callable[[str], OAuthClient | None],
        service_token_valid: Callable[[str], bool],
        catalog_scopes: list[str],
        count_failure: CountFailure,
    ) -> None:
        super().__init__(scopes_supported=[*OPENID_SCOPES, *catalog_scopes])
        self.issuer = issuer
        self._find_client = find_client
        self._service_token_valid = service_token_valid
        self._count_failure = count_failure
        self.register_grant(CodeGrant, [S256Only(required=True), OpenIDCode(issuer)])
        self.register_grant(RefreshGrant)
        self.register_grant(ClientCredentials)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_client_auth_method(SERVICE_METHOD, self._service_caller)
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> Client | None:
        record = self._find_client(client_id) if isinstance(client_id, str) else None
        if record is None or record.deleted_at is not None:
            return None
        return Client(record)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Authlib's client authentication, where a failure counts against the caller's address
        as a bad key or service token does (SPEC section 5); a request that presented no client
        credentials is refused without counting, as a request without a key is."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            if not _presents_client_credentials(request):
                raise
            throttled = self._count_failure(getattr(request, "client_ip", None))
            if throttled is None:
                raise
            raise ThrottledClientError(throttled.retry_after) from None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to do: access tokens are signed JWTs and families are saved as issued."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> HttpResponse:
        if status == 302:  # every redirect back to the client names us (RFC 9207)
            headers = [
                (k, _with_issuer(v, self.issuer.issuer) if k.lower() == "location" else v)
                for k, v in headers
            ]
        return HttpResponse(status, body, list(headers))

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope and not set(self.scopes_supported).issuperset(scope.split()):
            raise InvalidScopeError()

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        record = client.record
        if grant_type == "client_credentials":
            allowed = self.issuer.client_scopes(record)
            asked = scope.split() if scope else sorted(allowed)
            granted = " ".join(s for s in asked if s in allowed)
            subject = Subject(organization_id=record.organization_id)
            return self.issuer.token(record, subject, granted)
        if user is None:
            raise InvalidGrantError()
        granted = " ".join(s for s in (scope or "").split() if s in user.scope.split())
        return self.issuer.token(record, user, granted)

    def _service_caller(self, query_client: Any, request: Any) -> _ServiceCaller | None:
        header = request.headers.get("Authorization") or request.headers.get("authorization")
        if not header or not header.startswith("Bearer "):
            return None
        return _ServiceCaller() if self._service_token_valid(header[7:].strip()) else None


def _presents_client_credentials(request: Any) -> bool:
    """Whether the request named a client or carried a secret or a token to authenticate it."""
    headers = request.headers
    if headers.get("Authorization") or headers.get("authorization"):
        return True
    form = request.form
    return bool(form.get("client_id") or form.get("client_secret"))


def _with_issuer(location: str, issuer: str) -> str:
    from authlib.common.urls import add_params_to_uri

    return str(add_params_to_uri(location, [("iss", issuer)]))


__all__ = [
    "OFFLINE",
    "AuthorizationServer",
    "Client",
    "HttpRequest",
    "HttpResponse",
    "extract_basic_authorization",
]
