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
import json
import logging
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the working tree, not an installed copy
    sys.path.insert(0, str(ROOT))


from overhead_candidates import (  # noqa: E402
    MODES,
    PEERS,
    Flaky,
    Libs,
    breaker_candidates,
    happy_target,
    load_libs,
    retry_cost_candidates,
    retry_happy_candidates,
    stack_candidates,
    unique,
    wrapt_passthrough,
)
from overhead_harness import (  # noqa: E402
    DRIVE,
    FULL,
    QUICK,
    Candidate,
    Fn,
    ImportResult,
    MemoryResult,
    Settings,
    SleepCounter,
    ThreadResult,
    TimingScenario,
    heavy_modules,
    import_time_us,
    invoke,
    measure,
    prepare,
    threaded_run,
)
from overhead_report import (  # noqa: E402
    evaluate,
    machine_info,
    print_imports,
    print_memory,
    print_targets,
    print_threads,
    print_timing,
    to_json,
)


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
            results[i].rates.append(k * n / threaded_run(fn, n, k))
    return results


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
