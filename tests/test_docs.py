"""The documentation cannot rot: every Python example in ``docs/*.md`` and ``README.md``
runs, and every public name has a docstring.

Examples: each page's ```` ```python ```` blocks run in order in one namespace (a
fresh module per page, registered in ``sys.modules`` so functions defined there
import back by name, as replay needs), under ``retryx.testing.fake_time()`` so no
retry sleeps, with the working directory in a temporary folder. An HTML comment on
the line before a fence changes how it runs:

- ``<!-- skip-test -->``: not run (needs a real Redis, the network, ...);
- ``<!-- requires: tenacity -->``: run only when the named modules import
  (comma-separated); otherwise skipped, and the rest of the page still runs;
- ``<!-- pytest -->``: a self-contained test module, run by pytest in a
  subprocess (so fixtures such as ``retryx_clock`` come from the real plugin).
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import inspect
import itertools
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import retryx
from retryx import testing

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})[ \t]*(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P=ticks)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MARKER = re.compile(r"^\s*<!--\s*(?P<marker>[a-z-]+)(?::\s*(?P<arg>[^>]*?))?\s*-->\s*$")
_MARKERS = {"skip-test", "requires", "pytest"}


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a page."""

    page: Path
    line: int  # 1-based line of the first line of code
    source: str
    marker: str | None
    arg: str

    def compiled(self) -> types.CodeType:
        # Pad with newlines so tracebacks point at the Markdown line.
        return compile("\n" * (self.line - 1) + self.source, str(self.page), "exec")


def python_blocks(page: Path, text: str | None = None) -> list[Block]:
    """The ```` ```python ```` blocks of ``page`` (or of ``text``), with the marker before each."""
    if text is None:
        text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        info = match["info"].strip().split()
        if not info or info[0] not in ("python", "py"):
            continue
        start = text.count("\n", 0, match.start()) + 1  # the fence's line
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found = _MARKER.match(before)
        marker = arg = None
        if found:
            marker, arg = found["marker"], (found["arg"] or "")
            if marker not in _MARKERS:
                raise AssertionError(f"{page.name}:{start - 1}: unknown marker {marker!r}")
        body = textwrap.dedent(match["body"])
        blocks.append(Block(page, start + 1, body, marker, arg or ""))
    return blocks


def _missing(modules: str) -> list[str]:
    names = [m.strip() for m in modules.split(",") if m.strip()]
    return [m for m in names if importlib.util.find_spec(m) is None]


@pytest.fixture
def page_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A throwaway module to run a page in, importable by name, in a temporary cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETRYX_CONFIG", raising=False)
    name = f"retryx_docs_page_{id(tmp_path):x}"
    module = types.ModuleType(name)
    module.__file__ = str(tmp_path / f"{name}.py")
    sys.modules[name] = module
    try:
        yield module
    finally:
        sys.modules.pop(name, None)
        if "retryx.otel" in sys.modules:  # a page may have called instrument()
            sys.modules["retryx.otel"].uninstrument()


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run(page: Path, page_module: types.ModuleType, tmp_path: Path) -> None:
    """Every Python block of the page runs, in order, without sleeping."""
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python examples")
    skipped = []
    with testing.fake_time():
        for block in blocks:
            if block.marker == "skip-test":
                continue
            if block.marker == "requires" and (missing := _missing(block.arg)):
                skipped.append(f"line {block.line}: needs {', '.join(missing)}")
                continue
            if block.marker == "pytest":
                _run_pytest(block, tmp_path)
                continue
            exec(block.compiled(), page_module.__dict__)
    page_module.__dict__.clear()
    gc.collect()  # collect the examples' sockets here, under this test's warning filters
    if skipped:
        pytest.skip(f"{page.name}: some blocks skipped ({'; '.join(skipped)})")


