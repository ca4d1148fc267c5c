"""The drivers of every pipeline, generated from one template.

A plain function (``def`` or ``async def``) is decorated into a plain function:
the pipeline's driver, with the attempt-1 path spelled out inline and the
pipeline's constants in closure cells. That is the cheapest thing CPython can
call: no wrapper object, no bound-method proxy for methods (a function in a class
body binds in C), no per-call lookups. Every other path (a failed attempt, a
nested call, a named policy, failover) is the pipeline's (``_pipeline.Pipeline``,
``_recovery``).

Every driver is generated from ``_TEMPLATE`` (as attrs generates its methods),
specialised to its pipeline: attempt 1 is the plain call, the breaker's closed path
(``_guard``) or ``Pipeline.attempt``, and only a pipeline whose policy may look at
the result gets that code. Then in one of three forms:

- as ``(wrapped, instance, args, kwargs)``: the wrapper of the ``wrapt`` pipeline
  that classmethod and staticmethod objects, callable objects, partials get;
- as ``(*args, **kwargs)``, the general form of a decorated function;
- and, where nothing can tell the difference, with the decorated function's exact
  parameters (``(self, user_id, *, timeout=5.0)``), which spares the argument
  tuple and dict of every call (about 100 ns, a fifth of a call). "Nothing can
  tell": no ``@fallback`` layer (its handler receives ``*args, **kwargs`` as the
  caller passed them), no ``@failover`` (it adds its keyword per endpoint), and no
  ``*args``/``**kwargs`` in the function. Any parameter name will do: the driver's
  own names carry a prefix (``_rx_``) that no parameter of the function starts with.

All come in a sync and an async flavour from the same lines, and each shape is
compiled once. The generated functions get the decorated function's globals (as a
proxy would show them), so the template uses closure cells only, never globals.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import keyword
import re
import threading
import types
from collections.abc import Sequence
from typing import Any

from . import _bus, _clock, _guard, _switches, events
from ._context import FINISHED, SCOPE
from ._errors import CircuitOpenError, NestedRetryError
from ._stats import _FOLD_AT

__all__ = ["MISSING", "function_driver", "pipeline_of_function", "proxy_driver"]

MISSING: Any = object()  # "no result yet", passed to the pipeline's recovery

# The one driver body, in the shape of one pipeline (as attrs generates its methods):
# {A} is "async " or "", {W} "await " or ""; {START_WHEN} when to run the nesting guard
# and the switches (Pipeline.start); {ATTEMPT} attempt 1 (the plain call, the breaker's
# closed path, or Pipeline.attempt); {PROBE} the look at a sync callable's first result;
# {CHECK_RESULT} the policy's look at the result (retry_if_result, budget, on_success),
# only in pipelines that may need it. Then, filled per function: {PARAMS} the
# parameters, {CALL} the call of the decorated function with them, {ARGS} and {KWARGS}
# the same arguments as a tuple and a dict, for the slow paths; {INSTANCE} what a
# @fallback handler gets first (wrapt's bound instance). Every name of the template
# gets a prefix no parameter of the decorated function starts with (_prefixed), so a
# parameter can be called anything.
_TEMPLATE = """\
def factory(pipeline, wrapped, get, set_, reset, clock, recover, attempt, guard_call,
            pending, append, fold, recorder, guard, fixed_policy, missing, closed,
            fold_at, length, bus, records, circuit_open, nested_error, error, finished,
            switches, bypass, base_error, probe):
    {A}def retryx_call({PARAMS}):
{NONLOCAL}        parent = get()
        start = clock.monotonic()
        head = [pipeline, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if {START_WHEN}:
                try:
                    policy = pipeline.start(head, parent)
                except nested_error as refused:
                    return {W}recover(
                        head, None, refused, missing, wrapped, {INSTANCE}, {ARGS}, {KWARGS}
                    )
                if policy is bypass:  # retryx switched off (set_active): one plain call
                    return {W}pipeline.bypass(wrapped, {ARGS}, {KWARGS})
            try:
{ATTEMPT}
            except error as exc:
                failed = exc
            except base_error as interrupted:
                pipeline.failed(head, interrupted)  # cancelled or interrupted: booked
                raise
            else:
{PROBE}{CHECK_RESULT}                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            pipeline.name, 1, clock.monotonic() - start, wrapped, {ARGS},
                            {KWARGS}, result
                        )
                    )
                return result
            # Attempts 2..n run outside attempt 1's handler: else each later fault would
            # get attempt 1's as its __context__ (chaining every attempt's frames, and
            # feeding the classifier's chain walk a fault that did not cause it).
            try:
                return {W}recover(
                    head, policy, failed, missing, wrapped, {INSTANCE}, {ARGS}, {KWARGS}
                )
            finally:
                failed = None  # the traceback holds this frame: no cycle through it
        finally:
            reset(token)
            # The call has ended (HEAD_STATE): drops the retry state (its last exception)
            # that a task or callback inheriting this scope would keep alive.
            head[5] = finished
    return retryx_call
