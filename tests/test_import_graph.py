"""The package's import graph has no cycles, deferred imports included.

Imports inside functions are edges too: a cycle hidden behind a local import is still two
modules that cannot be understood (or moved) one without the other. Imports under
``if TYPE_CHECKING:`` are annotations only and are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "mscatlas"


def _module_names() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _module_names()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                submodules = [f"{source}.{alias.name}" for alias in node.names]
                targets = [t for t in submodules if t in modules]
                if len(targets) < len(submodules):
                    targets.append(source)
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_cycle_finder_finds_a_known_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_deferred_imports() -> None:
    edges = import_graph()
    # kb.schema imports its errors at module level; a function-level import elsewhere counts too.
    assert "mscatlas.kb.errors" in edges["mscatlas.kb.schema"]
    assert len(edges) > 100


# Issue 15 point 15 closed the last cycle (sim calibrate <-> replay <-> sweep): the Calibration
# type has its own module (sim.calibration), the fit its own (sim.fit), the task executor its own
# (sim.tasks) and the job (sim.calibrate) sits above replay. None is known; any cycle fails.
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycles() -> None:
    found = sorted(strongly_connected(import_graph()))
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles: " + "; ".join(", ".join(c) for c in new)
    assert found == KNOWN_CYCLES, "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_no_module_imports_another_modules_private_names() -> None:
    """Issue 15 point 15: ``from mscatlas.x import _name`` reaches into another module's insides."""
    offenders = []
    for path in PACKAGE_ROOT.rglob("*.py"):
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mscatlas"):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name[:2] != "__"]
                if private:
                    offenders.append(f"{path.relative_to(PACKAGE_ROOT)}: from {node.module} import {private}")
    assert not offenders, offenders
