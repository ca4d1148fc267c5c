#!/usr/bin/env python
"""The same calls timed on two checkouts of retryx, alternating, in fresh processes.

Run from anywhere::

    git worktree add --detach /tmp/before <rev>
    python benchmarks/compare_trees.py /tmp/before .          # ~1 minute
    python benchmarks/compare_trees.py /tmp/before . --rounds 2 --quick

Each round runs one process per tree (the order alternates every round) that times
every case below with ``timeit`` and prints the median ns per call; the report gives,
per case, the median over rounds for each tree and the ratio after / before. A refactor
must keep every ratio within noise (about +-5% on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# Times each case in the tree on PYTHONPATH; prints {case: median ns per call}.
CHILD = r"""
import json, sys, timeit, statistics
import retryx
from retryx import CircuitBreaker, circuit_breaker, failover, retry
from retryx.testing import fake_time

@retry(attempts=3)
def plain(x):
    return x

@circuit_breaker(CircuitBreaker("closed"))
def guarded(x):
    return x

@retry(attempts=3)
@failover(["a", "b", "c"])
@circuit_breaker(CircuitBreaker("stack"))
def full(x, *, host=retryx.ENDPOINT):
    return x

@retry(attempts=3)
@failover(["a", "b", "c"])
@circuit_breaker(CircuitBreaker("astack"))
async def afull(x, *, host=retryx.ENDPOINT):
    return x

failures = [0]

@retry(attempts=3, backoff="none", jitter="none")
def flaky(x):
    failures[0] += 1
    if failures[0] % 3:
        raise ConnectionError("down")
    return x

def run(coro):
    try:
        coro.send(None)
    except StopIteration:
        pass

cases = {
    "retry, function": "plain(1)",
    "breaker, function": "guarded(1)",
    "full stack, function": "full(1)",
    "full stack, coroutine": "run(afull(1))",
    "two retries, function": "flaky(1)",
}
number, repeat = int(sys.argv[1]), int(sys.argv[2])
out = {}
with fake_time():
    for name, stmt in cases.items():
        timer = timeit.Timer(stmt, globals=globals())
        out[name] = statistics.median(timer.timeit(number) / number * 1e9 for _ in range(repeat))
print(json.dumps(out))
"""


def measure(tree: Path, number: int, repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(number), str(repeat)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the checkout to compare against")
    parser.add_argument("after", type=Path, help="the checkout under test")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    opts = parser.parse_args(argv)
    number, repeat = (500, 3) if opts.quick else (20_000, 15)
    trees = {"before": opts.before.resolve(), "after": opts.after.resolve()}
    samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for r in range(opts.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for label in order:
            for case, ns in measure(trees[label], number, repeat).items():
                samples[label].setdefault(case, []).append(ns)
    print(f"{opts.rounds} alternating rounds; median ns per call over rounds")
    print(f"{'case':<24} {'before':>9} {'after':>9} {'after/before':>13}")
    for case in samples["before"]:
        before = statistics.median(samples["before"][case])
        after = statistics.median(samples["after"][case])
        print(f"{case:<24} {before:9.0f} {after:9.0f} {after / before:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