"""

_ATTEMPT = {
    "plain": "result = {W}{CALL}",
    # The breaker's closed path (retryx._guard), else the breaker's own call.
    "guard": "if {GUARD_CLOSED}:\n{GUARD_PATH}\nelse:\n"
    "    result = {W}guard_call(wrapped, {ARGS}, {KWARGS}, recorder)",
    "attempt": "result = {W}attempt(head, {POLICY_ARG}wrapped, {ARGS}, {KWARGS})",
}
# A sync callable's first result is looked at once (Pipeline.first_result).
_PROBE = """\
if probe:
    probe = pipeline.first_result(result)
"""
_CHECK_RESULT = """\
if policy is not None:
    check = policy.retry_if_result
    # A verdict other than False (True, a delay, a Fault, None) is the pipeline's
    # to read (Pipeline.result_fault).
    if check is not None and (verdict := {CHECK}) is not False:
        return {W}recover(
            head, policy, None, result, wrapped, {INSTANCE}, {ARGS}, {KWARGS}, verdict
        )
    if policy.budget is not None:
        policy.budget.record_success()
    if policy.on_success is not None:
        return {W}pipeline.{FIRST_SUCCESS}(head, policy, result, wrapped, {ARGS}, {KWARGS})
"""
_KEYWORDS = frozenset(keyword.kwlist) | {"await", "async"}
_IDENTIFIER = re.compile(r"(?<![.\w{])([a-z_][a-z_0-9]*)\b")

_factories: dict[tuple[Any, ...], tuple[Any, types.CodeType]] = {}
_MAX_SHAPES = 512  # beyond that (functions made at run time?), the general form only
_factories_lock = threading.Lock()
# The file name of every generated driver: what tells retryx's functions from anyone
# else's (the code objects are renamed per decorated function).
_FILENAME = "<retryx driver "
_driver_codes: set[types.CodeType] = set()  # the inner code of each compiled shape
_PREFIX = "_rx_"


def _prefixed(source: str, prefix: str) -> str:
    """``source`` with ``prefix`` before each of its own names (not attributes, keywords,
    ``{PLACEHOLDERS}`` or comments)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return name if name in _KEYWORDS else prefix + name

    lines = []
    for line in source.splitlines(True):
        code, hash_, comment = line.partition("#")
        lines.append(_IDENTIFIER.sub(one, code) + hash_ + comment)
    return "".join(lines)


def _shape_of(pipeline: Any) -> tuple[str, bool, bool]:
    """What the driver of ``pipeline`` must do: (attempt 1's form, whether a named
    policy is looked up per call, whether the result may need a look)."""
    if pipeline.plain:
        form = "plain"
    elif pipeline.guard is not None:
        form = "guard"
    else:
        form = "attempt"
    return form, pipeline.named, pipeline.checks_result


