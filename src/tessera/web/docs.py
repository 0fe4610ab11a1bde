"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from files Tessera serves itself.

The pages load nothing from elsewhere, so they work offline and under a strict Content Security
Policy: the scripts and styles come from the ``fastapi-offline`` package, and Swagger UI is
started by a script of ours rather than an inline one. Neither page may be framed.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"
ASSET_FILES = Path(str(files("fastapi_offline") / "static"))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# Swagger UI reads the document's address from the page; validatorUrl null keeps it from
# asking a third-party validator about the document.
SWAGGER_START = """\
const node = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: node.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=ASSET_FILES), name="docs-assets")


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    root = request.scope.get("root_path", "")
    body = f"""<div id="swagger-ui" data-openapi-url="{escape(root)}/openapi.json"></div>
<script src="{escape(root)}{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{escape(root)}/docs/start.js"></script>"""
    stylesheet = f'<link rel="stylesheet" href="{escape(root)}{ASSETS}/swagger-ui.css">'
    return _page(request, "Tessera API", stylesheet, body)


@router.get("/docs/start.js")
def swagger_start() -> Response:
    return Response(SWAGGER_START, media_type="text/javascript", headers=SECURITY_HEADERS)


@router.get("/redoc")
def redoc(request: Request) -> Response:
    root = request.scope.get("root_path", "")
    body = f"""<redoc spec-url="{escape(root)}/openapi.json"></redoc>
<script src="{escape(root)}{ASSETS}/redoc.standalone.js"></script>"""
    return _page(request, "Tessera API reference", "", body)


def _page(request: Request, title: str, head: str, body: str) -> Response:
    root = escape(request.scope.get("root_path", ""))
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{root}{ASSETS}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(html, headers=SECURITY_HEADERS)
