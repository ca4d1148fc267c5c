#!/usr/bin/env python
"""The generated driver (``retryx/_drivers.py``, compiled with ``exec``) against plain closures.

Run from the repository root::

    python benchmarks/drivers.py            # a few minutes on a quiet machine
    python benchmarks/drivers.py --quick    # seconds, for smoke tests

Four forms of the same retry pipeline (``@retry(attempts=3)``, happy path) around the
same function, sync and async:

- ``bare``: the undecorated function (the floor);
- ``exec, exact``: what ``retryx.retry`` builds today, the template compiled with the
  function's exact parameters;
- ``closure, exact``: the template's body copied below into a hand-written ``def`` with
  the same exact parameters, so ``exec`` is the only difference;
- ``closure, *args``: the same body in a hand-written ``def (*args, **kwargs)``, which is
  what plain closures (no code generation) could offer for every signature.

The hand-written forms replace ``_drivers._factory`` while the pipeline is decorated, so
everything else (cells, renaming, ``functools.update_wrapper``) is retryx's own. If the
template's factory no longer takes the arguments copied here, those rows are skipped with
a note: copy the template's body again.

Samples are ``timeit`` loops interleaved round-robin over the forms (the first form rotates
every round), so machine load hits all of them alike; the report gives the median ns per
call and ratios against ``exec, exact``. Coroutines are driven with ``send(None)``, no
event loop. Then the cost of decorating 1,000 functions, each with its own signature and
all with the same one, each in a fresh ``python -c`` (the shape cache is per process).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import itertools
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the working tree, not an installed copy
    sys.path.insert(0, str(ROOT))

import retryx  # noqa: E402
from retryx import _drivers  # noqa: E402

Factory = Callable[..., Any]

# --------------------------------------------------------------------------- the copies
# The body of ``_drivers._TEMPLATE`` (sync and async), hand-written. Keep in step with it.


def sync_exact_factory(
    pipeline,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    guard,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    def retryx_call(user_id, *, timeout=5.0):
        nonlocal probe
        parent = get()
        start = clock.monotonic()
        head = [pipeline, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if parent is not None or switches.slow:
                try:
                    policy = pipeline.start(head, parent)
                except nested_error as refused:
                    return recover(
                        head,
                        None,
                        refused,
                        missing,
                        wrapped,
                        None,
                        (user_id,),
                        {"timeout": timeout},
                    )
                if policy is bypass:
                    return pipeline.bypass(wrapped, (user_id,), {"timeout": timeout})
            try:
                result = wrapped(user_id, timeout=timeout)
            except error as exc:
                failed = exc
            except base_error as interrupted:
                pipeline.failed(head, interrupted)
                raise
            else:
                if probe:
                    probe = pipeline.first_result(result)
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            pipeline.name,
                            1,
                            clock.monotonic() - start,
                            wrapped,
                            (user_id,),
                            {"timeout": timeout},
                            result,
                        )
                    )
                return result
            try:
                return recover(
                    head, policy, failed, missing, wrapped, None, (user_id,), {"timeout": timeout}
                )
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


def sync_star_factory(
    pipeline,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    guard,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    def retryx_call(*args, **kwargs):
        nonlocal probe
        parent = get()
        start = clock.monotonic()
        head = [pipeline, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if parent is not None or switches.slow:
                try:
                    policy = pipeline.start(head, parent)
                except nested_error as refused:
                    return recover(head, None, refused, missing, wrapped, None, args, kwargs)
                if policy is bypass:
                    return pipeline.bypass(wrapped, args, kwargs)
            try:
                result = wrapped(*args, **kwargs) if kwargs else wrapped(*args)
            except error as exc:
                failed = exc
            except base_error as interrupted:
                pipeline.failed(head, interrupted)
                raise
            else:
                if probe:
                    probe = pipeline.first_result(result)
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            pipeline.name,
                            1,
                            clock.monotonic() - start,
                            wrapped,
                            args,
                            kwargs,
                            result,
                        )
                    )
                return result
            try:
                return recover(head, policy, failed, missing, wrapped, None, args, kwargs)
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


def async_exact_factory(
    pipeline,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    guard,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    async def retryx_call(user_id, *, timeout=5.0):
        parent = get()
        start = clock.monotonic()
        head = [pipeline, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if parent is not None or switches.slow:
                try:
                    policy = pipeline.start(head, parent)
                except nested_error as refused:
                    return await recover(
                        head,
                        None,
                        refused,
                        missing,
                        wrapped,
                        None,
                        (user_id,),
                        {"timeout": timeout},
                    )
                if policy is bypass:
                    return await pipeline.bypass(wrapped, (user_id,), {"timeout": timeout})
            try:
                result = await wrapped(user_id, timeout=timeout)
            except error as exc:
                failed = exc
            except base_error as interrupted:
                pipeline.failed(head, interrupted)
                raise
            else:
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            pipeline.name,
                            1,
                            clock.monotonic() - start,
                            wrapped,
                            (user_id,),
                            {"timeout": timeout},
                            result,
                        )
                    )
                return result
            try:
                return await recover(
                    head, policy, failed, missing, wrapped, None, (user_id,), {"timeout": timeout}
                )
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


def async_star_factory(
    pipeline,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    guard,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    async def retryx_call(*args, **kwargs):
        parent = get()
        start = clock.monotonic()
        head = [pipeline, parent, start, None, None, None]
        token = set_(head)
        try:
            policy = fixed_policy
            if parent is not None or switches.slow:
                try:
                    policy = pipeline.start(head, parent)
                except nested_error as refused:
                    return await recover(head, None, refused, missing, wrapped, None, args, kwargs)
                if policy is bypass:
                    return await pipeline.bypass(wrapped, args, kwargs)
            try:
                result = await (wrapped(*args, **kwargs) if kwargs else wrapped(*args))
            except error as exc:
                failed = exc
            except base_error as interrupted:
                pipeline.failed(head, interrupted)
                raise
            else:
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(
                        records.Succeeded(
                            pipeline.name,
                            1,
                            clock.monotonic() - start,
                            wrapped,
                            args,
                            kwargs,
                            result,
                        )
                    )
                return result
            try:
                return await recover(head, policy, failed, missing, wrapped, None, args, kwargs)
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


# Version 1's body (one generic body for every pipeline, the layers checked per call),
# kept to measure what specialising the body per pipeline buys.
def generic(old: Factory) -> Factory:
    """Today's factory signature over a version-1 body (its per-call flags computed)."""

    def factory(pipeline: Any, *cells: Any) -> Any:
        (wrapped, get, set_, reset, clock, recover, attempt, guard_call, pending, append) = cells[
            :10
        ]
        fold, recorder, guard, fixed_policy, *rest = cells[10:]
        return old(
            pipeline,
            wrapped,
            get,
            set_,
            reset,
            clock,
            recover,
            attempt,
            guard_call,
            pending,
            append,
            fold,
            recorder,
            pipeline.plain,
            guard,
            pipeline.checks_result,
            pipeline._named_policy is None,
            fixed_policy,
            *rest,
        )

    return factory


