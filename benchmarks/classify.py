#!/usr/bin/env python
"""The cost of ``retryx.classify`` on a builtin socket fault and on real client faults.

Run from the repository root::

    python benchmarks/classify.py                  # working tree vs main, same run
    python benchmarks/classify.py --baseline HEAD~3
    python benchmarks/classify.py --quick          # tiny repeat counts (smoke test)

Each fault is raised once for real (a refused loopback port, through the client
itself), then classified over and over: ``timeit`` samples of about 10 ms,
25 rounds interleaved round-robin, the median ns per call (and the fastest
sample, steadier on a busy machine). The baseline is the
``retryx`` package of ``--baseline`` (a git ref, default ``main``) extracted to
a temporary directory and imported in the same process as ``retryx_baseline``,
so both are measured under the same noise; a fault it cannot judge still gets
a number (that of its generic rules). Targets (API section 14): the
builtin fault no slower than the baseline; a third-party fault under 2 us.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This folder holds a script named http.py: it must not shadow the stdlib's http.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
THIRD_PARTY_LIMIT_NS = 2_000.0


def _faults() -> dict[str, BaseException]:
    """Real faults, raised once against a refusing loopback port."""
    from retryx.testing import servers

    found: dict[str, BaseException] = {"ConnectionRefusedError (builtin)": ConnectionRefusedError()}
    with servers.refusing() as addr:
        url = f"http://{addr[0]}:{addr[1]}/"
        try:
            import requests

            try:
                requests.get(url, timeout=5)
            except requests.ConnectionError as exc:
                found["requests.ConnectionError (from urllib3)"] = exc
        except ImportError:
            pass
        try:
            import httpx

            try:
                httpx.get(url, timeout=5)
            except httpx.ConnectError as exc:
                found["httpx.ConnectError"] = exc
        except ImportError:
            pass
    return found


def _load_baseline(ref: str, into: Path) -> Callable[[BaseException], Any] | str:
    """``classify`` of ``ref``'s retryx, imported as the package ``retryx_baseline``."""
    archive = subprocess.run(
        ["git", "archive", ref, "retryx"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        return f"cannot read {ref}: {archive.stderr.decode().strip()}"
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    package = into / "retryx"
    spec = importlib.util.spec_from_file_location(
        "retryx_baseline", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        return f"cannot import {ref}'s retryx"
    module = importlib.util.module_from_spec(spec)
    sys.modules["retryx_baseline"] = module
    spec.loader.exec_module(module)
    classify: Callable[[BaseException], Any] = module.classify
    return classify


def measure(
    candidates: dict[str, Callable[[BaseException], Any]],
    faults: dict[str, BaseException],
    quick: bool,
) -> dict[tuple[str, str], tuple[float, float]]:
    """Median ns per call of each candidate on each fault, rounds interleaved."""
    rounds, sample = (3, 0.0005) if quick else (25, 0.01)
    timers: dict[tuple[str, str], tuple[timeit.Timer, int]] = {}
    for name, classify in candidates.items():
        for label, exc in faults.items():
            classify(exc)  # warm: per-type caches and the configuration load once
            timer = timeit.Timer("classify(exc)", globals={"classify": classify, "exc": exc})
            number, took = timer.autorange()
            timers[name, label] = (timer, max(1, int(number * sample / took)))
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in timers}
    keys = list(timers)
    for round_ in range(rounds):
        # Round-robin, from a different candidate each round: noise hits all alike.
        for key in keys[round_ % len(keys) :] + keys[: round_ % len(keys)]:
            timer, number = timers[key]
            samples[key].append(timer.timeit(number) / number * 1e9)
    return {key: (statistics.median(values), min(values)) for key, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git ref to compare with")
    parser.add_argument("--quick", action="store_true", help="tiny repeat counts")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} on {sys.platform}; baseline {args.baseline}")
    sys.path.insert(0, str(ROOT))  # the working tree
    from retryx import classify

    with tempfile.TemporaryDirectory() as tmp:
        base = _load_baseline(args.baseline, Path(tmp))
        candidates = {"now": classify}
        if isinstance(base, str):
            print(base)
        else:
            candidates["baseline"] = base
        results = measure(candidates, _faults(), args.quick)
    print(f"{'fault':40} {'baseline ns':>11} {'now ns':>8} {'ratio':>6} {'(min ns)':>16}  target")
    failed = False
    for (name, label), (ns, fastest) in results.items():
        if name != "now":
            continue
        before, before_min = results.get(("baseline", label), (None, None))
        if "builtin" in label:
            ok = before is None or ns <= before * 1.05  # within noise
            target = "<= baseline"
        else:
            ok = ns < THIRD_PARTY_LIMIT_NS
            target = "< 2000 ns"
        failed = failed or not ok
        shown = "-" if before is None else f"{before:.0f}"
        ratio = "-" if before is None else f"{ns / before:.2f}"
        mins = f"{fastest:.0f}" if before_min is None else f"{before_min:.0f} -> {fastest:.0f}"
        verdict = "PASS" if ok else "FAIL"
        print(f"{label:40} {shown:>11} {ns:8.0f} {ratio:>6} {mins:>16}  {target} {verdict}")
    return 0 if not failed or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