def _factory(is_async: bool, shape: tuple[str, bool, bool], pieces: dict[str, str]) -> Any:
    """The compiled factory for one shape and one set of ``pieces`` (cached)."""
    key = (is_async, shape, *pieces.values())
    found = _factories.get(key)
    if found is not None:
        return found[0]
    with _factories_lock:
        found = _factories.get(key)
        if found is not None:
            return found[0]
        source = _source(is_async, shape, pieces)
        # A file name per shape, registered with linecache so tracebacks show the lines.
        flavour = "async " if is_async else ""
        filename = f"{_FILENAME}{len(_factories)}: {flavour}({pieces['PARAMS']})>"
        factory = _guard.compile_source(source, filename, {})[f"{pieces['PREFIX']}factory"]
        inner = next(c for c in factory.__code__.co_consts if isinstance(c, types.CodeType))
        _driver_codes.add(inner)
        _factories[key] = (factory, inner)
        return factory


def _source(is_async: bool, shape: tuple[str, bool, bool], pieces: dict[str, str]) -> str:
    form, named_policy, checks_result = shape
    w = "await " if is_async else ""
    guard_closed, guard_path = _guard.closed_path([("guard", False)], call=w + "{CALL}", indent=4)
    attempt = _ATTEMPT[form].format(
        W=w,
        CALL="{CALL}",
        ARGS="{ARGS}",
        KWARGS="{KWARGS}",
        POLICY_ARG="policy, " if is_async else "",
        GUARD_CLOSED=guard_closed,
        GUARD_PATH=guard_path,
    )
    check_result = ""
    if checks_result:
        check_result = _CHECK_RESULT.format(
            W=w,
            INSTANCE="{INSTANCE}",
            ARGS="{ARGS}",
            KWARGS="{KWARGS}",
            FIRST_SUCCESS="_first_success_async" if is_async else "_first_success_sync",
            # An async pipeline awaits an async retry_if_result (sync ones refuse it).
            CHECK="(v if (v := check(result)) is True or v is False else await pipeline.verdict(v))"
            if is_async
            else "check(result)",
        )
    template = _TEMPLATE.format(
        A="async " if is_async else "",
        W=w,
        NONLOCAL="" if is_async else "        nonlocal probe\n",
        # A named policy is looked up per call; a fixed one only when nested or switched.
        START_WHEN="True" if named_policy else "parent is not None or switches.slow",
        ATTEMPT=_guard.indent_lines(attempt, 16),
        PROBE="" if is_async else _guard.indent_lines(_PROBE, 16),
        CHECK_RESULT=_guard.indent_lines(check_result, 16),
        PARAMS="{PARAMS}",
        CALL="{CALL}",
        ARGS="{ARGS}",
        KWARGS="{KWARGS}",
        INSTANCE="{INSTANCE}",
    )
    return _prefixed(template, pieces["PREFIX"]).format(**pieces)


def _general(prefix: str) -> dict[str, str]:
    """The general form's pieces: ``(*args, **kwargs)``, called without a dict copy when
    there are no keywords."""
    p = prefix
    return {
        "PREFIX": p,
        "PARAMS": f"*{p}args, **{p}kwargs",
        "CALL": f"({p}wrapped(*{p}args, **{p}kwargs) if {p}kwargs else {p}wrapped(*{p}args))",
        "ARGS": f"{p}args",
        "KWARGS": f"{p}kwargs",
        "INSTANCE": "None",
    }


def _proxy(prefix: str) -> dict[str, str]:
    """The wrapper of the wrapt pipeline (classmethods, staticmethods, callable objects,
    partials): wrapt's signature, the callable (bound per call) and instance given."""
    p = prefix
    return {
        **_general(p),
        "PARAMS": f"{p}wrapped, {p}instance, {p}args, {p}kwargs",
        "INSTANCE": f"{p}instance",
    }


def _prefix_for(names: Sequence[str]) -> str:
    """A prefix none of ``names`` starts with (``_rx_`` unless a parameter does)."""
    prefix = _PREFIX
    for n in itertools.count():
        if not any(name.startswith(prefix) for name in names):
            return prefix
        prefix = f"_rx{n}_"
    raise AssertionError("unreachable")  # pragma: no cover


