#!/usr/bin/env python
"""Cost of sharing a circuit breaker through Redis, against the in-process breaker.

Run from the repository root::

    python benchmarks/redis_breaker.py           # starts its own redis-server
    python benchmarks/redis_breaker.py --quick   # tiny repeat counts: a smoke test
    RETRYX_BENCH_REDIS_URL=redis://host:6379/0 python benchmarks/redis_breaker.py

Rows (median of interleaved ``timeit`` samples, ns per call):

- bare call: the undecorated function;
- happy path: ``@circuit_breaker`` over an in-process breaker, then over a
  Redis-backed one (consecutive-failure and failure-rate breakers). The Redis
  breaker admits from its local view, so this should cost no round trip;
- failure path: a call that raises ``ConnectionError`` through a breaker that
  never opens (threshold 10**9): the Redis one reports each failure at once,
  so the difference is one round trip to Redis (a loopback one here).

The happy-path target: Redis-backed overhead (its ns minus the bare call's) at most
2x the in-process breaker's overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmark the working tree, not an installed copy
    sys.path.insert(0, str(ROOT))

import retryx  # noqa: E402
from retryx import CircuitBreaker  # noqa: E402
from retryx.testing._redis_server import redis_server  # noqa: E402


@contextmanager
def redis_url() -> Iterator[str]:
    """$RETRYX_BENCH_REDIS_URL, or a throwaway redis-server on a free loopback port."""
    url = os.environ.get("RETRYX_BENCH_REDIS_URL")
    if url:
        yield url
        return
    with redis_server() as started:
        if started is None:
            sys.exit("redis-server not found: install it or set RETRYX_BENCH_REDIS_URL")
        yield started


def ok(x: int) -> int:
    return x


def failing(x: int) -> int:
    raise ConnectionError("down")


def calibrate(stmt: Callable[[], Any], sample: float) -> int:
    """Loop count so that one sample lasts about ``sample`` seconds."""
    number = 1
    while True:
        took = timeit.timeit(stmt, number=number)
        if took >= sample / 10 or number >= 10_000_000:
            return max(1, int(number * sample / max(took, 1e-9)))
        number *= 10


def measure(
    candidates: dict[str, Callable[[], Any]], rounds: int, sample: float
) -> dict[str, float]:
    """Median ns per call of each candidate, samples interleaved round-robin."""
    numbers = {label: calibrate(fn, sample) for label, fn in candidates.items()}
    samples: dict[str, list[float]] = {label: [] for label in candidates}
    labels = list(candidates)
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            took = timeit.timeit(candidates[label], number=numbers[label])
            samples[label].append(took / numbers[label] * 1e9)
    return {label: statistics.median(values) for label, values in samples.items()}


def caller(fn: Callable[[int], int]) -> Callable[[], int]:
    return lambda: fn(1)


def swallow(fn: Callable[[int], int]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn(1)
        except ConnectionError:
            pass

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny repeat counts (smoke test)")
    opts = parser.parse_args(argv)
    rounds, sample = (3, 0.002) if opts.quick else (25, 0.02)

    from retryx.redis import RedisStore

    with redis_url() as url, RedisStore(url, prefix="retryx-bench:") as store:
        never = 10**9
        local = CircuitBreaker("bench-local", failure_threshold=never)
        shared = CircuitBreaker("bench-shared", failure_threshold=never, store=store)
        rate = {"failure_rate": 1.0, "window": 100, "minimum_calls": 100}
        local_rate = CircuitBreaker("bench-local-rate", **rate)
        shared_rate = CircuitBreaker("bench-shared-rate", store=store, **rate)
        store.sync()  # the local views start from Redis, as after the first sync

        happy = measure(
            {
                "bare call": lambda: ok(1),
                "in-process breaker": caller(retryx.circuit_breaker(local)(ok)),
                "Redis breaker": caller(retryx.circuit_breaker(shared)(ok)),
                "in-process breaker, failure_rate": caller(retryx.circuit_breaker(local_rate)(ok)),
                "Redis breaker, failure_rate": caller(retryx.circuit_breaker(shared_rate)(ok)),
            },
            rounds,
            sample,
        )
        failure = measure(
            {
                "bare call (raises)": swallow(failing),
                "in-process breaker": swallow(retryx.circuit_breaker(local)(failing)),
                "Redis breaker": swallow(retryx.circuit_breaker(shared)(failing)),
            },
            max(3, rounds // 3),
            sample * 5,
        )
        shared.reset()
        shared_rate.reset()

    def table(title: str, rows: dict[str, float], base: str, ref: str | None) -> None:
        print(f"== {title} ==")
        print(f"{'candidate':<36}{'ns/call':>12}{'overhead ns':>14}{'x in-process':>14}")
        for label, value in rows.items():
            overhead = value - rows[base]
            ratio = ""
            if ref is not None and label.startswith("Redis"):
                counterpart = "in-process" + label[len("Redis") :]
                ref_overhead = rows[counterpart] - rows[base]
                ratio = f"{overhead / ref_overhead:.2f}" if ref_overhead > 0 else "n/a"
            print(f"{label:<36}{value:>12.0f}{overhead:>14.0f}{ratio:>14}")
        print()

    print(f"python {sys.version.split()[0]}, {'quick' if opts.quick else 'full'} run, {url}")
    print()
    table("happy path (closed breaker)", happy, "bare call", "in-process")
    table("failure path (one round trip per failure)", failure, "bare call (raises)", None)
    trip = failure["Redis breaker"] - failure["in-process breaker"]
    print(f"failure path: the Redis breaker adds {trip / 1000:.1f} us per failed call")
    ratio = (happy["Redis breaker"] - happy["bare call"]) / max(
        1e-9, happy["in-process breaker"] - happy["bare call"]
    )
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    print(f"target: Redis happy-path overhead <= 2x in-process: {ratio:.2f}x {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
