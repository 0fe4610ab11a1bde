"""``/docs/authentication`` (HTML) and ``/docs/authentication.md``: the deployment's own
customer-facing "Authentication" page (SPEC section 10), rendered from its live configuration.

The page is built once as Markdown by :mod:`tessera.customer_docs.authentication`; the HTML is
that Markdown rendered by markdown-it-py (CommonMark, raw HTML off, so nothing from the
configuration becomes markup) inside the dashboard's layout. One source for both forms means
the HTML page and the Markdown for a docs site cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from markdown_it import MarkdownIt
from starlette.requests import Request
from starlette.responses import Response

from tessera.customer_docs.authentication import build_page
from tessera.customer_docs.markdown import Page, Section
from tessera.web.dashboard.pages import SECURITY_HEADERS, render
from tessera.web.deps import tessera_of

router = APIRouter(include_in_schema=False)
markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass(frozen=True)
class RenderedPage:
    """The page, and its intro and sections as HTML (safe: markdown-it escapes every character
    of text, and raw HTML is off)."""

    page: Page
    intro: str
    sections: list[tuple[Section, str]]


def _rendered(request: Request) -> RenderedPage:
    """The page of this application's deployment, built and rendered on first use: the
    configuration does not change while the process runs."""
    state = request.app.state
    cached: RenderedPage | None = getattr(state, "authentication_page", None)
    if cached is None:
        tessera = tessera_of(request)
        page = build_page(tessera.config, tessera.catalog)
        cached = RenderedPage(
            page,
            markdown.render(page.intro),
            [(s, markdown.render(s.body)) for s in page.sections],
        )
        state.authentication_page = cached
    return cached


@router.get("/docs/authentication")
def authentication_html(request: Request) -> Response:
    rendered = _rendered(request)
    return render(
        request,
        "docs_page.html",
        page=rendered.page,
        intro=rendered.intro,
        sections=rendered.sections,
        markdown_url=request.url.path + ".md",
    )


@router.get("/docs/authentication.md")
def authentication_markdown(request: Request) -> Response:
    text = _rendered(request).page.markdown()
    return Response(text, media_type="text/markdown", headers=SECURITY_HEADERS)
