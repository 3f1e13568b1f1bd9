"""Import layers of ``ebm_ppl``: package-level import cycles and in-function imports.

Usage (from the repository root)::

    python -m tools.import_layers          # cycles and in-function imports, exit 1 if any

Each module's *module-level* ``import ebm_ppl...`` / ``from ebm_ppl... import`` lines
(relative ones resolved; ``if TYPE_CHECKING:`` blocks left out, they never run) are
read with :mod:`ast`, without importing anything. Every module is mapped to its
*unit*: the first component under ``ebm_ppl`` (``ebm_ppl.kernels.mh`` ->
``kernels``, ``ebm_ppl.potential`` -> ``potential``, the package root -> ``ebm_ppl``).
:func:`package_cycles` returns the cycles of the unit graph (edges between units, the
edges inside a unit left out): a cycle means two layers look at each other.

:func:`function_imports` finds imports written inside function bodies whose target
lies in another unit: the way a circle is dodged instead of broken (STYLE.md,
"Layout": move the shared piece down instead). ``importlib.import_module`` calls (the
lazy ``__getattr__`` of a package) are not ``import`` statements and are not counted.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ImportEdge", "function_imports", "import_graph", "main", "package_cycles", "unit"]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ebm_ppl"

#: ``(importing module, imported module, line)``.
ImportEdge = tuple[str, str, int]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted((root / PACKAGE).rglob("*.py")):
        yield _module_name(path, root), path


def unit(module: str) -> str:
    """The layer a module belongs to: its first component under ``ebm_ppl``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, root: Path = ROOT
) -> list[str]:
    """The ``ebm_ppl`` modules an import statement loads (``from ebm_ppl import x``
    counts ``ebm_ppl.x`` when ``x`` is a submodule, the root otherwise)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    if name.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        sub = f"{name}.{alias.name}"
        path = root.joinpath(*sub.split("."))
        out.append(sub if path.with_suffix(".py").exists() or (path / "__init__.py").exists()
                   else name)
    return out


def _module_level(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not in functions,
    classes' methods or ``if TYPE_CHECKING:`` blocks)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody"):
                stack.extend(getattr(node, field, []))
            stack.extend(h for handler in getattr(node, "handlers", []) for h in handler.body)


def _in_functions(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def import_graph(root: Path = ROOT) -> list[ImportEdge]:
    """Every module-level import of an ``ebm_ppl`` module by an ``ebm_ppl`` module."""
    edges = []
    for module, path in _modules(root):
        is_package = path.name == "__init__.py"
        for node in _module_level(_parse(path)):
            edges.extend((module, target, node.lineno)
                         for target in _targets(node, module, is_package, root))
    return edges


def package_cycles(root: Path = ROOT) -> list[list[str]]:
    """The elementary cycles of the unit graph, each as ``[a, b, ..., a]``, sorted."""
    graph: dict[str, set[str]] = {}
    for source, target, _ in import_graph(root):
        a, b = unit(source), unit(target)
        if a != b:
            graph.setdefault(a, set()).add(b)
    cycles: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                cycles.add(tuple(path))
            elif nxt not in path and nxt > start:  # each cycle once, from its least unit
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [[*c, c[0]] for c in sorted(cycles)]


def function_imports(root: Path = ROOT) -> list[ImportEdge]:
    """Imports inside function bodies of an ``ebm_ppl`` module from another unit."""
    found = []
    for module, path in _modules(root):
        is_package = path.name == "__init__.py"
        for node in _in_functions(_parse(path)):
            found.extend((module, target, node.lineno)
                         for target in _targets(node, module, is_package, root)
                         if unit(target) != unit(module))
    return sorted(found)


def main() -> int:
    """Print the cycles and in-function imports; 1 when there are any."""
    cycles = package_cycles()
    inner = function_imports()
    for cycle in cycles:
        print("cycle:", " -> ".join(cycle))
        for source, target, line in import_graph():
            a, b = unit(source), unit(target)
            if a != b and a in cycle and b == cycle[cycle.index(a) + 1]:
                print(f"    {source}:{line} imports {target}")
    for source, target, line in inner:
        print(f"in-function import: {source}:{line} imports {target}")
    if not cycles and not inner:
        print("no package-level import cycles, no in-function imports across packages")
    return 1 if cycles or inner else 0


if __name__ == "__main__":
    sys.exit(main())
