"""The hot endpoints: one plain ASGI handler each, for the fast path, the router and the docs."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from tessera.deployment import Tessera
from tessera.web.app import create_app
from tessera.web.hotpaths import FastPaths


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/keys/verify"), ("GET", "/v1/forward-auth")]
)
def test_the_fast_path_serves_the_handler_the_openapi_description_documents(
    tessera: Tessera, method: str, path: str
) -> None:
    """One handler: the route the description documents is answered by the fast path's own."""
    fast = create_app(tessera)
    assert isinstance(fast, FastPaths)
    api = fast.api
    [route] = [r for r in api.routes if isinstance(r, APIRoute) and r.path == path]
    assert route.methods == {method}
    assert route.app is fast.routes[(method, path)][0]
    assert list(api.openapi()["paths"][path]) == [method.lower()]
