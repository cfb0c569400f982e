"""The modules under ``src/`` import each other without a cycle.

A cycle hides a layering mistake (two modules that each need the other's internals) and makes
import order matter. Imports at module level count; imports inside functions are deliberate lazy
loads and do not. Imports under ``TYPE_CHECKING`` never run, so they cannot make import order
matter, but a cycle of types is still a cycle of design: the ones that exist are listed below
with the reason, and a new one fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(
    tree: ast.Module, module: str, is_package: bool, *, types: bool = True
) -> set[str]:
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                if types:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


def _graph(*, types: bool) -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = _top_level_imports(tree, module, path.name == "__init__.py", types=types)
        # "from a.b import c" names either module a.b.c or attribute c of a.b: keep what exists.
        graph[module] = {name for name in imports if name in files and name != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve_against_the_package() -> None:
    tree = ast.parse("from . import x\nfrom .y import z\nfrom ..w import v\n")
    found = _top_level_imports(tree, "p.q.m", is_package=False)
    assert {"p.q", "p.q.x", "p.q.y", "p.q.y.z", "p.w", "p.w.v"} <= found


# Cycles that exist only in annotations, and why they are left: each capability module defines
# its host service and its Calls, and the shared record types the services it is handed, so the
# record names the services' classes for the type checker. Splitting every service from its
# calls would cost more clarity than the cycle does.
KNOWN_TYPE_ONLY_CYCLES = [
    [
        "plugport.runtime.capabilities._record",
        "plugport.runtime.capabilities.config",
        "plugport.runtime.capabilities.events",
        "plugport.runtime.capabilities.storage",
        "plugport.runtime.capabilities.ui",
    ],
    ["plugport.testing._handle", "plugport.testing._world"],
]


def _pruned(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # Package facades re-export their children; a child importing a sibling through the
    # package is how Python works, not a design cycle, so a package's edge to its own
    # children is left out.
    return {
        module: {t for t in targets if not t.startswith(module + ".")}
        for module, targets in graph.items()
    }


def test_src_has_no_import_cycle() -> None:
    graph = _graph(types=False)
    assert "plugport.host.resolver" in graph["plugport.host.fetch"]  # the walk saw the tree
    assert _cycles(_pruned(graph)) == []


def test_no_new_cycle_of_types() -> None:
    graph = _graph(types=True)
    assert "plugport.host.candidates" in graph["plugport.host._explain"]
    assert _cycles(_pruned(graph)) == KNOWN_TYPE_ONLY_CYCLES
