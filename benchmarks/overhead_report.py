"""How ``overhead.py`` reports: the tables, the targets (PASS/FAIL) and the JSON."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

from overhead_candidates import PEERS, Libs, lib_version
from overhead_harness import (
    HEAVY_MODULES,
    Candidate,
    ImportResult,
    MemoryResult,
    Settings,
    ThreadResult,
    TimingScenario,
)

IMPORT_LIMIT_MS = 30.0
PER_RETRY_LIMIT_NS = 5_000.0
MEMORY_LIMIT_BYTES_PER_CALL = 1.0


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
