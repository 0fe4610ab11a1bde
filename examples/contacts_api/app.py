"""A small contacts API of the kind Tessera's users sell, protected by Tessera.

``from_environment`` builds it from environment variables (README.md of this folder has the
whole walk-through). Against a Tessera server started with this folder's ``tessera.toml``,
asking its verification API about each API key (remote mode):

    TESSERA_URL=http://127.0.0.1:8000 TESSERA_SERVICE_TOKEN=svc_… \\
        .venv/bin/uvicorn --factory examples.contacts_api.app:from_environment --port 9000

or beside Tessera on the same database (local mode, keys and user tokens):

    TESSERA_CONFIG=examples/contacts_api/tessera.toml \\
        .venv/bin/uvicorn --factory examples.contacts_api.app:from_environment --port 9000
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from tessera import Principal
from tessera.config import load_config
from tessera.integrations.fastapi import Authenticator


class NewContact(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=320)


def create_app(auth: Authenticator) -> FastAPI:
    app = FastAPI(title="Contacts API")
    auth.install(app)
    # Contacts kept per organization (and workspace): a key never sees another tenant's data.
    book: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    ids = itertools.count(1)

    @app.get("/v1/contacts")
    @auth.protect("contacts:read")
    async def list_contacts(principal: Principal) -> dict[str, Any]:
        return {"data": book[_tenant(principal)], "caller": principal.id}

    @app.post("/v1/contacts", status_code=201)
    async def add_contact(
        contact: NewContact, principal: Principal = Depends(auth.requires("contacts:write"))
    ) -> dict[str, Any]:
        record = {"id": f"ct_{next(ids)}", **contact.model_dump()}
        book[_tenant(principal)].append(record)
        return record

    @app.get("/v1/contacts-unprotected")
    async def list_unprotected() -> dict[str, Any]:
        """The same work without authentication, for the benchmark's comparison."""
        return {"data": [], "caller": None}

    return app


def _tenant(principal: Principal) -> tuple[str, str | None]:
    return principal.organization_id or "", principal.workspace_id


def from_environment() -> FastAPI:
    url = os.environ.get("TESSERA_URL")
    if url:
        token = os.environ["TESSERA_SERVICE_TOKEN"]
        return create_app(Authenticator.remote(url, token))
    return create_app(Authenticator.local(load_config()))
