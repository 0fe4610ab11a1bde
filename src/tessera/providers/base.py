"""What every provider does alike: the authorization URL with PKCE S256 and the code exchange,
both through Authlib's OAuth 2.0 client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client

from tessera.config import ProviderConfig
from tessera.social.store import ProviderError


class _Client(OAuth2Client):  # type: ignore[misc]  # Authlib has no type information
    """Authlib's protocol client (PKCE, client authentication, token parsing) sending its
    requests with httpx."""

    def _fetch_token(
        self,
        url: str,
        body: str = "",
        headers: dict[str, str] | None = None,
        auth: Any = None,
        method: str = "POST",
        **_kwargs: Any,
    ) -> Any:
        url, headers, body = auth.prepare("POST", url, dict(headers or {}), body)
        return self.parse_response_token(self.session.post(url, content=body, headers=headers))


class HttpProvider:
    def __init__(self, config: ProviderConfig, http: httpx.Client) -> None:
        self._config = config
        self._http = http

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def display_name(self) -> str:
        return self._config.display_name

    def _client(self, redirect_uri: str, scope: str) -> _Client:
        config = self._config
        return _Client(
            self._http,
            client_id=config.client_id,
            client_secret=config.client_secret or None,
            scope=scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def _authorize(
        self, endpoint: str, scope: str, redirect_uri: str, state: str, verifier: str, **extra: str
    ) -> str:
        url, _ = self._client(redirect_uri, scope).create_authorization_url(
            endpoint, state=state, code_verifier=verifier, **extra
        )
        return str(url)

    def _exchange(
        self, endpoint: str, scope: str, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        with self._failures():
            token = self._client(redirect_uri, scope).fetch_token(
                endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
            )
        if not isinstance(token.get("access_token"), str):
            raise ProviderError("invalid", f"{self.display_name} sent no access token.")
        return dict(token)

    def _get_json(self, url: str, access_token: str | None = None, **headers: str) -> Any:
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        headers.setdefault("Accept", "application/json")
        with self._failures():
            response = self._http.get(url, headers=headers)
            if response.status_code >= 500:
                raise ProviderError(
                    "unavailable",
                    f"{self.display_name} is not answering properly (HTTP "
                    f"{response.status_code}). Try again in a moment.",
                )
            response.raise_for_status()
            return response.json()

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """The ways a provider's answer goes wrong, each as a ProviderError a person can read."""
        name = self.display_name
        try:
            yield
        except ProviderError:
            raise
        except OAuth2Error as refused:
            raise ProviderError(
                "invalid", f"{name} refused to complete the sign-in ({refused.error})."
            ) from None
        except httpx.TransportError:
            raise ProviderError(
                "unavailable", f"{name} cannot be reached right now. Try again in a moment."
            ) from None
        except httpx.HTTPStatusError as failed:
            status = failed.response.status_code
            reason = "unavailable" if status >= 500 else "invalid"
            raise ProviderError(reason, f"{name} answered HTTP {status}.") from None
        except (ValueError, KeyError, TypeError):
            raise ProviderError("invalid", f"{name} sent an answer Tessera cannot read.") from None