def sync_generic_factory(
    runner,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    plain,
    guard,
    checks_result,
    fixed,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    def retryx_call(user_id, *, timeout=5.0):
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
                    return recover(
                        head,
                        None,
                        refused,
                        missing,
                        wrapped,
                        None,
                        (user_id,),
                        {"timeout": timeout},
                    )
                if policy is bypass:
                    return runner.bypass(wrapped, (user_id,), {"timeout": timeout})
            try:
                if plain:
                    result = wrapped(user_id, timeout=timeout)
                elif guard is not None and guard._state == closed:
                    try:
                        result = wrapped(user_id, timeout=timeout)
                    except circuit_open:
                        raise
                    except error as exc:
                        guard._on_failure(None, exc)
                        raise
                    if guard._window is not None or guard._failures:
                        guard._closed_success()
                elif guard is not None:
                    result = guard_call(wrapped, (user_id,), {"timeout": timeout}, recorder)
                else:
                    result = attempt(head, wrapped, (user_id,), {"timeout": timeout})
            except error as exc:
                failed = exc
            except base_error as interrupted:
                runner.failed(head, interrupted)
                raise
            else:
                if probe:
                    probe = runner.first_result(result)
                if checks_result and policy is not None:
                    check = policy.retry_if_result
                    if check is not None and check(result):
                        return recover(
                            head,
                            policy,
                            None,
                            result,
                            wrapped,
                            None,
                            (user_id,),
                            {"timeout": timeout},
                        )
                    if policy.budget is not None:
                        policy.budget.record_success()
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(records.Succeeded(runner.name, 1, clock.monotonic() - start))
                return result
            try:
                return recover(
                    head, policy, failed, missing, wrapped, None, (user_id,), {"timeout": timeout}
                )
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


def async_generic_factory(
    runner,
    wrapped,
    get,
    set_,
    reset,
    clock,
    recover,
    attempt,
    guard_call,
    pending,
    append,
    fold,
    recorder,
    plain,
    guard,
    checks_result,
    fixed,
    fixed_policy,
    missing,
    closed,
    fold_at,
    length,
    bus,
    records,
    circuit_open,
    nested_error,
    error,
    finished,
    switches,
    bypass,
    base_error,
    probe,
):
    async def retryx_call(user_id, *, timeout=5.0):
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
                    return await recover(
                        head,
                        None,
                        refused,
                        missing,
                        wrapped,
                        None,
                        (user_id,),
                        {"timeout": timeout},
                    )
                if policy is bypass:
                    return await runner.bypass(wrapped, (user_id,), {"timeout": timeout})
            try:
                if plain:
                    result = await wrapped(user_id, timeout=timeout)
                elif guard is not None and guard._state == closed:
                    try:
                        result = await wrapped(user_id, timeout=timeout)
                    except circuit_open:
                        raise
                    except error as exc:
                        guard._on_failure(None, exc)
                        raise
                    if guard._window is not None or guard._failures:
                        guard._closed_success()
                elif guard is not None:
                    result = await guard_call(wrapped, (user_id,), {"timeout": timeout}, recorder)
                else:
                    result = await attempt(head, policy, wrapped, (user_id,), {"timeout": timeout})
            except error as exc:
                failed = exc
            except base_error as interrupted:
                runner.failed(head, interrupted)
                raise
            else:
                if False:  # the template's PROBE for async
                    probe = runner.first_result(result)
                if checks_result and policy is not None:
                    check = policy.retry_if_result
                    if check is not None and (
                        v
                        if (v := check(result)) is True or v is False or v is None
                        else await runner.verdict(v)
                    ):
                        return await recover(
                            head,
                            policy,
                            None,
                            result,
                            wrapped,
                            None,
                            (user_id,),
                            {"timeout": timeout},
                        )
                    if policy.budget is not None:
                        policy.budget.record_success()
                append(clock.monotonic() - start)
                if length(pending) > fold_at:
                    fold()
                if bus._subscribers:
                    bus.emit(records.Succeeded(runner.name, 1, clock.monotonic() - start))
                return result
            try:
                return await recover(
                    head, policy, failed, missing, wrapped, None, (user_id,), {"timeout": timeout}
                )
            finally:
                failed = None
        finally:
            reset(token)
            head[5] = finished

    return retryx_call


def fetch(user_id: int, *, timeout: float = 5.0) -> int:
    return user_id


async def afetch(user_id: int, *, timeout: float = 5.0) -> int:
    return user_id


@contextlib.contextmanager
def factory_replaced(factory: Factory) -> Iterator[None]:
    """Make ``_drivers`` build its drivers with ``factory`` instead of the compiled template."""
    saved = _drivers._factory
    _drivers._factory = lambda *_: factory  # type: ignore[assignment]
    try:
        yield
    finally:
        _drivers._factory = saved  # type: ignore[assignment]


def template_matches() -> str | None:
    """``None`` when the template's factory takes what the copies take, else why not."""
    real = _drivers._factory(False, ("plain", False, False), _drivers._general("_rx_"))
    want = list(inspect.signature(sync_exact_factory).parameters)
    got = [name.removeprefix("_rx_") for name in inspect.signature(real).parameters]
    if want != got:
        return f"the template's factory now takes {got}; copy its body again"
    return None


def forms(is_async: bool) -> dict[str, Callable[..., Any]]:
    func: Callable[..., Any] = afetch if is_async else fetch
    built: dict[str, Callable[..., Any]] = {
        "bare": func,
        "exec, exact": retryx.retry(attempts=3)(func),
    }
    if template_matches() is None:
        exact, star = (
            (async_exact_factory, async_star_factory)
            if is_async
            else (sync_exact_factory, sync_star_factory)
        )
        with factory_replaced(exact):
            built["closure, exact"] = retryx.retry(attempts=3)(func)
        with factory_replaced(star):
            built["closure, *args"] = retryx.retry(attempts=3)(func)
        old = async_generic_factory if is_async else sync_generic_factory
        with factory_replaced(generic(old)):
            built["v1 body, exact"] = retryx.retry(attempts=3)(func)
    return built


SYNC_CALLS = {"positional": "f(1)", "keyword": "f(1, timeout=2.0)"}
ASYNC_CALLS = {
    "positional": "try:\n    f(1).send(None)\nexcept StopIteration:\n    pass",
    "keyword": "try:\n    f(1, timeout=2.0).send(None)\nexcept StopIteration:\n    pass",
}


def check(f: Callable[..., Any], is_async: bool) -> None:
    """Each form returns the function's result (a broken copy must not be timed)."""
    if is_async:
        coro = f(7)
        try:
            coro.send(None)
        except StopIteration as stop:
            value = stop.value
        else:
            raise AssertionError("the coroutine did not finish")
        assert 7 == value
    else:
        assert 7 == f(7, timeout=1.0)


def time_forms(
    built: dict[str, Callable[..., Any]], stmt: str, *, rounds: int, number: int
) -> dict[str, float]:
    """Median ns per call of each form, over ``rounds`` interleaved rounds."""
    names = list(built)
    timers = {n: timeit.Timer(stmt, globals={"f": built[n]}) for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)  # rotate the first form every round
        for n in names[shift:] + names[:shift]:
            samples[n].append(timers[n].timeit(number) / number * 1e9)
    return {n: statistics.median(v) for n, v in samples.items()}


# --------------------------------------------------------------------------- decoration

DECORATE = """
import time, retryx
ns = {{}}
src = "\\n".join(
    "def f{{i}}({{params}}):\\n    return 0".format(
        i=i, params="a, b=1" if {same} else f"a{{i}}, b{{i}}=1, *, c{{i}}=2"
    )
    for i in range({n})
)
exec(src, ns)
funcs = [ns[f"f{{i}}"] for i in range({n})]
deco = retryx.retry(attempts=3)
start = time.perf_counter()
for fn in funcs:
    deco(fn)
print(time.perf_counter() - start, len(retryx._drivers._factories))
"""


def decorate_seconds(n: int, *, same: bool) -> tuple[float, int]:
    """Seconds to decorate ``n`` fresh functions in a new interpreter, and the number of
    driver shapes compiled (``_drivers`` compiles at most 512, then uses the general form).
    """
    proc = subprocess.run(
        [sys.executable, "-c", DECORATE.format(n=n, same=same)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=True,
    )
    seconds, shapes = proc.stdout.split()
    return float(seconds), int(shapes)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, for smoke tests")
    opts = parser.parse_args(argv)
    rounds, number, decorations, repeats = (
        (3, 2_000, 50, 1) if opts.quick else (31, 50_000, 1_000, 5)
    )
    print(f"python {sys.version.split()[0]}; {rounds} interleaved rounds of {number:,} calls")
    mismatch = template_matches()
    if mismatch is not None:
        print(f"note: closure rows skipped: {mismatch}")
    for is_async in (False, True):
        built = forms(is_async)
        for f in built.values():
            check(f, is_async)
        for label, stmt in (ASYNC_CALLS if is_async else SYNC_CALLS).items():
            medians = time_forms(built, stmt, rounds=rounds, number=number)
            base = medians["exec, exact"]
            flavour = "async" if is_async else "sync"
            print(f"\n== {flavour}, {label} call: median ns per call ==")
            for name, ns in medians.items():
                print(f"  {name:<16} {ns:8.1f} ns   x{ns / base:5.2f} of exec, exact")
    print(
        f"\n== decorating {decorations:,} functions "
        f"(fresh interpreter each; median of {repeats}) =="
    )
    results: dict[bool, list[float]] = {True: [], False: []}
    shapes: dict[bool, int] = {}
    for _, same in itertools.product(range(repeats), (False, True)):  # interleaved
        seconds, shapes[same] = decorate_seconds(decorations, same=same)
        results[same].append(seconds)
    for same, label in ((False, "each its own signature"), (True, "all the same signature")):
        s = statistics.median(results[same])
        print(
            f"  {label:<24} {s * 1e3:8.1f} ms   {s / decorations * 1e6:7.1f} us per function"
            f"   ({shapes[same]} shapes compiled)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