def _exact_pieces(func: types.FunctionType) -> dict[str, str] | None:
    """The template pieces for ``func``'s exact parameters, or ``None`` when it has
    ``*args`` or ``**kwargs``."""
    code = func.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    positional = code.co_varnames[: code.co_argcount]
    keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    prefix = _prefix_for((*positional, *keyword_only))
    params = list(positional)
    if code.co_posonlyargcount:
        params.insert(code.co_posonlyargcount, "/")
    if keyword_only:
        params += ["*", *keyword_only]
    by_keyword = ", ".join(f"{name}={name}" for name in keyword_only)
    call_args = ", ".join([*positional, *([by_keyword] if by_keyword else [])])
    args = f"({', '.join(positional)}{',' if len(positional) == 1 else ''})"
    kwargs = "{" + ", ".join(f"{name!r}: {name}" for name in keyword_only) + "}"
    return {
        "PREFIX": prefix,
        "PARAMS": ", ".join(params),
        "CALL": f"{prefix}wrapped({call_args})",
        "ARGS": args,
        "KWARGS": kwargs,
        "INSTANCE": "None",
    }


def function_driver(pipeline: Any, wrapped: Any, exact: bool) -> Any:
    """The decorated function for ``wrapped`` (a plain function or builtin) and ``pipeline``.

    ``exact``: the caller allows the exact-parameters form (see the module docstring).
    """
    pieces = None
    if exact and type(wrapped) is types.FunctionType and len(_factories) < _MAX_SHAPES:
        pieces = _exact_pieces(wrapped)
    call = _build(pipeline, wrapped, pieces or _general(_PREFIX))
    code = call.__code__
    name = getattr(wrapped, "__name__", code.co_name)
    qualname = getattr(wrapped, "__qualname__", name)
    if isinstance(name, str) and isinstance(qualname, str):
        # Named as the decorated function, so a call with wrong arguments says
        # "fetch() missing 1 required positional argument", not a template name.
        code = code.replace(co_name=name, co_qualname=qualname)
    namespace = getattr(wrapped, "__globals__", None)
    if not isinstance(namespace, dict):
        namespace = call.__globals__
    # The decorated function's globals, as a proxy would show them: tools that
    # resolve string annotations through __globals__ find its module.
    call = types.FunctionType(code, namespace, code.co_name, None, call.__closure__)
    if pieces is not None:
        # Its defaults too: the exact form applies them itself.
        call.__defaults__ = wrapped.__defaults__
        call.__kwdefaults__ = wrapped.__kwdefaults__
    functools.update_wrapper(call, wrapped)
    call.__retryx__ = pipeline  # type: ignore[attr-defined]
    return call


def proxy_driver(pipeline: Any) -> Any:
    """The wrapper function of ``pipeline``'s ``wrapt`` wrapper (wrapt's signature)."""
    return _build(pipeline, None, _proxy(_PREFIX))


def _build(pipeline: Any, wrapped: Any, pieces: dict[str, str]) -> Any:
    """A driver of shape ``pieces`` over ``wrapped``, its cells taken from ``pipeline``."""
    is_async: bool = pipeline.is_async
    factory = _factory(is_async, _shape_of(pipeline), pieces)
    recorder = pipeline.recorder
    guard = pipeline.guard
    return factory(
        pipeline,
        wrapped,
        SCOPE.get,
        SCOPE.set,
        SCOPE.reset,
        _clock,
        pipeline.recover,
        pipeline.attempt,
        None if guard is None else (guard._call_async if is_async else guard._call),
        recorder.pending,
        recorder.pending.append,
        recorder.fold,
        recorder,
        guard,
        pipeline.fixed_policy,
        MISSING,
        _guard.CLOSED,
        _FOLD_AT,
        len,
        _bus,
        events,
        CircuitOpenError,
        NestedRetryError,
        Exception,
        FINISHED,
        _switches.switches,
        _switches.BYPASS,
        BaseException,
        not is_async,  # probe: only a sync callable's first result is looked at
    )


def pipeline_of_function(obj: Any) -> Any:
    """The pipeline of a function made by ``function_driver``, else ``None``.

    The code's file name is checked too: a user's ``functools.wraps`` over a
    decorated function copies ``__dict__`` (and so ``__retryx__``), but is not ours.
    """
    if type(obj) is not types.FunctionType or not obj.__code__.co_filename.startswith(_FILENAME):
        return None
    return obj.__dict__.get("__retryx__")
