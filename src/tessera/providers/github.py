"""GitHub: OAuth 2.0 without OpenID Connect. The person is ``/user``; the email is the primary
one of ``/user/emails``, and it counts as verified only when GitHub says so."""

from __future__ import annotations

import httpx

from tessera.config import ProviderConfig
from tessera.providers.base import HttpProvider
from tessera.social.records import Profile
from tessera.social.store import ProviderError

AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
TOKEN_URL = "https://github.com/login/oauth/access_token"  # noqa: S105 (a URL)
API_URL = "https://api.github.com"
DEFAULT_SCOPE = "read:user user:email"
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHubProvider(HttpProvider):
    def __init__(self, config: ProviderConfig, http: httpx.Client) -> None:
        super().__init__(config, http)
        self._scope = " ".join(config.scopes) or DEFAULT_SCOPE
        self._api = (config.api_url or API_URL).rstrip("/")

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        endpoint = self._config.authorize_url or AUTHORIZE_URL
        return self._authorize(endpoint, self._scope, redirect_uri, state, code_verifier)

    def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, issuer: str | None
    ) -> Profile:
        endpoint = self._config.token_url or TOKEN_URL
        token = self._exchange(endpoint, self._scope, code, redirect_uri, code_verifier)
        access = token["access_token"]
        user = self._get_json(self._api + "/user", access, **API_HEADERS)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ProviderError("invalid", "GitHub's /user answer has no id.")
        emails = self._get_json(self._api + "/user/emails", access, **API_HEADERS)
        primary = (
            next(
                (e for e in emails if isinstance(e, dict) and e.get("primary") is True),
                None,
            )
            if isinstance(emails, list)
            else None
        )
        email = primary.get("email") if primary else None
        name = user.get("name") or user.get("login") or ""
        return Profile(
            subject=str(user["id"]),
            email=email if isinstance(email, str) else None,
            email_verified=bool(primary and primary.get("verified") is True),
            name=name if isinstance(name, str) else "",
        )
