"""The drivers of every pipeline, generated from one template.

A plain function (``def`` or ``async def``) is decorated into a plain function:
the pipeline's driver, with the attempt-1 path spelled out inline and the
pipeline's constants in closure cells. That is the cheapest thing CPython can
call: no wrapper object, no bound-method proxy for methods (a function in a class
body binds in C), no per-call lookups. Every other path (a failed attempt, a
nested call, a named policy, failover) is the runner's (``_pipeline.Runner``).

Every driver is generated from ``_TEMPLATE`` (as attrs generates its methods):

- as ``(wrapped, instance, args, kwargs)``: the wrapper of the ``wrapt`` pipeline
  that classmethod and staticmethod objects, callable objects, partials get;
- as ``(*args, **kwargs)``, the general form of a decorated function;
- and, where nothing can tell the difference, with the decorated function's exact
  parameters (``(self, user_id, *, timeout=5.0)``), which spares the argument
  tuple and dict of every call (about 100 ns, a fifth of a call). "Nothing can
  tell": no ``@fallback`` layer (its handler receives ``*args, **kwargs`` as the
  caller passed them), no ``@failover`` (it adds its keyword per endpoint), no
  ``*args``/``**kwargs`` in the function, and no parameter named like one of the
  driver's own variables.

All come in a sync and an async flavour from the same lines, and each shape is
compiled once. The generated functions get the decorated function's globals (as a
proxy would show them), so the template uses closure cells only, never globals.
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
from typing import Any

from . import _bus, _clock, _guard, _switches, events
from ._context import FINISHED, SCOPE
from ._errors import CircuitOpenError, NestedRetryError
from ._stats import _FOLD_AT

__all__ = ["MISSING", "function_driver", "proxy_driver", "runner_of_function"]

MISSING: Any = object()  # "no result yet", passed to the runner's recovery

# The one driver body. {A} is "async " or "", {W} "await " or ""; {NAME} the
# function's name (renamed after the decorated function later); {PARAMS} the
# parameters, {CALL} the call of the decorated function with them, {ARGS} and
# {KWARGS} the same arguments as a tuple and a dict, for the runner's slow paths;
# {INSTANCE} what a @fallback handler gets first (wrapt's bound instance); and
# {POLICY_ARG} the policy for the async attempt (its attempt_timeout bounds it); {PROBE}
# "probe" (sync: look at the first result, see Runner.first_result) or "False" (async).
_TEMPLATE = """\
def factory(runner, wrapped, get, set_, reset, clock, recover, attempt, guard_call,
            pending, append, fold, recorder, plain, guard, checks_result, fixed,
            fixed_policy, missing, closed, fold_at, length, bus, records,
            circuit_open, nested_error, error, finished, switches, bypass, base_error,
            probe):
    {A}def {NAME}({PARAMS}):
        nonlocal probe
        parent = get()
        start = clock.monotonic()
        head = [runner, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if parent is not None or not fixed or switches.slow:
                try:
                    policy = runner.start(head, parent)
                except nested_error as refused:
                    return {W}recover(
                        head, None, refused, missing, wrapped, {INSTANCE}, {ARGS}, {KWARGS}
                    )
                if policy is bypass:  # retryx switched off (set_active): one plain call
                    return {W}runner.bypass(wrapped, {ARGS}, {KWARGS})
            try:
                if plain:
                    result = {W}{CALL}
                elif guard is not None and {GUARD_CLOSED}:
                    # The breaker's closed path, inlined (retryx._guard).
{GUARD_PATH}
                elif guard is not None:
                    result = {W}guard_call(wrapped, {ARGS}, {KWARGS}, recorder)
                else:
                    result = {W}attempt(head, {POLICY_ARG}wrapped, {ARGS}, {KWARGS})
            except error as exc:
                failed = exc
            except base_error as interrupted:
                runner.failed(head, interrupted)  # cancelled or interrupted: booked, not retried
                raise
            else:
                if {PROBE}:  # a sync callable's first result (Runner.first_result)
                    probe = runner.first_result(result)
                if checks_result and policy is not None:
                    check = policy.retry_if_result
                    # A verdict other than False (True, a delay, a Fault, None) is the
                    # runner's to read (Runner.result_fault).
                    if check is not None and (verdict := {CHECK}) is not False:
                        return {W}recover(
                            head, policy, None, result, wrapped, {INSTANCE}, {ARGS}, {KWARGS},
                            verdict
                        )
                    if policy.budget is not None:
                        policy.budget.record_success()
                    if policy.on_success is not None:
                        return {W}runner.{FIRST_SUCCESS}(
                            head, policy, result, wrapped, {ARGS}, {KWARGS}
                        )
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            runner.name, 1, clock.monotonic() - start, wrapped, {ARGS},
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
            # STATE: ended. Drops the retry state (its last exception) that a task or
            # callback inheriting this scope would keep alive; current() skips it.
            head[5] = finished
    return {NAME}
"""

# The general form's pieces: it calls without a dict copy when there are no keywords.
_GENERAL = {
    "PARAMS": "*args, **kwargs",
    "CALL": "(wrapped(*args, **kwargs) if kwargs else wrapped(*args))",
    "ARGS": "args",
    "KWARGS": "kwargs",
    "INSTANCE": "None",
}
# The wrapper of the wrapt pipeline (classmethods, staticmethods, callable objects,
# partials): wrapt's signature, the callable (bound per call) and instance given.
_PROXY = {**_GENERAL, "PARAMS": "wrapped, instance, args, kwargs", "INSTANCE": "instance"}

_factories: dict[tuple[str, ...], tuple[Any, types.CodeType]] = {}
_MAX_SHAPES = 512  # beyond that (functions made at run time?), the general form only
_factories_lock = threading.Lock()
# The file name of every generated driver: what tells retryx's functions from anyone
# else's (the code objects are renamed per decorated function).
_FILENAME = "<retryx driver "
_driver_codes: set[types.CodeType] = set()  # the inner code of each compiled shape
_reserved: frozenset[str] = frozenset()  # the template's own names, learnt on first use


def _factory(is_async: bool, pieces: dict[str, str]) -> Any:
    """The compiled factory for one shape (cached)."""
    key = (str(is_async), *pieces.values())
    found = _factories.get(key)
    if found is not None:
        return found[0]
    with _factories_lock:
        found = _factories.get(key)
        if found is not None:
            return found[0]
        guard_closed, guard_path = _guard.closed_path(
            [("guard", False)], call=("await " if is_async else "") + pieces["CALL"], indent=20
        )
        source = _TEMPLATE.format(
            GUARD_CLOSED=guard_closed,
            GUARD_PATH=guard_path,
            A="async " if is_async else "",
            W="await " if is_async else "",
            NAME="retryx_call",
            POLICY_ARG="policy, " if is_async else "",
            PROBE="False" if is_async else "probe",  # (compiled away when async)
            FIRST_SUCCESS="_first_success_async" if is_async else "_first_success_sync",
            # An async pipeline awaits an async retry_if_result (sync ones refuse it).
            CHECK="(v if (v := check(result)) is True or v is False else await runner.verdict(v))"
            if is_async
            else "check(result)",
            **pieces,
        )
        # A file name per shape, registered with linecache so tracebacks show the lines.
        flavour = "async " if is_async else ""
        filename = f"{_FILENAME}{len(_factories)}: {flavour}({pieces['PARAMS']})>"
        factory = _guard.compile_source(source, filename, {})["factory"]
        inner = next(c for c in factory.__code__.co_consts if isinstance(c, types.CodeType))
        _driver_codes.add(inner)
        _factories[key] = (factory, inner)
        return factory


def _exact_pieces(func: types.FunctionType) -> dict[str, str] | None:
    """The template pieces for ``func``'s exact parameters, or ``None`` when unsafe."""
    code = func.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    positional = code.co_varnames[: code.co_argcount]
    keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    if not _reserved.isdisjoint((*positional, *keyword_only)):
        return None
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
        "PARAMS": ", ".join(params),
        "CALL": f"wrapped({call_args})",
        "ARGS": args,
        "KWARGS": kwargs,
        "INSTANCE": "None",
    }


