"""The package's imports flow one way (docs/architecture.md): no cycle among omnibench modules, and the run folder
(omnibench/run.py) imports nothing above it.

Imports are read from the source with ``ast``, so an import inside a function counts as much as one at
the top of a module (hiding a cycle in a function does not remove it), and relative imports are
resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import omnibench

PACKAGE = Path(omnibench.__file__).resolve().parent


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the package (a package is its __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _owner(name: str, modules) -> str | None:
    """The module of the package that an imported dotted name resolves to (``a.b.func`` -> ``a.b``)."""
    while name and name not in modules:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name or None


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source (functions included)."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod if is_pkg else mod.rsplit(".", 1)[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rsplit(".", 1)[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
            else:
                continue
            for t in targets:
                owner = _owner(t, modules)
                # a package importing its own submodules is how a package is built, not a cycle
                if owner and owner != mod and not owner.startswith(mod + "."):
                    edges[mod].add(owner)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(u: str, path: list[str]) -> list[str] | None:
        state[u] = 1
        path.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                return path[path.index(v):] + [v]
            if v not in state and (found := visit(v, path)):
                return found
        path.pop()
        state[u] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m, [])):
            return found
    return None


def _closure(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for v in edges.get(todo.pop(), ()):
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def test_the_walker_sees_function_level_and_relative_imports_and_names_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (pkg / "b.py").write_text("from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\n")
    edges = import_edges(_modules(pkg))
    assert edges["pkg.a"] == {"pkg.b"} and edges["pkg.b"] == {"pkg.sub", "pkg.sub.c"} and edges["pkg.sub.c"] == {"pkg", "pkg.a"}
    assert find_cycle(edges) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (pkg / "sub" / "c.py").write_text("import os\n")
    assert find_cycle(import_edges(_modules(pkg))) is None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_edges(_modules()))
    assert cycle is None, "import cycle among omnibench modules (imports inside functions count): " + " -> ".join(cycle)


#: What omnibench/run.py may import directly (data.media only lazily, for the run's decode cache) ...
RUN_IMPORTS = {"omnibench.io", "omnibench.labels", "omnibench.data.media"}
#: ... and the layers it may reach through them: the bottom layer and the data layer (docs/architecture.md).
BELOW_RUN = ("omnibench.io", "omnibench.labels", "omnibench.answers", "omnibench.data")


def test_run_folder_imports_nothing_above_it():
    edges = import_edges(_modules())
    assert edges["omnibench.run"] <= RUN_IMPORTS, (
        f"omnibench.run imports {sorted(edges['omnibench.run'] - RUN_IMPORTS)}; it may import only "
        f"{sorted(RUN_IMPORTS)} so that evaluation, attribution and the CLIs can import it")
    above = {m for m in _closure(edges, "omnibench.run")
             if not any(m == b or m.startswith(b + ".") for b in BELOW_RUN)}
    assert not above, f"omnibench.run reaches {sorted(above)} through its imports; they must stay in {BELOW_RUN}"


def test_the_generic_model_layer_never_imports_the_tiny_model():
    """omnibench.tiny (the embedded model built from scratch) uses omnibench.model; a real checkpoint loads
    through omnibench.model alone, so nothing there may reach omnibench.tiny, even through other modules."""
    edges = import_edges(_modules())
    generic = [m for m in edges if m == "omnibench.model" or m.startswith("omnibench.model.")]
    reached = {m: sorted(v for v in _closure(edges, m) if v == "omnibench.tiny" or v.startswith("omnibench.tiny."))
               for m in generic}
    assert not any(reached.values()), f"omnibench.model reaches the tiny model: { {m: v for m, v in reached.items() if v} }"
