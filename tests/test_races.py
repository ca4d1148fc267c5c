"""Shared state stays exact under real threads: subscriptions, stats resets, reloads, eviction.

Each test lowers ``sys.setswitchinterval`` so threads switch often and races show,
and bounds its loops in count and time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retryx import (
    CircuitBreaker,
    _bus,
    _failover,
    _wrapper,
    circuit_breaker,
    configure,
    events,
    failover,
    retry,
    stats,
)

THREADS = 8
WAIT = 60.0  # real seconds the threads may take before the test fails instead of hanging


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


def _run(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``threads`` real threads; the exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def body(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline = time.monotonic() + WAIT
    for thread in pool:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in pool), "threads still running"
    return errors


def test_concurrent_subscribe_and_unsubscribe_leave_nothing_registered() -> None:
    """Every unsubscribe removes its callback, however the threads interleave (item 7)."""

    def work(i: int) -> None:
        for _ in range(15000):
            unsubscribe = events.subscribe(lambda event: None)
            unsubscribe()

    assert [] == _run(THREADS, work)
    assert () == _bus._subscribers


def test_stats_reset_loses_no_call_made_meanwhile() -> None:
    """Snapshots taken with ``reset=True`` while threads call add up to every call (item 15)."""
    calls_per_thread = 4000

    @retry(attempts=1)
    def work_item(fail: bool) -> None:
        if fail:
            raise KeyError("permanent: the slow path")

    done = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(stats(work_item, reset=True).calls)

    def work(i: int) -> None:
        if i == 0:
            reader()
            return
        for n in range(calls_per_thread):
            try:
                work_item(n % 7 == 0)
            except KeyError:
                pass

    def timed(i: int) -> None:
        try:
            work(i)
        finally:
            if i != 0 and len(finishers) == THREADS - 2:
                done.set()
            finishers.append(i)

    finishers: list[int] = []
    assert [] == _run(THREADS, timed)
    total = sum(seen) + stats(work_item).calls
    assert (THREADS - 1) * calls_per_thread == total


def test_failover_endpoint_eviction_under_threads_stays_within_its_cap() -> None:
    """A hosts callable naming ever new endpoints, from many threads: no error, cap kept
    (item 12)."""
    counter = iter(range(10**9))
    lock = threading.Lock()

    def hosts() -> list[str]:
        with lock:
            return [f"h{next(counter)}"]

    @failover(hosts)
    def call(host: str) -> str:
        return host

    def work(i: int) -> None:
        for _ in range(1500):
            call()

    assert [] == _run(THREADS, work)
    runner = _wrapper.find(call)
    assert runner is not None
    cap = _failover.MAX_ENDPOINT_BREAKERS
    assert (True, True) == (
        len(runner.failover._breakers) <= cap,
        len(runner.failover._routes) <= cap,
    )


def test_a_reload_of_a_named_breakers_settings_is_atomic(tmp_path: Path) -> None:
    """Callers of a named breaker never see half-applied settings while configure()
    reloads them (item 12)."""
    by_rate = tmp_path / "rate.toml"
    by_rate.write_text(
        "[breakers.shared]\nfailure_rate = 1.0\nwindow = 1000000\nminimum_calls = 1000000\n"
    )
    by_count = tmp_path / "count.toml"
    by_count.write_text("[breakers.shared]\nfailure_threshold = 1000000000\n")
    configure(by_rate)

    @circuit_breaker("shared")
    def call(fail: bool) -> None:
        if fail:
            raise ConnectionError("down")

    stop = threading.Event()

    def work(i: int) -> None:
        if i == 0:
            try:
                for n in range(300):
                    configure(by_count if n % 2 else by_rate)
            finally:
                stop.set()
            return
        n = 0
        while not stop.is_set():
            n += 1
            try:
                call(True)  # every call books a failure: it never opens
            except ConnectionError:
                pass

    assert [] == _run(THREADS, work)


def test_hosts_callable_eviction_keeps_routes_of_live_breakers_only() -> None:
    """After eviction every remembered route uses the breaker remembered for its endpoint."""
    counter = iter(range(10**9))

    @failover(lambda: [f"h{next(counter)}"])
    def call(host: str) -> str:
        return host

    for _ in range(_failover.MAX_ENDPOINT_BREAKERS + 50):
        call()
    runner: Any = _wrapper.find(call)
    assert all(
        runner.failover._breakers.get(endpoint) is route[0]
        for endpoint, route in runner.failover._routes.items()
    )


def test_a_breakers_settings_swap_is_atomic_for_callers_in_its_lock() -> None:
    """The swap a reload makes (window and failure rate together) is never seen half-done
    by a failure booked meanwhile (item 12, the swap itself, many times over)."""
    by_rate = CircuitBreaker(
        "s", failure_threshold=10**9, failure_rate=1.0, window=10**6, minimum_calls=10**6
    )
    by_count = CircuitBreaker("s", failure_threshold=10**9)
    breaker = CircuitBreaker("s", failure_threshold=10**9)
    stop = threading.Event()

    def work(i: int) -> None:
        if i == 0:
            try:
                for n in range(20000):
                    breaker._take_settings(by_rate if n % 2 else by_count)
            finally:
                stop.set()
            return
        while not stop.is_set():
            with pytest.raises(ConnectionError), breaker:
                raise ConnectionError("down")

    assert [] == _run(4, work)