def _run_pytest(block: Block, tmp_path: Path) -> None:
    test_file = tmp_path / f"test_docs_example_{block.line}.py"
    test_file.write_text(block.source, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == result.returncode, (
        f"{block.page.name}:{block.line}: the example test module failed\n{result.stdout}"
        f"{result.stderr}"
    )


def test_collector_sees_markers() -> None:
    """The collector finds indented blocks, their markers, and ignores other languages."""
    page = ROOT / "docs" / "index.md"
    assert python_blocks(page), "docs/index.md should have Python examples"
    sample = textwrap.dedent(
        """\
        text
        <!-- skip-test -->
        ```python
        raise SystemExit
        ```

        ```toml
        a = 1
        ```

            <!-- requires: tenacity, stamina -->
            ```python
            x = 1
            ```
        """
    )
    blocks = python_blocks(ROOT / "sample.md", sample)
    assert [("skip-test", ""), ("requires", "tenacity, stamina")] == [
        (b.marker, b.arg) for b in blocks
    ]
    assert "x = 1\n" == blocks[1].source
    assert 4 == blocks[0].line


# --- docstrings -----------------------------------------------------------------------

PUBLIC_MODULES = [
    "retryx",
    "retryx.backoff",
    "retryx.jitter",
    "retryx.events",
    "retryx.testing",
    "retryx.testing.servers",
    "retryx.sockets",
    "retryx.otel",
    "retryx.prometheus",
    "retryx.redis",
    "retryx.replay",
    "retryx.httpx",
    "retryx.requests",
    "retryx.asgi",
    "retryx.wsgi",
]


def _own_doc(obj: object) -> str | None:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if isinstance(obj, type) and doc and doc.startswith(f"{obj.__name__}("):
        return None  # the signature a dataclass writes when the class has no docstring
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def _attribute_docs(module: types.ModuleType) -> set[str]:
    """Module-level names followed by a string literal (an attribute docstring), in the
    module or in the private module it lazily takes names from (``_LAZY``)."""
    documented = _own_attribute_docs(module)
    lazy = _LAZY.get(module.__name__)
    if lazy is not None:
        documented |= _own_attribute_docs(importlib.import_module(lazy))
    return documented


def _value_documented(module: types.ModuleType, name: str, obj: object) -> bool:
    """An attribute docstring for ``name``, where the public module sets it or in the
    private retryx module it imports the very same object from."""
    if name in _attribute_docs(module):
        return True
    return any(
        getattr(private, name, None) is obj and name in _own_attribute_docs(private)
        for key, private in list(sys.modules.items())
        if key.startswith("retryx._")
    )


# Public modules whose module ``__getattr__`` serves names defined in a private module.
_LAZY = {"retryx.events": "retryx._event_records"}


def _own_attribute_docs(module: types.ModuleType) -> set[str]:
    source = inspect.getsource(module)
    body = ast.parse(source).body
    documented = set()
    for node, after in itertools.pairwise(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        is_doc = (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
            and after.value.value.strip()
        )
        if is_doc:
            documented |= {t.id for t in targets if isinstance(t, ast.Name)}
    return documented


def _public_objects() -> Iterator[tuple[str, object, types.ModuleType]]:
    for module_name in PUBLIC_MODULES:
        if module_name == "retryx.redis" and importlib.util.find_spec("redis") is None:
            continue  # the optional extra is not installed
        module = importlib.import_module(module_name)
        yield module_name, module, module
        for name in module.__all__:
            yield f"{module_name}.{name}", getattr(module, name), module


def _members(cls: type) -> Iterator[tuple[str, object]]:
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            yield name, value.fget
        elif isinstance(value, classmethod | staticmethod):
            yield name, value.__func__
        elif inspect.isfunction(value):
            yield name, value


def test_every_public_name_has_a_docstring() -> None:
    """Every name in ``retryx.__all__`` and in each public module's ``__all__`` (and every
    public method of their classes) has a docstring."""
    missing = []
    for qualname, obj, module in _public_objects():
        if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj):
            if _own_doc(obj) is None:
                missing.append(qualname)
        elif not _value_documented(module, qualname.rpartition(".")[2], obj):
            missing.append(f"{qualname} (a value without an attribute docstring)")
        if inspect.isclass(obj) and obj.__module__.startswith("retryx"):
            for name, member in _members(obj):
                if _own_doc(member) is None:
                    missing.append(f"{qualname}.{name}")
    assert [] == missing


def test_reference_covers_every_public_name() -> None:
    """The API reference (``docs/reference/``) has a ``::: retryx.NAME`` entry for every name
    in ``retryx.__all__`` (public modules included), and one for each optional module."""
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "reference").glob("*.md")
    )
    documented = set(re.findall(r"^:::\s+(\S+)", text, re.MULTILINE))
    optional = {"retryx.otel", "retryx.prometheus", "retryx.redis"}
    expected = {f"retryx.{name}" for name in retryx.__all__} | optional
    assert [] == sorted(expected - documented)


def test_public_modules_export_what_they_define() -> None:
    """Every public module has an ``__all__`` whose names exist (the docstring test reads it)."""
    for module_name in PUBLIC_MODULES:
        if module_name == "retryx.redis" and importlib.util.find_spec("redis") is None:
            continue
        module = importlib.import_module(module_name)
        assert [] == [n for n in module.__all__ if not hasattr(module, n)], module_name
    assert "retry" in retryx.__all__
