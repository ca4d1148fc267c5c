"""The breaker's closed path, written once and generated into every caller.

A call through closed breakers takes no token and no lock, and on success books
nothing unless a breaker keeps a window, has a run of failures to end, or has a
subscriber to tell. That is the hot path of every guarded call, and a call costs
a Python frame, so its callers inline it: the drivers of ``@circuit_breaker``
(``_drivers``), the breaker's own ``_call`` and ``_call_with`` (``_breaker``) and
the failover sweeps (``_failover``). All of them generate it from
``closed_path`` (as attrs generates its methods), so the rule lives here only;
the model tests (``tests/test_breaker_model.py``,
``tests/test_breaker_paths_model.py``) run every generated form.

Generated code reads four names, which every namespace it is compiled in must
bind: ``closed`` (the closed state code), ``circuit_open`` (``CircuitOpenError``),
``error`` (``Exception``) and ``bus`` (``retryx._bus``). ``names()`` gives them.
"""

from __future__ import annotations

import linecache
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import _bus
from ._errors import CircuitOpenError

__all__ = [
    "CLOSED",
    "FORCED",
    "HALF_OPEN",
    "OPEN",
    "closed_path",
    "compile_source",
    "generate_breaker_calls",
    "generated_lazily",
    "indent_lines",
    "names",
]

# The breaker's state codes (``CircuitBreaker._state``): small ints, compared by value.
CLOSED = 0
OPEN = 1  # opened by failures: half-open once recovery_timeout has passed
HALF_OPEN = 2
FORCED = 3  # opened by hand: stays open until close() / reset()


def names() -> dict[str, Any]:
    """The names generated code reads (see the module docstring)."""
    return {"closed": CLOSED, "circuit_open": CircuitOpenError, "error": Exception, "bus": _bus}


def closed_path(
    breakers: Sequence[tuple[str, bool]],
    *,
    call: str,
    result: str = "result",
    on_failure: str | None = None,
    indent: int = 0,
) -> tuple[str, str]:
    """The closed path through ``breakers``, as ``(condition, block)`` source.

    Args:
        breakers: ``(expression, may_be_none)`` per breaker, outermost first; a
            breaker that may be ``None`` is skipped when it is.
        call: the expression of the guarded call (``await f(...)`` when async).
        result: the variable the block assigns the call's result to.
        on_failure: the statement that books a failure (``exc`` is bound), instead of
            each breaker's ``_on_failure(None, exc)``, innermost first.
        indent: spaces before every line of the block.

    ``condition`` is true while every breaker is closed: only then may the block run.
    A ``CircuitOpenError`` raised by the call (an inner breaker refusing) is no
    verdict on these breakers: it passes through unbooked.
    """
    inner_first = list(reversed(breakers))
    condition = " and ".join(
        f"({name} is None or {name}._state == closed)" if optional else f"{name}._state == closed"
        for name, optional in breakers
    )
    failure = [on_failure] if on_failure is not None else []
    success = []
    for name, optional in inner_first:
        if on_failure is None:
            book = f"{name}._on_failure(None, exc)"
            failure.append(f"if {name} is not None:\n    {book}" if optional else book)
        # Nothing to book without a window, a failure run to end, or a subscriber to tell.
        busy = f"{name}._window is not None or {name}._failures or bus._subscribers"
        if optional:
            busy = f"{name} is not None and ({busy})"
        success.append(f"if {busy}:\n    {name}._closed_success()")
    block = "\n".join(
        [
            "try:",
            f"    {result} = {call}",
            "except circuit_open:",
            "    raise",
            "except error as exc:",
            indent_lines("\n".join(failure), 4),
            "    raise",
            *success,
        ]
    )
    return condition, indent_lines(block, indent)


def indent_lines(text: str, width: int) -> str:
    """``text`` with ``width`` spaces before every non-blank line (``textwrap.indent``,
    without importing it)."""
    pad = " " * width
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


_making = threading.Lock()


class Generated:
    """A method generated on first use, not at import: the first lookup runs ``make(cls)``,
    which sets the real methods on ``cls`` in place of these descriptors."""

    __slots__ = ("cls", "make", "name")

    def __init__(self, cls: type, name: str, make: Callable[[type], None]) -> None:
        self.cls = cls
        self.name = name
        self.make = make

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        with _making:
            if self.cls.__dict__.get(self.name) is self:
                self.make(self.cls)
        return getattr(self.cls if obj is None else obj, self.name)


def generated_lazily(cls: type, names: Sequence[str], make: Callable[[type], None]) -> None:
    """Put ``Generated`` descriptors for ``names`` on ``cls``; ``make`` sets them all."""
    for name in names:
        setattr(cls, name, Generated(cls, name, make))


def compile_source(source: str, filename: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run generated ``source`` in ``namespace`` (returned), its lines kept for tracebacks."""
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace


# The breaker's call methods, sync and async from the same lines. While closed they run
# _guard's closed path; else a token is taken (a trial slot when half-open) and given
# back with the verdict. A CircuitOpenError raised by ``fn`` (an inner breaker
# refusing) is no verdict on this breaker's dependency: the slot goes back unjudged.
_CALL_TEMPLATE = """\
{A}def _call(self, fn, args, kwargs, recorder):
    if {CLOSED_ONE}:
{PATH_ONE}
        return result
    try:
        token = self._acquire()
    except circuit_open:
        recorder.rejected()
        raise
    try:
        result = {W}fn(*args, **kwargs)
    except circuit_open:
        self._release(token)
        raise
    except error as exc:
        self._on_failure(token, exc)
        raise
    except base_error:
        self._release(token)
        raise
    self._on_success(token)
    return result


{A}def _call_with(self, inner, fn, args, kwargs, recorder):
    if {CLOSED_TWO}:
{PATH_TWO}
        return result
    return {W}self.{CALL}(inner.{CALL}, (fn, args, kwargs, recorder), {{}}, recorder)
"""


def generate_breaker_calls(cls: type) -> None:
    """Make ``cls``'s (``CircuitBreaker``'s) ``_call`` and ``_call_with``, sync and async."""
    for is_async in (False, True):
        w = "await " if is_async else ""
        one = closed_path([("self", False)], call=f"{w}fn(*args, **kwargs)", indent=8)
        two = closed_path(
            [("self", False), ("inner", False)], call=f"{w}fn(*args, **kwargs)", indent=8
        )
        source = _CALL_TEMPLATE.format(
            A="async " if is_async else "",
            W=w,
            CALL="_call_async" if is_async else "_call",
            CLOSED_ONE=one[0],
            PATH_ONE=one[1],
            CLOSED_TWO=two[0],
            PATH_TWO=two[1],
        )
        flavour = "async" if is_async else "sync"
        namespace = {**names(), "base_error": BaseException}
        made = compile_source(source, f"<retryx breaker calls, {flavour}>", namespace)
        suffix = "_async" if is_async else ""
        for name in ("_call", "_call_with"):
            method = made[name]
            method.__qualname__ = f"CircuitBreaker.{name}{suffix}"
            method.__name__ = name + suffix
            setattr(cls, name + suffix, method)
