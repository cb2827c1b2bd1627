"""The import graph of lazytorch, read from the source: which module imports which, counting
imports inside functions (they run when the function is first called) and leaving out those
under `if TYPE_CHECKING:` (they never run).

    python tools/imports.py            # the cycles (strongly connected components), largest first
    python tools/imports.py MODULE     # what MODULE imports, and what imports it

An edge goes to the module an import statement names: `from .a import b` is an edge to `a`, and
to `a.b` as well when that is a module of its own. Importing `lazytorch.x.y` also runs the
package `lazytorch.x`'s `__init__`, so there is an edge to each enclosing package below the top
one that does not enclose the importer as well (`lazytorch/__init__.py` imports the whole API,
and a package's `__init__` its own modules: edges to those from every module inside would say
nothing).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "lazytorch"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """The Import/ImportFrom statements that can run: all but those under TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _named(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name an ImportFrom's `from X` part names."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    if path.name != "__init__.py":
        base.pop()
    if node.level > 1:
        base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_packages(target: str, importer: str, known: dict[str, Path]) -> list[str]:
    """`target` and the packages enclosing it below the top one that do not enclose the
    importer too (importing runs their __init__), those of them that are modules."""
    parts = target.split(".")
    names = [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
    return [n for n in names if n in known and not importer.startswith(n + ".")]


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the package's modules it imports (at module level or inside functions)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _named(name, path, node)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t.startswith(PACKAGE + "."):
                    edges.update(_with_packages(t, name, known))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, largest first (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out, key=lambda c: (-len(c), c))


def main(argv: list[str]) -> None:
    graph = import_graph()
    if argv:
        name = argv[0] if argv[0].startswith(PACKAGE) else f"{PACKAGE}.{argv[0]}"
        print(f"{name} imports:")
        for m in sorted(graph.get(name, ())):
            print(f"  {m}")
        print(f"{name} is imported by:")
        for m in sorted(k for k, v in graph.items() if name in v):
            print(f"  {m}")
        return
    comps = cycles(graph)
    print(f"{len(graph)} modules, {sum(map(len, comps))} in {len(comps)} cycle(s)")
    for comp in comps:
        print(f"\n{len(comp)} modules:")
        for m in comp:
            print(f"  {m}")


if __name__ == "__main__":
    main(sys.argv[1:])
