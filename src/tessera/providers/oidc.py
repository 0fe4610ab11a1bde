"""An OpenID Connect provider (Google, or any by its discovery document): the ID token is
verified against the provider's JWKS — signature, ``iss``, ``aud``, ``exp``, ``nonce``."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tessera.clock import Clock
from tessera.config import ProviderConfig
from tessera.providers.base import HttpProvider
from tessera.social.records import Profile
from tessera.social.store import ProviderError

DEFAULT_SCOPE = "openid email profile"
DISCOVERY_TTL_SECONDS = 3600
JWKS_TTL_SECONDS = 3600
JWKS_REFETCH_SECONDS = 10  # an unknown kid fetches the JWKS again, at most this often
LEEWAY_SECONDS = 60
# Asymmetric algorithms only: a shared-secret (HS*) or unsigned ID token is refused.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
GOOGLE = {
    "issuer": "https://accounts.google.com",
    "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_endpoint": "https://oauth2.googleapis.com/token",
    "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
    "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
}
OVERRIDES = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userinfo_url": "userinfo_endpoint",
    "jwks_uri": "jwks_uri",
}


class OidcProvider(HttpProvider):
    def __init__(self, config: ProviderConfig, http: httpx.Client, clock: Clock) -> None:
        super().__init__(config, http)
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._scope = " ".join(config.scopes) or DEFAULT_SCOPE

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        endpoint = self._endpoint("authorization_endpoint")
        return self._authorize(
            endpoint, self._scope, redirect_uri, state, code_verifier, nonce=nonce
        )

    def profile(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, issuer: str | None
    ) -> Profile:
        metadata = self.metadata()
        expected = str(metadata["issuer"])
        # RFC 9207: the authorization response names its issuer (a mix-up defence).
        if issuer is not None and issuer != expected:
            raise ProviderError("invalid", f"The answer did not come from {self.display_name}.")
        if issuer is None and metadata.get("authorization_response_iss_parameter_supported"):
            raise ProviderError("invalid", f"{self.display_name}'s answer did not name its issuer.")
        token = self._exchange(
            self._endpoint("token_endpoint"), self._scope, code, redirect_uri, code_verifier
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("invalid", f"{self.display_name} sent no ID token.")
        claims = self.verify_id_token(id_token, nonce)
        email, verified = claims.get("email"), claims.get("email_verified")
        name = claims.get("name")
        userinfo_url = metadata.get("userinfo_endpoint")
        if not isinstance(email, str) and userinfo_url:
            info = self._get_json(str(userinfo_url), token["access_token"])
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise ProviderError(
                    "invalid", f"{self.display_name}'s userinfo is not this person."
                )
            email, verified, name = info.get("email"), info.get("email_verified"), info.get("name")
        return Profile(
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            email_verified=verified is True or verified == "true",
            name=name if isinstance(name, str) else "",
        )

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (by a key of the provider's JWKS), issuer,
        audience, expiry and nonce are right."""
        metadata = self.metadata()
        try:
            header = jws.extract_compact(id_token.encode()).protected
            keys = self._key_set(header.get("kid"))
            decoded = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            claims = dict(decoded.claims)
            jwt.JWTClaimsRegistry(
                now=int(self._clock.timestamp()),
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": metadata["issuer"]},
                aud={"essential": True, "value": self._config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as refused:
            raise ProviderError(
                "invalid", f"{self.display_name}'s ID token failed its checks ({refused})."
            ) from None
        audience = claims.get("aud")
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != self._config.client_id:
            raise ProviderError("invalid", f"{self.display_name}'s ID token is for another app.")
        return claims

    def metadata(self) -> dict[str, Any]:
        """The provider's metadata: the discovery document (cached for an hour) or Google's
        built-in endpoints, with the configured overrides on top."""
        with self._lock:
            fresh = self._clock.timestamp() - self._metadata_at < DISCOVERY_TTL_SECONDS
            if self._metadata is not None and fresh:
                return self._metadata
        config = self._config
        if config.discovery_url:
            found = self._get_json(config.discovery_url)
            if not isinstance(found, dict) or not isinstance(found.get("issuer"), str):
                raise ProviderError(
                    "invalid", f"{self.display_name}'s discovery document is not valid."
                )
            well_known = "/.well-known/openid-configuration" in config.discovery_url
            if well_known and found["issuer"].rstrip("/") != _issuer_of(config.discovery_url):
                raise ProviderError(
                    "invalid", f"{self.display_name}'s discovery document names another issuer."
                )
            metadata = dict(found)
        else:
            metadata = dict(GOOGLE)
        for key, field in OVERRIDES.items():
            if getattr(config, key):
                metadata[field] = getattr(config, key)
        with self._lock:
            self._metadata, self._metadata_at = metadata, self._clock.timestamp()
        return metadata

    def _endpoint(self, name: str) -> str:
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value:
            raise ProviderError("invalid", f"{self.display_name} has no {name}.")
        return value

    def _key_set(self, kid: object) -> KeySet:
        """The provider's keys, fetched again when stale or when ``kid`` is not among them."""
        now = self._clock.timestamp()
        with self._lock:
            keys, age = self._keys, now - self._keys_at
        if keys is not None and age < JWKS_TTL_SECONDS:
            known = not isinstance(kid, str) or _has_kid(keys, kid)
            if known or age < JWKS_REFETCH_SECONDS:
                return keys
        document = self._get_json(self._endpoint("jwks_uri"))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ProviderError("invalid", f"{self.display_name}'s JWKS is not valid.")
        usable = [
            k for k in document["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"
        ]
        keys = KeySet.import_key_set({"keys": usable})
        with self._lock:
            self._keys, self._keys_at = keys, self._clock.timestamp()
        return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (JoseError, ValueError):
        return False
    return True


def _issuer_of(discovery_url: str) -> str:
    """The issuer a discovery document at this address must name (OpenID Connect Discovery,
    section 4.3)."""
    return discovery_url.split("/.well-known/openid-configuration")[0].rstrip("/")
