#!/usr/bin/env python
"""Side-by-side overhead of retryx and its peers, measured in ONE process.

Run from the repository root::

    python benchmarks/overhead.py            # full run (a few minutes)
    python benchmarks/overhead.py --quick    # tiny repeat counts (seconds), for smoke tests
    python benchmarks/overhead.py --json out.json

For every timed scenario and mode (function, coroutine function, bound method) the
candidates are a bare call, a do-nothing ``@wrapt.decorator`` pass-through, retryx and
each peer that offers the scenario. Samples are ``timeit.Timer.timeit`` loops; the
repeats are interleaved round-robin across the candidates of a scenario (the starting
candidate rotates every round) so machine noise hits all of them alike, and the report
gives the median ns per call with ratios against the bare call and the wrapt
pass-through measured in the same run. Nothing is subtracted from the raw numbers.

Coroutine functions are driven without an event loop (``coro.send(None)`` until
``StopIteration``), the same way for every candidate, so the numbers are the cost of the
wrappers and not of an event loop.

Targets are checked by this report (PASS/FAIL column), never by tests.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import itertools
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the working tree, not an installed copy
    sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402  (the peers import it anyway; needed for sleep detection)

import wrapt  # noqa: E402

HOSTS = ("a", "b", "c")
MODES = ("function", "coroutine", "method")
PEERS = ("tenacity", "stamina", "backoff", "pybreaker", "circuitbreaker")
HEAVY_MODULES = ("asyncio", "redis", "opentelemetry")
IMPORT_LIMIT_MS = 30.0
PER_RETRY_LIMIT_NS = 5_000.0
MEMORY_LIMIT_BYTES_PER_CALL = 1.0

Fn = Callable[..., Any]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    quick: bool
    rounds: int  # interleaved repeats per candidate
    sample_seconds: float  # target duration of one timeit sample
    threads: int
    thread_calls: int  # calls per thread
    thread_rounds: int
    memory_calls: int
    import_runs: int  # retryx
    peer_import_runs: int


FULL = Settings(
    quick=False,
    rounds=25,
    sample_seconds=0.01,
    threads=4,
    thread_calls=200_000,
    thread_rounds=5,
    memory_calls=100_000,
    import_runs=7,
    peer_import_runs=3,
)
QUICK = Settings(
    quick=True,
    rounds=3,
    sample_seconds=0.0005,
    threads=4,
    thread_calls=5_000,
    thread_rounds=1,
    memory_calls=5_000,
    import_runs=3,
    peer_import_runs=1,
)


# --------------------------------------------------------------------------- libraries


@dataclass
class Libs:
    """The libraries under test; ``None`` when one cannot be imported."""

    retryx: Any = None  # the module, or None
    retryx_error: str = ""
    peers: dict[str, Any] = field(default_factory=dict)  # name -> module or None
    peer_errors: dict[str, str] = field(default_factory=dict)


def load_retryx() -> tuple[ModuleType | None, str]:
    try:
        import retryx
        import retryx.backoff
        from retryx import CircuitBreaker, Policy, circuit_breaker, failover, retry  # noqa: F401
    except Exception as exc:  # not written yet, or broken: report, keep going
        return None, f"{type(exc).__name__}: {exc}"
    return retryx, ""


def load_libs() -> Libs:
    libs = Libs()
    libs.retryx, libs.retryx_error = load_retryx()
    for name in PEERS:
        try:
            libs.peers[name] = __import__(name)
        except Exception as exc:
            libs.peers[name] = None
            libs.peer_errors[name] = f"{type(exc).__name__}: {exc}"
    stamina = libs.peers["stamina"]
    if stamina is not None:
        stamina.set_testing(False)  # real retries, real (zero) waits
    return libs


def lib_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


# --------------------------------------------------------------------------- targets
# Fresh, undecorated callables: every candidate wraps its own copy.


def happy_target(mode: str) -> Fn:
    if mode == "coroutine":

        async def work_async(x: int) -> int:
            return x

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int) -> int:
            return x

        return work_method

    def work(x: int) -> int:
        return x

    return work


def stack_target(mode: str) -> Fn:
    """The full-stack callable receives the endpoint as keyword ``host``."""
    if mode == "coroutine":

        async def work_async(x: int, host: str | None = None) -> int:
            return x if host == "a" else -1

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int, host: str | None = None) -> int:
            return x if host == "a" else -1

        return work_method

    def work(x: int, host: str | None = None) -> int:
        return x if host == "a" else -1

    return work


class Flaky:
    """Makes callables that fail twice with ConnectionError, then succeed, cyclically."""

    def __init__(self) -> None:
        self.calls = [0]

    def target(self, mode: str) -> Fn:
        calls = self.calls
        if mode == "coroutine":

            async def work_async(x: int) -> int:
                calls[0] += 1
                if calls[0] % 3:
                    raise ConnectionError("flaky")
                return x

            return work_async

        def work(x: int) -> int:
            calls[0] += 1
            if calls[0] % 3:
                raise ConnectionError("flaky")
            return x

        return work


@wrapt.decorator
def wrapt_passthrough(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def hand_loop(fn: Fn, mode: str) -> Fn:
    """The floor of retrying: three tries, no sleep, no bookkeeping."""
    if mode == "coroutine":

        async def loop_async(x: int) -> Any:
            for _ in range(2):
                try:
                    return await fn(x)
                except ConnectionError:
                    pass
            return await fn(x)

        return loop_async

    def loop(x: int) -> Any:
        for _ in range(2):
            try:
                return fn(x)
            except ConnectionError:
                pass
        return fn(x)

    return loop


@wrapt.decorator
def wrapt_loop(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    for _ in range(2):
        try:
            return wrapped(*args, **kwargs)
        except ConnectionError:
            pass
    return wrapped(*args, **kwargs)


@wrapt.decorator
async def wrapt_loop_async(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    for _ in range(2):
        try:
            return await wrapped(*args, **kwargs)
        except ConnectionError:
            pass
    return await wrapped(*args, **kwargs)


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    label: str
    kind: str  # "bare" | "wrapt" | "retryx" | "peer"
    build: Callable[[str], Fn] | None  # mode -> callable to time (None: not offered)
    note: str = ""  # why it is not offered / could not be built
    # filled by the run
    timer: timeit.Timer | None = None
    number: int = 0
    samples: list[float] = field(default_factory=list)  # ns per call
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def best(self) -> float | None:
        return min(self.samples) if self.samples else None


def unavailable(label: str, kind: str, note: str) -> Candidate:
    return Candidate(label, kind, None, note)


def retryx_candidate(libs: Libs, label: str, build: Callable[[str], Fn]) -> Candidate:
    if libs.retryx is None:
        return unavailable(label, "retryx", "retryx: not importable")
    return Candidate(label, "retryx", build)


def peer_candidate(
    libs: Libs, label: str, needs: Sequence[str], build: Callable[[str], Fn]
) -> Candidate:
    missing = [n for n in needs if libs.peers.get(n) is None]
    if missing:
        return unavailable(label, "peer", f"{missing[0]}: {libs.peer_errors.get(missing[0], '?')}")
    return Candidate(label, "peer", build)


def retry_happy_candidates(libs: Libs) -> list[Candidate]:
    rx, ten, sta, bac = (
        libs.retryx,
        libs.peers["tenacity"],
        libs.peers["stamina"],
        libs.peers["backoff"],
    )
    return [
        Candidate("bare call", "bare", happy_target),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(happy_target(m))),
        retryx_candidate(libs, "retryx retry", lambda m: rx.retry(attempts=3)(happy_target(m))),
        peer_candidate(
            libs,
            "tenacity",
            ["tenacity"],
            lambda m: ten.retry(stop=ten.stop_after_attempt(3))(happy_target(m)),
        ),
        peer_candidate(
            libs,
            "stamina",
            ["stamina"],
            lambda m: sta.retry(on=ConnectionError, attempts=3)(happy_target(m)),
        ),
        peer_candidate(
            libs,
            "backoff",
            ["backoff"],
            lambda m: bac.on_exception(bac.expo, ConnectionError, max_tries=3)(happy_target(m)),
        ),
    ]


_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"bench-{prefix}-{next(_names)}"


def breaker_candidates(libs: Libs) -> list[Candidate]:
    rx, pyb, cb = libs.retryx, libs.peers["pybreaker"], libs.peers["circuitbreaker"]

    def build_pybreaker(mode: str) -> Fn:
        if mode == "coroutine":
            raise NotOffered("pybreaker: async support needs tornado")
        wrapped: Fn = pyb.CircuitBreaker(fail_max=5)(happy_target(mode))
        return wrapped

    return [
        Candidate("bare call", "bare", happy_target),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(happy_target(m))),
        retryx_candidate(
            libs,
            "retryx circuit_breaker",
            lambda m: rx.circuit_breaker(name=unique("breaker"), failure_threshold=5)(
                happy_target(m)
            ),
        ),
        peer_candidate(libs, "pybreaker", ["pybreaker"], build_pybreaker),
        peer_candidate(
            libs,
            "circuitbreaker",
            ["circuitbreaker"],
            lambda m: cb.circuit(failure_threshold=5)(happy_target(m)),
        ),
    ]


class NotOffered(Exception):
    """A peer does not offer this scenario/mode (reported, not an error)."""


def retryx_stack(libs: Libs, mode: str) -> Fn:
    rx = libs.retryx
    assert rx is not None
    fn = stack_target(mode)
    fn = rx.circuit_breaker(name=unique("stack"), failure_threshold=5)(fn)
    fn = rx.failover(hosts=list(HOSTS), param="host")(fn)
    return rx.retry(attempts=3)(fn)  # type: ignore[no-any-return]


def tenacity_pybreaker_stack(libs: Libs, mode: str) -> Fn:
    """tenacity retry around a hand-written sweep over per-host pybreaker breakers."""
    ten, pyb = libs.peers["tenacity"], libs.peers["pybreaker"]
    assert ten is not None
    assert pyb is not None
    raw = stack_target(mode)
    breakers = {h: pyb.CircuitBreaker(fail_max=5) for h in HOSTS}
    skip = (ConnectionError, pyb.CircuitBreakerError)
    deco = ten.retry(stop=ten.stop_after_attempt(3))

    if mode == "coroutine":
        # pybreaker's own async path needs tornado; its calling() context manager is
        # plain synchronous code and works around an await.
        async def sweep_async(x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    with breakers[h].calling():
                        return await raw(x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_async)  # type: ignore[no-any-return]
    if mode == "method":

        def sweep_method(self: Any, x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return breakers[h].call(raw, self, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_method)  # type: ignore[no-any-return]

    def sweep(x: int) -> Any:
        errors: dict[str, BaseException] = {}
        for h in HOSTS:
            try:
                return breakers[h].call(raw, x, host=h)
            except skip as exc:
                errors[h] = exc
        raise ConnectionError(f"all endpoints failed: {errors}")

    return deco(sweep)  # type: ignore[no-any-return]


def backoff_circuitbreaker_stack(libs: Libs, mode: str) -> Fn:
    """backoff retry around a hand-written sweep over per-host circuitbreaker breakers."""
    bac, cb = libs.peers["backoff"], libs.peers["circuitbreaker"]
    assert bac is not None
    assert cb is not None
    raw = stack_target(mode)
    breakers = {h: cb.CircuitBreaker(failure_threshold=5) for h in HOSTS}
    skip = (ConnectionError, cb.CircuitBreakerError)
    deco = bac.on_exception(bac.expo, ConnectionError, max_tries=3)

    if mode == "coroutine":

        async def sweep_async(x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return await breakers[h].call_async(raw, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_async)  # type: ignore[no-any-return]
    if mode == "method":

        def sweep_method(self: Any, x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return breakers[h].call(raw, self, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_method)  # type: ignore[no-any-return]

    def sweep(x: int) -> Any:
        errors: dict[str, BaseException] = {}
        for h in HOSTS:
            try:
                return breakers[h].call(raw, x, host=h)
            except skip as exc:
                errors[h] = exc
        raise ConnectionError(f"all endpoints failed: {errors}")

    return deco(sweep)  # type: ignore[no-any-return]


def stack_candidates(libs: Libs) -> list[Candidate]:
    return [
        Candidate("bare call", "bare", stack_bare),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(stack_bare(m))),
        retryx_candidate(libs, "retryx retry+failover+breaker", lambda m: retryx_stack(libs, m)),
        peer_candidate(
            libs,
            "tenacity + pybreaker (by hand)",
            ["tenacity", "pybreaker"],
            lambda m: tenacity_pybreaker_stack(libs, m),
        ),
        peer_candidate(
            libs,
            "backoff + circuitbreaker (by hand)",
            ["backoff", "circuitbreaker"],
            lambda m: backoff_circuitbreaker_stack(libs, m),
        ),
    ]


def stack_bare(mode: str) -> Fn:
    """The bare full-stack call: the same body, the endpoint given as a default."""
    if mode == "coroutine":

        async def work_async(x: int, host: str | None = "a") -> int:
            return x if host == "a" else -1

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int, host: str | None = "a") -> int:
            return x if host == "a" else -1

        return work_method

    def work(x: int, host: str | None = "a") -> int:
        return x if host == "a" else -1

    return work


def retry_cost_candidates(libs: Libs, flaky: dict[str, Flaky]) -> list[Candidate]:
    rx, ten, sta, bac = (
        libs.retryx,
        libs.peers["tenacity"],
        libs.peers["stamina"],
        libs.peers["backoff"],
    )

    def fresh(label: str, mode: str) -> Fn:
        flaky[label] = Flaky()
        return flaky[label].target(mode)

    def bare(m: str) -> Fn:
        return hand_loop(fresh("bare loop", m), m)

    def wrapped(m: str) -> Fn:
        deco = wrapt_loop_async if m == "coroutine" else wrapt_loop
        return deco(fresh("wrapt loop", m))

    return [
        Candidate("bare loop", "bare", bare),
        Candidate("wrapt loop", "wrapt", wrapped),
        retryx_candidate(
            libs,
            "retryx retry",
            lambda m: rx.retry(attempts=3, backoff=rx.backoff.none(), jitter="none")(
                fresh("retryx retry", m)
            ),
        ),
        peer_candidate(
            libs,
            "tenacity",
            ["tenacity"],
            lambda m: ten.retry(stop=ten.stop_after_attempt(3), wait=ten.wait_none())(
                fresh("tenacity", m)
            ),
        ),
        peer_candidate(
            libs,
            "stamina",
            ["stamina"],
            lambda m: sta.retry(
                on=ConnectionError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0
            )(fresh("stamina", m)),
        ),
        peer_candidate(
            libs,
            "backoff",
            ["backoff"],
            lambda m: bac.on_exception(
                bac.constant, ConnectionError, max_tries=3, interval=0, jitter=None
            )(fresh("backoff", m)),
        ),
    ]


# --------------------------------------------------------------------------- driving calls

SEND_ONCE = "try:\n    f(1).send(None)\nexcept StopIteration:\n    pass"
DRIVE = "c = f(1)\ntry:\n    while True:\n        c.send(None)\nexcept StopIteration:\n    pass"
STATEMENTS = {"function": "f(1)", "method": "o.m(1)", "coroutine": SEND_ONCE}


def namespace(obj: Fn, mode: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"gc": gc}
    if mode == "method":
        ns["o"] = type("Service", (), {"m": obj})()
    else:
        ns["f"] = obj
    return ns


def invoke(ns: dict[str, Any], mode: str) -> tuple[Any, int]:
    """One call; returns (result, number of times a coroutine yielded)."""
    if mode == "method":
        return ns["o"].m(1), 0
    if mode == "function":
        return ns["f"](1), 0
    coro = ns["f"](1)
    yields = 0
    try:
        while True:
            coro.send(None)
            yields += 1
            if yields > 100:
                coro.close()
                raise RuntimeError("coroutine keeps yielding: it needs a real event loop")
    except StopIteration as stop:
        return stop.value, yields


def prepare(
    cands: list[Candidate],
    mode: str,
    *,
    stmt: str | None = None,
    allow_yields: bool = False,
    check: Callable[[Candidate], str | None] | None = None,
) -> None:
    """Build each candidate for ``mode``, check one call returns 1, make its timer."""
    for c in cands:
        if c.build is None:
            continue
        try:
            obj = c.build(mode)
            ns = namespace(obj, mode)
            result, yields = invoke(ns, mode)
        except NotOffered as exc:
            c.note, c.build = str(exc), None
            continue
        except Exception as exc:
            c.note, c.build = f"error: {type(exc).__name__}: {exc}"[:200], None
            continue
        problem = None
        if result != 1:
            problem = f"error: wrong result {result!r}"
        elif yields and not allow_yields:
            problem = "error: yields to the event loop on the happy path"
        elif check is not None:
            problem = check(c)
        if problem:
            c.note, c.build = problem, None
            continue
        c.timer = timeit.Timer(stmt or STATEMENTS[mode], setup="gc.enable()", globals=ns)
        c.extra["py_calls"], c.extra["c_calls"] = count_calls(c.timer)
        c.extra["namespace"] = ns


def count_calls(timer: timeit.Timer) -> tuple[float, float]:
    """Python functions entered (generator/coroutine resumes included) and C functions
    called from Python, per call. Timing 10 and 20 calls and taking the difference
    cancels the loop's own events."""

    def events(number: int) -> tuple[int, int]:
        counts = [0, 0]

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                counts[0] += 1
            elif event == "c_call":
                counts[1] += 1

        sys.setprofile(profile)
        try:
            timer.timeit(number)
        finally:
            sys.setprofile(None)
        return counts[0], counts[1]

    py10, c10 = events(10)
    py20, c20 = events(20)
    return (py20 - py10) / 10, (c20 - c10) / 10


