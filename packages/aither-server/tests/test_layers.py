"""The server's folders are layers (docs/ARCHITECTURE.md): no module imports a layer above its own, and no two
modules import each other, directly or round a circle. Read from the source with ``ast``, so an import inside a
function or under ``TYPE_CHECKING`` counts as much as one at the top: an arrow is an arrow."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import aither_server

PACKAGE = Path(aither_server.__file__).parent

#: Lowest first. ``base`` holds the leaf modules every layer may use (the version string, an HTTP probe).
LAYERS = (
    "base",
    "model",
    "ingest",
    "store",
    "drift",
    "privacy",
    "query",
    "estimate",
    "monitors",
    "api",
    "ui",
    "top",
)
BASE_MODULES = {"aither_server._version", "aither_server.http_head"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if "alembic" in relative.parts:  # migrations run by Alembic, never imported by the server's code
            continue
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """The server's modules that ``module`` imports (a name imported from a package counts as its submodule
    when there is one)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module and name != "aither_server":
                yield name


GRAPH = {module: set(_imports(module, path)) for module, path in MODULES.items()}


def layer_of(module: str) -> str:
    if module in BASE_MODULES:
        return "base"
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "top"


def test_every_folder_of_the_server_is_a_known_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"add {sorted(folders - set(LAYERS))} to LAYERS and to docs/ARCHITECTURE.md"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    ]
    assert upward == []


def test_no_import_circle() -> None:
    # Tarjan's strongly connected components: any component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_graph_is_read_from_the_source() -> None:
    # The checks above mean nothing if the reader found no arrows: the app reaches the routes, a route the store.
    assert "aither_server.api.routes.ingest" in GRAPH["aither_server.app"]
    assert any(target.startswith("aither_server.store") for target in GRAPH["aither_server.api.routes.ingest"])
    assert layer_of("aither_server.ui.charts") == "ui" and layer_of("aither_server.cli") == "top"
