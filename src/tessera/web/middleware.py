"""Pure ASGI middleware: request ids, one log line per request, the 1 MiB body cap, the
refusal of a NUL or a lone surrogate in the path or query (``web/inputs.py``), and the last
word on every exception that reaches it: answered by the one error handler
(``web/problems.py``), and logged once with its traceback when nobody expected it.

Written against the raw ASGI interface rather than ``BaseHTTPMiddleware`` because it sits on
the verification hot path, where every layer's cost counts.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.errors import TesseraError
from tessera.ids import next_request_id
from tessera.ratelimit.headers import RAW_NAMES, raw_rate_limit_headers
from tessera.web.inputs import refusal
from tessera.web.problems import error_response

MAX_BODY_BYTES = 1024 * 1024
access_log = logging.getLogger("tessera.access")
error_log = logging.getLogger("tessera.errors")


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
                extra = state.get("headers")
                if extra:
                    headers += [(n.encode(), v.encode()) for n, v in extra]
                decision = state.get("rate_limit")
                if decision is not None:
                    headers += _encoded(raw_rate_limit_headers(decision), message)
                message = {**message, "headers": headers}
            await send(message)

        declared = _declared_length(scope)
        refused = refusal(scope)
        try:
            if refused is not None:
                raise refused
            if declared is not None and declared > MAX_BODY_BYTES:
                raise BodyTooLarge
            if declared is not None:  # the server reads exactly the declared length
                await self.app(scope, receive, send_with_id)
            else:  # a chunked body is counted as it arrives
                await self.app(scope, _capped(receive), send_with_id)
        except Exception as error:
            # Not raised further: the ASGI server would log it a second time, without the
            # request id, and could only answer what has already been answered here.
            if not isinstance(error, TesseraError | HTTPException):
                error_log.exception("unhandled error", extra={"request_id": request_id})
            if not status["sent"]:
                await error_response(scope, error)(scope, receive, send_with_id)
        finally:
            if logged:
                log_request(scope, status["code"], started, request_id)


def _encoded(headers: list[tuple[bytes, bytes]], message: Message) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers, leaving out any the response already has (a Retry-After)."""
    present = {bytes(name).lower() for name, _ in message.get("headers", ())} & RAW_NAMES
    if not present:
        return headers
    return [(name, value) for name, value in headers if name not in present]


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


def log_request(scope: Scope, status: int, started: float, request_id: str) -> None:
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
