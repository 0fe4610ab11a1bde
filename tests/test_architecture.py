"""The shape of the code: the core knows nothing of HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import tessera

PACKAGE = Path(tessera.__file__).parent
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "jinja2")
EDGES = ("web", "edge", "integrations", "cli.py", "__main__.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_do_not_import_the_web_framework() -> None:
    """Only web/, edge/, integrations/ and the CLI may import FastAPI, Starlette, uvicorn or
    Jinja2."""
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in EDGES:
            continue
        found = _imports(path) & set(WEB_FRAMEWORKS)
        if found:
            offenders[str(relative)] = sorted(found)
    assert offenders == {}
