"""Entry point for ASGI servers: ``uvicorn --factory tessera.web.asgi:create``.

Each worker process builds its own deployment from the same configuration (``TESSERA_CONFIG``
and ``TESSERA_*`` variables); the parent has already applied migrations.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp

from tessera.config import load_config
from tessera.deployment import WORKERS_VARIABLE, Tessera
from tessera.logs import configure_logging
from tessera.web.app import create_app


def create() -> ASGIApp:
    config = load_config()
    configure_logging(config.log_level)
    tessera = Tessera(config, workers=int(os.environ.get(WORKERS_VARIABLE, "1")))
    tessera.start(migrate=False)
    tessera.serve_in_background()
    return create_app(tessera)
