"""A small stand-in for Google's and GitHub's sign-in endpoints, speaking their documented
answers, for the tests that cannot reach the real ones.

Google: ``/o/oauth2/v2/auth``, ``/token``, ``/v1/userinfo``, ``/oauth2/v3/certs`` (an RS256 ID
token from ``https://accounts.google.com``). GitHub: ``/login/oauth/authorize``,
``/login/oauth/access_token``, ``/user``, ``/user/emails``. The authorization endpoints sign
in whoever the test named last (``POST /_next``) at once, and the token endpoints check the
client's secret and the PKCE verifier, as the real ones do. ``POST /_rotate`` makes a new
signing key; ``POST /_next`` with ``id_token`` overrides claims (a token for another app…).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "standin-client"
CLIENT_SECRET = "standin-secret"
GOOGLE_ISSUER = "https://accounts.google.com"

state: dict[str, Any] = {
    "keys": [RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig"})],
    "next": {},  # provider -> what the next sign-in there says
    "codes": {},  # code -> the authorization request it answers
    "tokens": {},  # access token -> (provider, person)
    "token_requests": [],
}


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _authorize(provider: str, request: Request) -> Response:
    query = request.query_params
    if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
        return JSONResponse({"error": "invalid_request"}, status_code=400)
    back = {"state": query.get("state", "")}
    person = state["next"].get(provider)
    if person is None or person.get("deny"):
        back |= {"error": "access_denied", "error_description": "The user denied access"}
    else:
        code = secrets.token_urlsafe(16)
        state["codes"][code] = {"provider": provider, "query": dict(query), "person": person}
        back["code"] = code
        if provider == "google":
            back["iss"] = person.get("iss_param", GOOGLE_ISSUER)
    return RedirectResponse(query["redirect_uri"] + "?" + urlencode(back), status_code=302)


def _client_ok(request: Request, form: Any) -> bool:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        given = base64.b64decode(header[6:]).decode()
        return given == f"{CLIENT_ID}:{CLIENT_SECRET}"
    return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET


async def _token(provider: str, request: Request) -> Response:
    form = await request.form()
    state["token_requests"].append(dict(form))
    grant = state["codes"].pop(str(form.get("code", "")), None)
    if not _client_ok(request, form):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    if grant is None or grant["provider"] != provider:
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    query = grant["query"]
    verifier = str(form.get("code_verifier", ""))
    if _challenge(verifier) != query["code_challenge"]:
        return JSONResponse(
            {"error": "invalid_grant", "error_description": "PKCE"}, status_code=400
        )
    if form.get("redirect_uri") != query["redirect_uri"]:
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    access = secrets.token_urlsafe(16)
    person = grant["person"]
    state["tokens"][access] = (provider, person)
    if provider == "github":
        return JSONResponse({"access_token": access, "token_type": "bearer", "scope": "user:email"})
    now = int(time.time())
    claims = {
        "iss": GOOGLE_ISSUER,
        "aud": CLIENT_ID,
        "sub": person["sub"],
        "iat": now,
        "exp": now + 3600,
        "nonce": query.get("nonce"),
        "email": person["email"],
        "email_verified": person["email_verified"],
        "name": person.get("name", ""),
        **person.get("id_token", {}),
    }
    key = state["keys"][-1]
    id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
    return JSONResponse(
        {"access_token": access, "token_type": "Bearer", "expires_in": 3599, "id_token": id_token}
    )


def _bearer(request: Request) -> Any:
    header = request.headers.get("authorization", "")
    return state["tokens"].get(header.removeprefix("Bearer ").removeprefix("token "))


async def google_authorize(request: Request) -> Response:
    return _authorize("google", request)


async def google_token(request: Request) -> Response:
    return await _token("google", request)


async def google_certs(_request: Request) -> Response:
    return JSONResponse({"keys": [k.as_dict(private=False) for k in state["keys"]]})


async def google_userinfo(request: Request) -> Response:
    found = _bearer(request)
    if found is None:
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    person = found[1]
    return JSONResponse(
        {"sub": person["sub"], "email": person["email"], "email_verified": person["email_verified"]}
    )


async def github_authorize(request: Request) -> Response:
    return _authorize("github", request)


async def github_token(request: Request) -> Response:
    return await _token("github", request)


async def github_user(request: Request) -> Response:
    found = _bearer(request)
    if found is None:
        return JSONResponse({"message": "Requires authentication"}, status_code=401)
    person = found[1]
    return JSONResponse(
        {"login": person["login"], "id": person["id"], "name": person.get("name"), "email": None}
    )


async def github_emails(request: Request) -> Response:
    found = _bearer(request)
    if found is None:
        return JSONResponse({"message": "Requires authentication"}, status_code=401)
    return JSONResponse(found[1]["emails"])


async def set_next(request: Request) -> Response:
    body = await request.json()
    state["next"].update(body)
    return JSONResponse({"ok": True})


async def rotate(_request: Request) -> Response:
    count = len(state["keys"]) + 1
    key = RSAKey.generate_key(2048, parameters={"kid": f"key-{count}", "use": "sig"})
    state["keys"].append(key)
    return JSONResponse({"kid": key.kid})


async def token_requests(_request: Request) -> Response:
    return JSONResponse(state["token_requests"])


async def root(_request: Request) -> Response:
    return JSONResponse({"stand_in": ["google", "github"]})


app = Starlette(
    routes=[
        Route("/", root),
        Route("/o/oauth2/v2/auth", google_authorize),
        Route("/token", google_token, methods=["POST"]),
        Route("/oauth2/v3/certs", google_certs),
        Route("/v1/userinfo", google_userinfo),
        Route("/login/oauth/authorize", github_authorize),
        Route("/login/oauth/access_token", github_token, methods=["POST"]),
        Route("/user", github_user),
        Route("/user/emails", github_emails),
        Route("/_next", set_next, methods=["POST"]),
        Route("/_rotate", rotate, methods=["POST"]),
        Route("/_token_requests", token_requests),
    ]
)
