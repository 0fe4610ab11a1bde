"""The shape of the code: floors that import only downwards, and a core that knows no HTTP.

The floors (ARCHITECTURE.md): the edge (``web/``, ``cli``, ``integrations/``), the composition
root (``deployment``), the adapters (``storage/``, the Redis rate limiter), and below them the
core and its base. Every import is counted, at the top of a module, inside a function or under
``TYPE_CHECKING``: a circle that only type checkers see is still a circle to a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tessera

PACKAGE = Path(tessera.__file__).parent
EDGE = (
    "tessera.web",
    "tessera.edge",
    "tessera.customer_docs",
    "tessera.cli",
    "tessera.__main__",
    "tessera.integrations",
)
ROOT = ("tessera.deployment",)
ADAPTERS = (
    "tessera.storage",
    "tessera.providers",
    "tessera.ratelimit.redis",
    "tessera.ratelimit.resilient",
)
# Libraries of the floors above the core: HTTP, SQL, the CLI, templates.
OUTER_LIBRARIES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "typer",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _within(module: str, floor: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in floor)


def _is_core(module: str) -> bool:
    return not _within(module, EDGE + ROOT + ADAPTERS)


def _imported(module: str) -> Iterator[str]:
    """Every module name ``module`` imports, absolute, wherever the import statement is."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from tessera.accounts import service`` imports the module tessera.accounts.service
            yield from (
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            )


def _graph() -> dict[str, set[str]]:
    """Which modules of Tessera each module of Tessera imports."""
    return {
        module: {name for name in _imported(module) if name in MODULES and name != module}
        for module in MODULES
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others() -> None:
    """The import graph of src/tessera has no circle."""
    assert _circles(_graph()) == []


def test_the_core_imports_neither_edge_nor_root_nor_adapters() -> None:
    """No core or base module imports web/, cli, integrations/, deployment or storage/."""
    graph = _graph()
    offenders = {
        module: sorted(t for t in targets if not _is_core(t))
        for module, targets in graph.items()
        if _is_core(module) and any(not _is_core(t) for t in targets)
    }
    assert offenders == {}


def test_the_core_imports_no_web_framework_and_no_sql() -> None:
    """Only the floors above the core import FastAPI, Starlette, SQLAlchemy and the like."""
    offenders = {}
    for module in MODULES:
        if not _is_core(module):
            continue
        libraries = {name.split(".")[0] for name in _imported(module)} & set(OUTER_LIBRARIES)
        if libraries:
            offenders[module] = sorted(libraries)
    assert offenders == {}


def test_adapters_do_not_import_the_edge_or_the_root() -> None:
    """storage/ and the Redis limiter serve the core; they never reach up to the edge."""
    graph = _graph()
    offenders = {
        module: sorted(t for t in targets if _within(t, EDGE + ROOT))
        for module, targets in graph.items()
        if _within(module, ADAPTERS) and any(_within(t, EDGE + ROOT) for t in targets)
    }
    assert offenders == {}


def test_only_the_edge_imports_the_composition_root() -> None:
    """deployment is imported by web/, the CLI and integrations/, by nothing else."""
    graph = _graph()
    importers = {m for m, targets in graph.items() if any(_within(t, ROOT) for t in targets)}
    assert importers and all(_within(m, EDGE) for m in importers)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The reader finds imports in functions, under TYPE_CHECKING and of submodules by name."""
    graph = _graph()
    assert "tessera.errors" in graph["tessera.principal"]  # inside a method
    assert "tessera.accounts.records" in graph["tessera.accounts.service"]
    assert "tessera.integrations.local" in graph["tessera.integrations.fastapi"]  # in a method
    assert "tessera.web.app" in graph["tessera.web.asgi"]
