"""Access tokens: the RFC 9068 profile, the JWKS, algorithm pinning and key rotation."""

from __future__ import annotations

import base64
import json

import jwt as pyjwt
import pytest
from starlette.testclient import TestClient

from tessera.clock import ManualClock
from tessera.deployment import Tessera
from tessera.web.app import create_app
from tests.helpers import assert_problem, log_in, sign_up


def _segments(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, claims, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims)


def _forge(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    encode = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return ".".join(
        [
            encode(json.dumps(header).encode()),
            encode(json.dumps(claims).encode()),
            encode(signature),
        ]
    )


def test_token_verifies_with_pyjwt_against_the_jwks_endpoint(client: TestClient) -> None:
    """An independent library verifies our token with nothing but the published JWKS."""
    account = sign_up(client)
    jwks = client.get("/.well-known/jwks.json").json()
    header, _ = _segments(account.access_token)
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public_key = pyjwt.PyJWK(jwk).key
    claims = pyjwt.decode(
        account.access_token,
        public_key,
        algorithms=["RS256"],
        audience="http://127.0.0.1:8000",
        issuer="http://127.0.0.1:8000",
    )
    assert claims["sub"] == account.user_id
    assert claims["org_id"] == account.organization_id
    assert claims["client_id"] == "tessera"
    assert {"exp", "iat", "jti", "scope"} <= claims.keys()
    assert pyjwt.get_unverified_header(account.access_token)["typ"] == "at+jwt"


def test_jwks_publishes_only_public_halves(client: TestClient) -> None:
    """No private RSA parameter ever appears in the JWKS."""
    for key in client.get("/.well-known/jwks.json").json()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
        assert key["use"] == "sig" and key["alg"] == "RS256"


def test_token_with_another_typ_is_refused(client: TestClient, tessera: Tessera) -> None:
    """Verifiers reject any typ but at+jwt, even when correctly signed."""
    account = sign_up(client)
    _, claims = _segments(account.access_token)
    kid = tessera.signing._current().kid
    key = tessera.signing._current().key
    from joserfc import jwt as jose_jwt

    id_token_like = jose_jwt.encode({"alg": "RS256", "typ": "JWT", "kid": kid}, claims, key)
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {id_token_like}"})
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_algorithm_is_pinned(client: TestClient, algorithm: str) -> None:
    """alg=none and HMAC with the public key as secret are refused."""
    account = sign_up(client)
    header, claims = _segments(account.access_token)
    forged = _forge({**header, "alg": algorithm}, claims, b"forged")
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_tampered_claims_are_refused(client: TestClient) -> None:
    """Changing a claim breaks the signature."""
    account = sign_up(client)
    header, claims = _segments(account.access_token)
    original_signature = account.access_token.rsplit(".", 1)[1]
    tampered = _forge(header, {**claims, "sub": "usr_someoneelse00000000"})
    tampered = tampered.rsplit(".", 1)[0] + "." + original_signature
    assert_problem(
        client.get("/v1/me", headers={"Authorization": f"Bearer {tampered}"}), 401, "unauthorized"
    )


@pytest.mark.postgres
def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_new_key(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """After rotation old tokens work until they expire; new tokens carry the new kid."""
    account = sign_up(client)
    old_kid = _segments(account.access_token)[0]["kid"]
    new_kid = tessera.signing.rotate()
    clock.advance(300)  # the new key signs once it is older than the JWKS max-age
    fresh = log_in(client, account.email)["access_token"]
    assert _segments(fresh)[0]["kid"] == new_kid != old_kid
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids
    assert client.get("/v1/me", headers=account.headers).status_code == 200
    clock.advance(3600)
    assert_problem(client.get("/v1/me", headers=account.headers), 401, "unauthorized")
    clock.advance(120)
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert old_kid not in kids and new_kid in kids


@pytest.mark.postgres
def test_rotation_made_by_another_process_is_picked_up(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """Once the JWKS max-age passes, a key rotated elsewhere (the CLI) signs new tokens here."""
    account = sign_up(client)
    other = Tessera(tessera.config, clock=clock)
    new_kid = other.signing.rotate()
    other.close()
    assert client.get("/v1/me", headers=account.headers).status_code == 200
    clock.advance(300)
    fresh = log_in(client, account.email)["access_token"]
    assert _segments(fresh)[0]["kid"] == new_kid
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def _kid(token: str) -> object:
    return _segments(token)[0]["kid"]


def _published(client: TestClient) -> set[str]:
    return {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}


def test_a_new_key_is_in_every_instances_jwks_at_once_and_signs_after_the_max_age(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """Two deployments on one database: both publish a rotated key at once, and both sign
    with it once it is older than jwks_max_age_seconds, not before."""
    clock.advance(300)  # keys made by earlier tests sign already
    account = sign_up(client)
    old_kid = _kid(account.access_token)
    other = Tessera(tessera.config, clock=clock)
    try:
        with TestClient(create_app(other), base_url="http://127.0.0.1:8000") as second:
            assert old_kid in _published(second)  # the second instance has read its keys
            assert _kid(log_in(second, account.email)["access_token"]) == old_kid
            new_kid = tessera.signing.rotate()
            for instance in (client, second):
                assert {old_kid, new_kid} <= _published(instance)
                assert _kid(log_in(instance, account.email)["access_token"]) == old_kid
            clock.advance(299)
            for instance in (client, second):
                assert _kid(log_in(instance, account.email)["access_token"]) == old_kid
            clock.advance(1)
            for instance in (client, second):
                fresh = log_in(instance, account.email)["access_token"]
                assert _kid(fresh) == new_kid
                assert client.get("/v1/me", headers={"Authorization": f"Bearer {fresh}"}).is_success
    finally:
        other.close()


@pytest.mark.parametrize("config_overrides", [{"tokens": {"jwks_max_age_seconds": 120}}])
def test_jwks_max_age_is_the_cache_lifetime_and_the_signing_delay(
    client: TestClient, tessera: Tessera, clock: ManualClock
) -> None:
    """[tokens] jwks_max_age_seconds sets the JWKS Cache-Control and when a new key signs."""
    account = sign_up(client)
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.headers["Cache-Control"] == "public, max-age=120"
    new_kid = tessera.signing.rotate()
    clock.advance(119)
    assert _kid(log_in(client, account.email)["access_token"]) != new_kid
    clock.advance(1)
    assert _kid(log_in(client, account.email)["access_token"]) == new_kid
