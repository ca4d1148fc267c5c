"""How ``overhead.py`` measures: settings, candidates, timed loops, sleep counting, results.

Nothing here knows a library: the candidates (``overhead_candidates``) say what to
build, this module times it the same way for all of them.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("asyncio", "redis", "opentelemetry")


Fn = Callable[..., Any]


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


class NotOffered(Exception):
    """A peer does not offer this scenario/mode (reported, not an error)."""


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


@dataclass
class ThreadResult:
    label: str
    kind: str
    note: str = ""
    rates: list[float] = field(default_factory=list)  # calls per second

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


def threaded_run(fn: Fn, n: int, k: int) -> float:
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
