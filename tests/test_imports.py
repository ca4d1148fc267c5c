"""retryx's own modules import each other without cycles (a shared model module breaks them).

The graph is read from the modules' ASTs: only imports that run when a module is
first imported count (module level, class bodies, ``try``/``if`` blocks), not those
inside functions or under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "retryx"


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file for every ``.py`` file of the package (packages by ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _all_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, those in functions included (not under TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _all_nodes(node.orelse)
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                yield inner


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported (not in functions)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                yield from _import_time_nodes(block)
            yield from _import_time_nodes(node.finalbody)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_time_nodes(node.body)


def import_graph(root: Path, package: str, *, lazy: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at import time (``lazy``: at any time)."""
    find = _all_nodes if lazy else _import_time_nodes
    modules = _modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in find(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            targets.add(source)
            # ``from . import x`` / ``from .a import b`` may name submodules.
            targets.update(f"{source}.{alias.name}" for alias in node.names)
        # A module's own package is imported before it, not by it: no edge back.
        graph[name] = {t for t in targets if t in modules and t != name and t != here}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # the graph has ~70 nodes: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
            visit(node)
    return sorted(found)


def test_the_graph_sees_a_cycle_through_a_relative_import(tmp_path: Path) -> None:
    """Two modules importing each other at module level form a cycle; a function-level
    import closes one only when deferred imports count, a TYPE_CHECKING one never."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("from . import a\n\nthing = 1\n")
    (pkg / "c.py").write_text("def f():\n    from .d import x\n")
    (pkg / "d.py").write_text("from .c import f\n")
    (pkg / "e.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .f import y\n"
    )
    (pkg / "f.py").write_text("from .e import z\n")

    graph = import_graph(pkg, "pkg")

    assert [["pkg.a", "pkg.b"]] == cycles(graph)
    assert [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]] == cycles(import_graph(pkg, "pkg", lazy=True))
    assert {"pkg.d": {"pkg.c"}, "pkg.c": set()} == {k: graph[k] for k in ("pkg.c", "pkg.d")}
    assert set() == import_graph(pkg, "pkg", lazy=True)["pkg.e"]


def test_no_import_cycles() -> None:
    """No cycle among retryx's modules in the imports that run at import time."""
    assert [] == cycles(import_graph(ROOT, "retryx"))


# The imports deferred into functions that close a cycle, each on purpose. Anything
# else deferred must not: a new cycle is a design question, not an import trick.
DEFERRED = {
    # ``@breaker`` decorates through circuit_breaker(), and the decorators make breakers.
    ("retryx._breaker", "retryx._decorators"),
    # The [faults] table of the configuration, read at the first fault after a load.
    ("retryx._clients", "retryx._config"),
    # `retryx config check` lines, only for that command.
    ("retryx._config", "retryx._config_describe"),
    # A [faults] rule is checked by the public retryx.faults, which reads the config.
    ("retryx._config_tables", "retryx.faults"),
    # A client's rule judges the exception it wraps with the default classifier.
    ("retryx._faults_db", "retryx._classify"),
    ("retryx._faults_db", "retryx._clients"),
    ("retryx._faults_http", "retryx._classify"),
    ("retryx._faults_http", "retryx._clients"),
    ("retryx._faults_rpc", "retryx._classify"),
    # retryx.replay still exports cli_list and cli_run, loaded on first use.
    ("retryx.replay", "retryx._cli_replay"),
    ("retryx._cli_replay", "retryx.replay"),
}


def test_deferred_imports_close_no_other_cycle() -> None:
    """Counting the imports deferred into functions, only the ``DEFERRED`` ones close
    cycles; every one of them is still there (the list does not rot)."""
    graph = import_graph(ROOT, "retryx", lazy=True)
    assert set() == {edge for edge in DEFERRED if edge[1] not in graph.get(edge[0], set())}
    pruned = {
        name: targets - {b for a, b in DEFERRED if a == name} for name, targets in graph.items()
    }
    assert [] == cycles(pruned)


def test_every_module_does_one_job_in_under_450_lines() -> None:
    """No module of retryx grows past ~450 lines (STYLE: a module does one job)."""
    too_long = {
        name: lines
        for name, path in _modules(ROOT, "retryx").items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert {} == too_long


def test_import_compiles_no_generated_code() -> None:
    """``import retryx`` compiles none of its generated code (each is a compile, paid on
    first use instead), and the breaker's calls appear once a breaker is used."""
    import subprocess
    import sys

    script = (
        "import linecache, retryx\n"
        "print(sorted(k for k in linecache.cache if k.startswith('<retryx')))\n"
        "retryx.CircuitBreaker('b')._call(lambda: 1, (), {}, None)\n"
        "print(sorted(k for k in linecache.cache if k.startswith('<retryx')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert [
        "[]",
        "['<retryx breaker calls, async>', '<retryx breaker calls, sync>']",
    ] == proc.stdout.splitlines()