def calibrate(timer: timeit.Timer, target: float) -> int:
    """Like ``Timer.autorange`` but aiming at ``target`` seconds per sample."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target or number >= 10_000_000:
            return number
        # jump close to the target, at most x10 at a time
        scale = target / elapsed if elapsed > 0 else 10.0
        number = max(number + 1, int(number * min(10.0, scale * 1.1)))


def measure(cands: list[Candidate], settings: Settings) -> None:
    """Interleaved repeats: every round times each live candidate once, starting from a
    different candidate each round."""
    live = [c for c in cands if c.timer is not None]
    for c in live:
        assert c.timer is not None
        c.number = calibrate(c.timer, settings.sample_seconds)
    for r in range(settings.rounds):
        k = r % len(live) if live else 0
        for c in live[k:] + live[:k]:
            assert c.timer is not None
            c.samples.append(c.timer.timeit(c.number) / c.number * 1e9)


# --------------------------------------------------------------------------- sleep detection


class SleepCounter:
    """Counts ``time.sleep`` and ``asyncio.sleep`` calls, whatever their delay.

    ``time.sleep``/``asyncio.sleep`` are monkeypatched with counting wrappers; a
    profile hook also counts calls to the original functions that bypass the patch
    (a library that did ``from time import sleep`` at import time)."""

    def __init__(self) -> None:
        self.count = 0
        self.delays: list[float] = []

    def __enter__(self) -> SleepCounter:
        self._time_sleep = orig_time = time.sleep
        self._asyncio_sleep = orig_async = asyncio.sleep

        def counting_sleep(seconds: Any) -> None:
            self.count += 1
            self.delays.append(seconds)
            orig_time(seconds)

        async def counting_async_sleep(seconds: float, result: Any = None) -> Any:
            self.count += 1
            self.delays.append(seconds)
            return await orig_async(seconds, result)

        self._patched_codes = {counting_sleep.__code__, counting_async_sleep.__code__}
        async_code = orig_async.__code__

        seen: list[Any] = []  # asyncio.sleep frames already counted (resumes re-enter)

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "c_call" and arg is orig_time and frame.f_code not in self._patched_codes:
                self.count += 1
            elif (
                event == "call"
                and frame.f_code is async_code
                and not any(f is frame for f in seen)
                and (frame.f_back is None or frame.f_back.f_code not in self._patched_codes)
            ):
                seen.append(frame)
                self.count += 1

        time.sleep = counting_sleep
        asyncio.sleep = counting_async_sleep  # type: ignore[assignment]
        asyncio.tasks.sleep = counting_async_sleep  # type: ignore[assignment]
        sys.setprofile(profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)
        time.sleep = self._time_sleep
        asyncio.sleep = self._asyncio_sleep
        asyncio.tasks.sleep = self._asyncio_sleep


# --------------------------------------------------------------------------- scenarios


@dataclass
class TimingScenario:
    key: str
    title: str  # table header
    short: str  # name in the targets table
    mode: str
    candidates: list[Candidate]
    columns: tuple[str, ...] = ()

    def get(self, kind: str) -> Candidate | None:
        for c in self.candidates:
            if c.kind == kind:
                return c
        return None

    def peers(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "peer" and c.samples]


def run_timing(libs: Libs, settings: Settings) -> list[TimingScenario]:
    out: list[TimingScenario] = []
    for key, title, short, make in (
        ("retry", "retry happy path", "retry", retry_happy_candidates),
        ("breaker", "breaker happy path (closed)", "breaker", breaker_candidates),
        (
            "stack",
            "full stack happy path (retry + failover over 3 hosts + breaker)",
            "full stack",
            stack_candidates,
        ),
    ):
        for mode in MODES:
            cands = make(libs)
            prepare(cands, mode)
            measure(cands, settings)
            cols = ("overhead",) if key == "breaker" else ()
            out.append(
                TimingScenario(key, f"{title} - {mode}", f"{short}, {mode}", mode, cands, cols)
            )
    return out


def run_retry_cost(
    libs: Libs, settings: Settings, happy: list[TimingScenario]
) -> list[TimingScenario]:
    happy_fn = {s.mode: s for s in happy if s.key == "retry"}
    # per-retry cost is against the same candidate's happy path
    happy_label = {"bare loop": "bare", "wrapt loop": "wrapt"}
    out: list[TimingScenario] = []
    for mode in ("function", "coroutine"):
        flaky: dict[str, Flaky] = {}
        cands = retry_cost_candidates(libs, flaky)

        def check(c: Candidate, flaky: dict[str, Flaky] = flaky) -> str | None:
            calls = flaky[c.label].calls
            if calls[0] != 3:
                return f"error: expected 3 attempts, the function ran {calls[0]} time(s)"
            return None

        prepare(
            cands, mode, stmt=DRIVE if mode == "coroutine" else None, allow_yields=True, check=check
        )
        # does it call sleep() at zero delay?
        for c in cands:
            if c.timer is None:
                continue
            ns = c.extra["namespace"]
            with SleepCounter() as counter:
                for _ in range(3):
                    invoke(ns, mode)
            c.extra["sleeps_per_call"] = counter.count / 3
            c.extra["sleep_delays"] = sorted(set(counter.delays))
        for f in flaky.values():
            f.calls[0] = 0
        measure(cands, settings)
        happy_s = happy_fn.get(mode)
        for c in cands:
            ref = None
            if happy_s is not None:
                kind = happy_label.get(c.label)
                ref = (
                    happy_s.get(kind)
                    if kind
                    else next((h for h in happy_s.candidates if h.label == c.label), None)
                )
            if c.median is not None and ref is not None and ref.median is not None:
                c.extra["per_retry"] = (c.median - ref.median) / 2
        out.append(
            TimingScenario(
                "retry_cost",
                f"cost per retry (fails twice, then succeeds; zero waits) - {mode}",
                f"per retry, {mode}",
                mode,
                cands,
                ("per_retry", "sleeps"),
            )
        )
    return out


@dataclass
class ThreadResult:
    label: str
    kind: str
    note: str = ""
    rates: list[float] = field(default_factory=list)  # calls per second

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


def run_threads(libs: Libs, settings: Settings) -> list[ThreadResult]:
    rx, pyb, cb = libs.retryx, libs.peers["pybreaker"], libs.peers["circuitbreaker"]
    specs: list[tuple[str, str, Callable[[], Fn] | None, str]] = [
        ("bare call", "bare", lambda: happy_target("function"), ""),
        ("wrapt pass-through", "wrapt", lambda: wrapt_passthrough(happy_target("function")), ""),
    ]
    if rx is not None:
        specs.append(
            (
                "retryx circuit_breaker",
                "retryx",
                lambda: rx.circuit_breaker(name=unique("threads"), failure_threshold=5)(
                    happy_target("function")
                ),
                "",
            )
        )
    else:
        specs.append(
            (
                "retryx circuit_breaker",
                "retryx",
                None,
                "retryx: not importable",
            )
        )
    if pyb is not None:
        specs.append(
            (
                "pybreaker",
                "peer",
                lambda: pyb.CircuitBreaker(fail_max=5)(happy_target("function")),
                "",
            )
        )
    if cb is not None:
        specs.append(
            (
                "circuitbreaker",
                "peer",
                lambda: cb.circuit(failure_threshold=5)(happy_target("function")),
                "",
            )
        )

    results: list[ThreadResult] = []
    fns: list[Fn | None] = []
    for label, kind, make, note in specs:
        res = ThreadResult(label, kind, note)
        fn: Fn | None = None
        if make is not None:
            try:
                fn = make()
                if fn(1) != 1:
                    raise RuntimeError("wrong result")
            except Exception as exc:
                res.note, fn = f"error: {type(exc).__name__}: {exc}"[:200], None
        results.append(res)
        fns.append(fn)

    n, k = settings.thread_calls, settings.threads
    for r in range(settings.thread_rounds):
        order = list(range(len(results)))
        order = order[r % len(order) :] + order[: r % len(order)]
        for i in order:
            fn = fns[i]
            if fn is None:
                continue
            results[i].rates.append(k * n / _threaded_run(fn, n, k))
    return results


def _threaded_run(fn: Fn, n: int, k: int) -> float:
    barrier = threading.Barrier(k + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            for _ in range(n):
                fn(1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(k)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed


@dataclass
class MemoryResult:
    scenario: str
    mode: str
    label: str
    kind: str
    note: str = ""
    calls: int = 0
    retained: int | None = None  # bytes

    @property
    def per_call(self) -> float | None:
        return None if self.retained is None else self.retained / self.calls


def run_memory(libs: Libs, settings: Settings) -> list[MemoryResult]:
    out: list[MemoryResult] = []
    for scenario, make in (
        ("retry happy path", retry_happy_candidates),
        ("full stack", stack_candidates),
    ):
        for mode in ("function", "coroutine"):
            cands = make(libs)
            prepare(cands, mode)
            for c in cands:
                res = MemoryResult(scenario, mode, c.label, c.kind, c.note)
                out.append(res)
                if c.timer is None:
                    continue
                c.timer.timeit(1000)  # warm caches, lazy initialisation, free lists
                gc.collect()
                tracemalloc.start()
                try:
                    c.timer.timeit(100)
                    gc.collect()
                    before = tracemalloc.get_traced_memory()[0]
                    c.timer.timeit(settings.memory_calls)
                    gc.collect()
                    after = tracemalloc.get_traced_memory()[0]
                finally:
                    tracemalloc.stop()
                res.calls, res.retained = settings.memory_calls, after - before
    return out


@dataclass
class ImportResult:
    module: str
    runs_us: list[int] = field(default_factory=list)
    heavy: list[str] | None = None
    note: str = ""

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.runs_us) / 1000 if self.runs_us else None


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\| ( *)(\S+)\s*$")


def import_time_us(module: str) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    # Bytecode caches as an installed package has them (pip compiles at install):
    # with PYTHONDONTWRITEBYTECODE set, every run would compile from source.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, cwd=ROOT, check=False)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        )
    for line in proc.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m and not m.group(3) and m.group(4) == module:
            return int(m.group(2))
    raise RuntimeError(f"no top-level '{module}' line in -X importtime output")


def heavy_modules(module: str) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    code = (
        f"import sys\nimport {module}\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        )
    out = proc.stdout.strip()
    return out.split(",") if out else []


def run_imports(libs: Libs, settings: Settings) -> list[ImportResult]:
    out: list[ImportResult] = []
    for module in ("retryx", "wrapt", *PEERS):
        res = ImportResult(module)
        out.append(res)
        if module == "retryx" and libs.retryx is None:
            res.note = "retryx: not importable"
            continue
        if module != "retryx" and module != "wrapt" and libs.peers.get(module) is None:
            res.note = libs.peer_errors.get(module, "not installed")
            continue
        runs = settings.import_runs if module == "retryx" else settings.peer_import_runs
        try:
            import_time_us(module)  # warm-up: byte-compile, fill the OS file cache
            res.runs_us = [import_time_us(module) for _ in range(runs)]
            res.heavy = heavy_modules(module)
        except Exception as exc:
            res.note = f"error: {exc}"[:200]
    return out


# --------------------------------------------------------------------------- report


@dataclass
class Target:
    name: str
    measured: str
    status: str  # PASS | FAIL | N/A


def fmt_ns(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def print_timing(s: TimingScenario) -> None:
    bare, wr = s.get("bare"), s.get("wrapt")
    bare_m = bare.median if bare else None
    wrapt_m = wr.median if wr else None
    header = f"{'candidate':<36}{'ns/call':>10}{'min':>10}{'vs bare':>9}{'vs wrapt':>10}"
    header += f"{'py/C calls':>12}"
    if "overhead" in s.columns:
        header += f"{'overhead ns':>13}"
    if "per_retry" in s.columns:
        header += f"{'ns/retry':>10}{'sleeps/call':>13}"
    print(f"\n== {s.title} ==")
    print(header)
    print("-" * len(header))
    for c in s.candidates:
        if c.median is None:
            print(f"{c.label:<36}  {c.note or 'not measured'}")
            continue
        line = (
            f"{c.label:<36}{fmt_ns(c.median):>10}{fmt_ns(c.best):>10}"
            f"{fmt_x(ratio(c.median, bare_m)):>9}{fmt_x(ratio(c.median, wrapt_m)):>10}"
        )
        calls = f"{c.extra.get('py_calls', 0):g}/{c.extra.get('c_calls', 0):g}"
        line += f"{calls:>12}"
        if "overhead" in s.columns:
            line += f"{fmt_ns(None if bare_m is None else c.median - bare_m):>13}"
        if "per_retry" in s.columns:
            sleeps = c.extra.get("sleeps_per_call")
            line += f"{fmt_ns(c.extra.get('per_retry')):>10}"
            line += f"{'-' if sleeps is None else f'{sleeps:g}':>13}"
        print(line)
    rounds = max((len(c.samples) for c in s.candidates), default=0)
    print(
        f"(median of {rounds} interleaved samples; py/C calls: Python functions entered and"
        " C functions called, per call)"
    )


def print_threads(results: list[ThreadResult], settings: Settings) -> None:
    n, k = settings.thread_calls, settings.threads
    print(f"\n== {k} threads x {n:,} calls through one shared breaker ==")
    pyb = next((r.median for r in results if r.label == "pybreaker"), None)
    header = f"{'candidate':<36}{'calls/s':>14}{'min':>14}{'vs pybreaker':>14}"
    print(header)
    print("-" * len(header))
    for r in results:
        if r.median is None:
            print(f"{r.label:<36}  {r.note or 'not measured'}")
            continue
        vs = fmt_x(ratio(r.median, pyb))
        print(f"{r.label:<36}{r.median:>14,.0f}{min(r.rates):>14,.0f}{vs:>14}")


def print_memory(results: list[MemoryResult]) -> None:
    print("\n== memory retained per call (tracemalloc, after gc.collect()) ==")
    header = f"{'scenario':<30}{'candidate':<36}{'calls':>9}{'retained B':>12}{'B/call':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        where = f"{r.scenario} ({r.mode})"
        if r.retained is None:
            print(f"{where:<30}{r.label:<36}  {r.note or 'not measured'}")
            continue
        print(f"{where:<30}{r.label:<36}{r.calls:>9,}{r.retained:>12,}{r.per_call:>9.3f}")


def print_imports(results: list[ImportResult]) -> None:
    print("\n== import time (python -X importtime, cumulative, subprocess) ==")
    header = f"{'module':<16}{'median ms':>10}{'min ms':>9}{'runs':>6}  heavy modules loaded"
    print(header)
    print("-" * len(header))
    for r in results:
        if r.median_ms is None:
            print(f"{r.module:<16}  {r.note}")
            continue
        heavy = ", ".join(r.heavy or []) or "none"
        best = min(r.runs_us) / 1000
        print(f"{r.module:<16}{r.median_ms:>10.2f}{best:>9.2f}{len(r.runs_us):>6}  {heavy}")


def evaluate(
    timing: list[TimingScenario],
    costs: list[TimingScenario],
    threads: list[ThreadResult],
    memory: list[MemoryResult],
    imports: list[ImportResult],
) -> list[Target]:
    targets: list[Target] = []

    def add(name: str, measured: str, ok: bool | None) -> None:
        targets.append(Target(name, measured, "N/A" if ok is None else ("PASS" if ok else "FAIL")))

    def by(key: str) -> list[TimingScenario]:
        return [s for s in timing + costs if s.key == key]

    # happy paths against the wrapt pass-through
    for key, limit, what in (("retry", 1.0, "retry happy path"), ("stack", 2.0, "full stack")):
        for s in by(key):
            rx, wr = s.get("retryx"), s.get("wrapt")
            r = ratio(rx.median if rx else None, wr.median if wr else None)
            add(
                f"{what} <= {limit:.1f}x wrapt ({s.mode})",
                fmt_x(r),
                None if r is None else r <= limit,
            )
    for s in by("retry"):
        rx, wr = s.get("retryx"), s.get("wrapt")
        r = ratio(rx.median if rx else None, wr.median if wr else None)
        add(
            f"stretch: retry happy path <= 0.6x wrapt ({s.mode})",
            fmt_x(r),
            None if r is None else r <= 0.6,
        )

    # breaker overhead (retryx - bare) below every peer's
    for s in by("breaker"):
        bare, rx = s.get("bare"), s.get("retryx")
        peers = s.peers()
        if not (bare and bare.median is not None and rx and rx.median is not None and peers):
            add(f"breaker closed overhead < peers' ({s.mode})", "-", None)
            continue
        mine = rx.median - bare.median
        theirs = {p.label: p.median - bare.median for p in peers if p.median is not None}
        low = min(theirs, key=lambda k: theirs[k])
        add(
            f"breaker closed overhead < peers' ({s.mode})",
            f"{fmt_ns(mine)} ns vs {low} {fmt_ns(theirs[low])} ns",
            mine < theirs[low],
        )

    # 4-thread throughput
    rx_t = next((t for t in threads if t.kind == "retryx"), None)
    pyb_t = next((t for t in threads if t.label == "pybreaker"), None)
    r = ratio(rx_t.median if rx_t else None, pyb_t.median if pyb_t else None)
    add("threaded breaker throughput >= pybreaker's", fmt_x(r), None if r is None else r >= 1.0)

    # per retry
    for s in by("retry_cost"):
        rx = s.get("retryx")
        per = rx.extra.get("per_retry") if rx else None
        add(
            f"per-retry cost < {PER_RETRY_LIMIT_NS / 1000:g} us ({s.mode})",
            "-" if per is None else f"{fmt_ns(per)} ns",
            None if per is None else per < PER_RETRY_LIMIT_NS,
        )
        peer_per = {p.label: p.extra["per_retry"] for p in s.peers() if "per_retry" in p.extra}
        if per is None or not peer_per:
            add(f"per-retry cost below every peer's ({s.mode})", "-", None)
        else:
            low = min(peer_per, key=lambda k: peer_per[k])
            add(
                f"per-retry cost below every peer's ({s.mode})",
                f"{fmt_ns(per)} ns vs {low} {fmt_ns(peer_per[low])} ns",
                per < peer_per[low],
            )
        sleeps = rx.extra.get("sleeps_per_call") if rx else None
        add(
            f"no sleep() call at zero delay ({s.mode})",
            "-" if sleeps is None else f"{sleeps:g} per call",
            None if sleeps is None else sleeps == 0,
        )

    # every scenario faster than every peer
    for s in timing + costs:
        rx = s.get("retryx")
        peers = s.peers()
        if rx is None or rx.median is None or not peers:
            add(f"faster than every peer ({s.short})", "-", None)
            continue
        fastest = min(peers, key=lambda p: p.median or 0.0)
        add(
            f"faster than every peer ({s.short})",
            f"{fmt_x(ratio(rx.median, fastest.median))} of {fastest.label}",
            rx.median < (fastest.median or 0.0),
        )
    peer_rates = [t for t in threads if t.kind == "peer" and t.median is not None]
    if rx_t is None or rx_t.median is None or not peer_rates:
        add("faster than every peer (threaded breaker)", "-", None)
    else:
        best = max(peer_rates, key=lambda t: t.median or 0.0)
        add(
            "faster than every peer (threaded breaker)",
            f"{fmt_x(ratio(rx_t.median, best.median))} of {best.label} calls/s",
            rx_t.median > (best.median or 0.0),
        )

    # memory
    for m in memory:
        if m.kind != "retryx":
            continue
        pc = m.per_call
        add(
            f"memory ~0: < {MEMORY_LIMIT_BYTES_PER_CALL:g} B/call ({m.scenario}, {m.mode})",
            "-" if pc is None else f"{pc:.3f} B/call",
            None if pc is None else pc < MEMORY_LIMIT_BYTES_PER_CALL,
        )

    # import
    imp = next((i for i in imports if i.module == "retryx"), None)
    ms = imp.median_ms if imp else None
    add(
        f"import retryx < {IMPORT_LIMIT_MS:g} ms",
        "-" if ms is None else f"{ms:.2f} ms",
        None if ms is None else ms < IMPORT_LIMIT_MS,
    )
    heavy = imp.heavy if imp else None
    add(
        "import retryx loads no " + "/".join(HEAVY_MODULES),
        "-" if heavy is None else (", ".join(heavy) or "none loaded"),
        None if heavy is None else not heavy,
    )
    return targets


def print_targets(targets: list[Target], retryx_error: str) -> None:
    print("\n== targets ==")
    width = max(len(t.name) for t in targets) + 2
    mwidth = max(len(t.measured) for t in targets) + 2
    header = f"{'target':<{width}}{'measured':<{mwidth}}status"
    print(header)
    print("-" * len(header))
    for t in targets:
        print(f"{t.name:<{width}}{t.measured:<{mwidth}}{t.status}")
    counts = {s: sum(t.status == s for t in targets) for s in ("PASS", "FAIL", "N/A")}
    print(f"\nsummary: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['N/A']} N/A")
    if retryx_error:
        print(f"retryx: not importable ({retryx_error}); its rows and targets are N/A")


def machine_info(libs: Libs) -> dict[str, Any]:
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        affinity = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "versions": {
            "retryx": getattr(libs.retryx, "__version__", None) or lib_version("retryx"),
            **{n: lib_version(n) for n in ("wrapt", *PEERS)},
        },
    }


def to_json(
    settings: Settings,
    machine: dict[str, Any],
    libs: Libs,
    timing: list[TimingScenario],
    costs: list[TimingScenario],
    threads: list[ThreadResult],
    memory: list[MemoryResult],
    imports: list[ImportResult],
    targets: list[Target],
) -> dict[str, Any]:
    def cand(c: Candidate, bare: float | None, wr: float | None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "label": c.label,
            "kind": c.kind,
            "note": c.note,
            "median_ns": c.median,
            "min_ns": c.best,
            "samples_ns": c.samples,
            "loops_per_sample": c.number,
            "vs_bare": ratio(c.median, bare),
            "vs_wrapt": ratio(c.median, wr),
        }
        for k in ("per_retry", "sleeps_per_call", "sleep_delays", "py_calls", "c_calls"):
            if k in c.extra:
                d[k + ("_ns" if k == "per_retry" else "")] = c.extra[k]
        return d

    def scen(s: TimingScenario) -> dict[str, Any]:
        bare, wr = s.get("bare"), s.get("wrapt")
        bm, wm = (bare.median if bare else None), (wr.median if wr else None)
        return {
            "key": s.key,
            "title": s.title,
            "mode": s.mode,
            "candidates": [cand(c, bm, wm) for c in s.candidates],
        }

    return {
        "machine": machine,
        "settings": settings.__dict__,
        "retryx_error": libs.retryx_error,
        "scenarios": [scen(s) for s in timing + costs],
        "threads": [
            {
                "label": t.label,
                "kind": t.kind,
                "note": t.note,
                "calls_per_s": t.rates,
                "median": t.median,
            }
            for t in threads
        ],
        "memory": [
            {
                "scenario": m.scenario,
                "mode": m.mode,
                "label": m.label,
                "kind": m.kind,
                "note": m.note,
                "calls": m.calls,
                "retained_bytes": m.retained,
                "bytes_per_call": m.per_call,
            }
            for m in memory
        ],
        "imports": [
            {
                "module": i.module,
                "runs_us": i.runs_us,
                "median_ms": i.median_ms,
                "heavy": i.heavy,
                "note": i.note,
            }
            for i in imports
        ],
        "targets": [t.__dict__ for t in targets],
    }


SECTIONS = ("timing", "retry_cost", "threads", "memory", "import")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="tiny repeat counts (smoke test, seconds)"
    )
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument(
        "--only",
        metavar="SECTION",
        action="append",
        choices=SECTIONS,
        help="run only these sections (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    only = set(args.only or SECTIONS)

    # Libraries that log (stamina and retryx log each retry at WARNING) must not print
    # to stderr through logging.lastResort: records are still created, then dropped.
    logging.getLogger().addHandler(logging.NullHandler())

    libs = load_libs()
    machine = machine_info(libs)
    print(
        "retryx overhead benchmark"
        + (" (--quick: numbers are not meaningful)" if settings.quick else "")
    )
    print(f"machine: {machine['platform']} | {machine['processor']}")
    print(
        f"python:  {machine['python']} | cpu_count={machine['cpu_count']}"
        + (f" (usable: {machine['cpus_usable']})" if machine["cpus_usable"] else "")
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    if libs.retryx is None:
        print(f"retryx: not importable ({libs.retryx_error})")
    print(
        f"method: timeit samples of ~{settings.sample_seconds * 1000:g} ms, "
        f"{settings.rounds} interleaved rounds, median; gc enabled; "
        "coroutines driven with send(None), no event loop"
    )

    timing: list[TimingScenario] = []
    costs: list[TimingScenario] = []
    threads: list[ThreadResult] = []
    memory: list[MemoryResult] = []
    imports: list[ImportResult] = []
    if "timing" in only or "retry_cost" in only:
        timing = run_timing(libs, settings)
        if "timing" in only:
            for s in timing:
                print_timing(s)
        sys.stdout.flush()
    if "retry_cost" in only:
        costs = run_retry_cost(libs, settings, timing)
        for s in costs:
            print_timing(s)
        print("(ns/retry = (this call - the same candidate's happy-path call) / 2 retries;")
        print(" sleeps/call = time.sleep/asyncio.sleep calls per call, whatever the delay)")
        if "timing" not in only:
            timing = []
        sys.stdout.flush()
    if "threads" in only:
        threads = run_threads(libs, settings)
        print_threads(threads, settings)
        sys.stdout.flush()
    if "memory" in only:
        memory = run_memory(libs, settings)
        print_memory(memory)
        sys.stdout.flush()
    if "import" in only:
        imports = run_imports(libs, settings)
        print_imports(imports)

    targets = evaluate(timing, costs, threads, memory, imports)
    print_targets(targets, libs.retryx_error)

    if args.json:
        data = to_json(settings, machine, libs, timing, costs, threads, memory, imports, targets)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
