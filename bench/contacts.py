"""The example contacts API served by ``bench.edge`` (b), with one endpoint more: the
unprotected endpoint's answer carrying the rate-limit fields SPEC section 5 puts on every
authenticated answer, with no check at all. Against the unprotected endpoint it measures what
those fields cost by themselves (FastAPI adding them, uvicorn writing them), a part of the
protected endpoint's cost that no check can avoid.

    .venv/bin/uvicorn --factory bench.contacts:from_environment
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response

from examples.contacts_api import app as contacts
from tessera.ratelimit import Quota, decide
from tessera.ratelimit.headers import raw_rate_limit_headers

FIELDS_PATH = "/v1/contacts-fields"


def from_environment() -> FastAPI:
    app = contacts.from_environment()
    figures, _ = decide(Quota(10**9, 60), None, time.time())  # as a protected answer's

    @app.get(FIELDS_PATH)
    async def list_with_fields(response: Response) -> dict[str, Any]:
        response.raw_headers.extend(raw_rate_limit_headers(figures))
        return {"data": [], "caller": None}

    return app
