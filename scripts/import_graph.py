"""Figures of srlm's import structure: modules in import cycles and imports inside functions.

    python scripts/import_graph.py            # the two counts, then each cycle's modules
    python scripts/import_graph.py --deferred # also list every import inside a function body

An edge A -> B is any import of B written in A, at the top of the module or in a function body
(a deferred import still ties the two modules together; it only hides the cycle from Python).
Importing ``srlm.x.y`` also runs ``srlm/x/__init__.py``, so it counts as an edge to ``srlm.x``
too, except from inside ``srlm.x`` itself (a module's own packages are always initialised
before it). A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "srlm"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(node: ast.AST, here: str, is_pkg: bool, known: dict) -> list[str]:
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = here.split(".")
            base = base[: len(base) - node.level + (1 if is_pkg else 0)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        names = [mod] + [f"{mod}.{a.name}" for a in node.names]
    out = []
    for name in names:
        # The module itself and every package above it run on import.
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            cand = ".".join(parts[:i])
            # A module's own packages are always initialised before it: no edge to them.
            if (
                cand in known
                and cand != PACKAGE
                and not here.startswith(cand + ".")
                and cand != here
            ):
                out.append(cand)
    return out


def graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    deferred: list[tuple[str, int, str]] = []
    for mod, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        funcs = [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        inside = {
            id(x) for f in funcs for x in ast.walk(f) if isinstance(x, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = _targets(node, mod, is_pkg, known)
            edges[mod].update(targets)
            if id(node) in inside and targets:
                deferred.append((str(path.relative_to(ROOT)), node.lineno, ast.unparse(node)))
    return edges, deferred


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--deferred", action="store_true", help="list the imports inside function bodies"
    )
    args = ap.parse_args()
    edges, deferred = graph()
    comps = cycles(edges)
    print(f"modules in import cycles: {sum(len(c) for c in comps)} (of {len(edges)})")
    print(f"srlm imports inside function bodies: {len(deferred)}")
    for c in comps:
        print(f"  cycle of {len(c)}: {', '.join(c)}")
    if args.deferred:
        for path, line, text in deferred:
            print(f"  {path}:{line}: {text}")


if __name__ == "__main__":
    main()
