"""Pure ASGI middleware: request ids, one log line per request, the 1 MiB body cap, the
refusal of a NUL or a lone surrogate in the path or query (``web/inputs.py``), and the last
word on unexpected exceptions (logged once with their traceback, answered with a 500).

Written against the raw ASGI interface rather than ``BaseHTTPMiddleware`` because it sits on
the verification hot path, where every layer's cost counts.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.ratelimit.headers import rate_limit_headers
from tessera.web.inputs import refusal
from tessera.web.problems import problem_response, status_problem

MAX_BODY_BYTES = 1024 * 1024
access_log = logging.getLogger("tessera.access")
error_log = logging.getLogger("tessera.errors")


_PROCESS = secrets.token_urlsafe(6)
_COUNTER = itertools.count(1)


def next_request_id() -> str:
    """Unique across processes (a random prefix per process) and cheap: ids are not secrets."""
    return f"req_{_PROCESS}{next(_COUNTER):x}"


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so that the framework's body parsing lets it
    through to the error mapping instead of turning it into a 400."""

    def __init__(self) -> None:
        super().__init__(413, "The request body exceeds 1 MiB.")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        logged = access_log.isEnabledFor(logging.INFO)
        started = time.perf_counter() if logged else 0.0
        id_header = (b"x-request-id", request_id.encode())
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = [*message.get("headers", ()), id_header]
                headers += [(n.encode(), v.encode()) for n, v in state.get("headers", ())]
                decision = state.get("rate_limit")
                if decision is not None:
                    headers += _encoded(rate_limit_headers(decision), message)
                message = {**message, "headers": headers}
            await send(message)

        declared = _declared_length(scope)
        refused = refusal(scope)
        try:
            if refused is not None:
                await problem_response(refused, request_id)(scope, receive, send_with_id)
            elif declared is not None and declared > MAX_BODY_BYTES:
                await _too_large(request_id)(scope, receive, send_with_id)
            elif declared is not None:  # the server reads exactly the declared length
                await self.app(scope, receive, send_with_id)
            else:  # a chunked body is counted as it arrives
                await self.app(scope, _capped(receive), send_with_id)
        except BodyTooLarge:
            if not status["sent"]:
                await _too_large(request_id)(scope, receive, send_with_id)
        except Exception:
            # Not raised further: the ASGI server would log it a second time, without the
            # request id, and could only answer what has already been answered here.
            error_log.exception("unhandled error", extra={"request_id": request_id})
            if not status["sent"]:
                await _internal_error(request_id)(scope, receive, send_with_id)
        finally:
            if logged:
                _log(scope, status["code"], started, request_id)


def _encoded(headers: list[tuple[str, str]], message: Message) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers, leaving out a Retry-After the response already has."""
    present = {name.lower() for name, _ in message.get("headers", ())}
    return [
        (name.lower().encode(), value.encode())
        for name, value in headers
        if name.lower().encode() not in present
    ]


def _too_large(request_id: str) -> ASGIApp:
    return status_problem(413, request_id, "The request body exceeds 1 MiB.")


def _internal_error(request_id: str) -> ASGIApp:
    return status_problem(500, request_id, "An unexpected error occurred.")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return MAX_BODY_BYTES + 1
    return None


def _capped(receive: Receive) -> Receive:
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise BodyTooLarge
        return message

    return capped_receive


def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
    # The path only: query strings may carry credentials some clients put there by mistake.
    record: dict[str, Any] = {
        "event": "request",
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "request_id": request_id,
    }
    access_log.info(json.dumps(record))