def function_driver(runner: Any, wrapped: Any, exact: bool) -> Any:
    """The decorated function for ``wrapped`` (a plain function or builtin) and ``runner``.

    ``exact``: the caller allows the exact-parameters form (see the module docstring).
    """
    global _reserved
    if not _reserved:
        _reserved = _names_of_template()
    pieces = None
    if exact and type(wrapped) is types.FunctionType and len(_factories) < _MAX_SHAPES:
        pieces = _exact_pieces(wrapped)
    call = _build(runner, wrapped, pieces or _GENERAL)
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
    call.__retryx__ = runner  # type: ignore[attr-defined]
    return call


def proxy_driver(runner: Any) -> Any:
    """The wrapper function of ``runner``'s ``wrapt`` pipeline (wrapt's signature)."""
    return _build(runner, None, _PROXY)


def _build(runner: Any, wrapped: Any, pieces: dict[str, str]) -> Any:
    """A driver of shape ``pieces`` over ``wrapped``, its cells taken from ``runner``."""
    is_async: bool = runner.is_async
    factory = _factory(is_async, pieces)
    recorder = runner.recorder
    guard = runner.guard
    return factory(
        runner,
        wrapped,
        SCOPE.get,
        SCOPE.set,
        SCOPE.reset,
        _clock,
        runner.recover,
        runner.attempt,
        None if guard is None else (guard._call_async if is_async else guard._call),
        recorder.pending,
        recorder.pending.append,
        recorder.fold,
        recorder,
        runner.plain,
        guard,
        runner.checks_result,
        runner._named_policy is None,  # a named policy is looked up per call
        runner._policy,
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


def runner_of_function(obj: Any) -> Any:
    """The runner of a function made by ``function_driver``, else ``None``.

    The code's file name is checked too: a user's ``functools.wraps`` over a
    decorated function copies ``__dict__`` (and so ``__retryx__``), but is not ours.
    """
    if type(obj) is not types.FunctionType or not obj.__code__.co_filename.startswith(_FILENAME):
        return None
    return obj.__dict__.get("__retryx__")


def _names_of_template() -> frozenset[str]:
    code = _factory(False, _GENERAL).__code__
    inner = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset((*code.co_varnames, *inner.co_varnames, *inner.co_freevars))
