"""What type checkers see matches what runs: the lazily loaded modules are the ones
typed for checkers, ``PolicyFields`` is exactly ``Policy``'s fields, and the static
checks themselves (``tests/typing``) run under mypy and pyright in CI (``.ci/run``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import retryx
from retryx import _policy

ROOT = Path(__file__).resolve().parents[1]


def _type_checking_imports() -> set[str]:
    """The names ``retryx/__init__.py`` imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse((ROOT / "retryx" / "__init__.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names |= {alias.name for alias in stmt.names}
    return names


def test_every_lazy_module_is_typed_for_checkers() -> None:
    """Each module ``retryx.__getattr__`` loads on first use is imported for checkers."""
    assert set(retryx._LAZY) == _type_checking_imports()


def test_every_lazy_module_is_served_at_run_time() -> None:
    """``retryx.NAME`` loads each lazy module on first use."""
    for name in retryx._LAZY:
        assert f"retryx.{name}" == getattr(retryx, name).__name__


def test_import_retryx_loads_no_lazy_module() -> None:
    """A plain ``import retryx`` loads none of them (the checkers' imports do not run)."""
    probe = (
        "import json, sys, retryx; "
        "print(json.dumps(sorted(f'retryx.{n}' for n in retryx._LAZY "
        "if f'retryx.{n}' in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert [] == json.loads(done.stdout)


def _annotations(class_name: str) -> dict[str, str]:
    tree = ast.parse(Path(_policy.__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                stmt.target.id: ast.unparse(stmt.annotation)
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    raise AssertionError(f"no class {class_name} in retryx/_policy.py")


def test_policy_fields_match_the_policy() -> None:
    """``retry(**fields)`` is typed by ``PolicyFields``: the same names and annotations as
    ``Policy``'s fields, so a field added to one and not the other fails here."""
    assert _annotations("Policy") == _annotations("PolicyFields")


def test_ci_runs_both_checkers_on_the_typing_tests() -> None:
    """``.ci/run`` type-checks ``tests/typing`` with mypy and pyright, and pyright is pinned
    in the test extra with strict settings for that directory."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "mypy --strict tests/typing" in ci
    assert "pyright tests/typing" in ci
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"pyright[nodejs]==' in pyproject
    assert 'strict = ["tests/typing"]' in pyproject


def test_the_plugin_fixtures_yield_typed_values() -> None:
    """No fixture of the pytest plugin yields ``Any``: the servers' ``Address`` (a
    ``(host, port)`` tuple) or a factory returning one."""
    from retryx.testing import _plugin

    source = Path(_plugin.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    returns = {
        node.name: ast.unparse(node.returns)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("retryx_") and node.returns
    }
    assert len(returns) >= 7
    assert {} == {name: text for name, text in returns.items() if "Iterator[Any]" in text}
    assert {} == {name: text for name, text in returns.items() if text.endswith("Any]]")}


def test_breaker_settings_match_the_circuit_breaker() -> None:
    """``circuit_breaker(**settings)`` is typed by ``BreakerSettings``: the keyword
    arguments of ``CircuitBreaker`` with the same annotations."""
    import inspect

    from retryx import CircuitBreaker
    from retryx._decorators import BreakerSettings

    parameters = inspect.signature(CircuitBreaker).parameters
    expected = {name: str(p.annotation) for name, p in parameters.items()}
    assert expected == {
        k: str(v.__forward_arg__) for k, v in BreakerSettings.__annotations__.items()
    }
