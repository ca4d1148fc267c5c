"""CircuitBreaker under threads and asyncio tasks: exact trial admission and counts, no deadlock."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from retryx import CircuitBreaker, CircuitOpenError, circuit_breaker, events
from retryx.testing import FakeClock

THREADS = 8
TASKS = 200
WAIT = 5.0  # real seconds any one wait may take before the test fails instead of hanging


def tripped(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    """A breaker opened by one failure and already past its recovery timeout."""
    breaker = CircuitBreaker("shared", failure_threshold=1, recovery_timeout=5, **settings)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("down")
    clock.advance(5)
    assert "half_open" == breaker.state
    return breaker


def wait_until(predicate: Any) -> None:
    """Poll ``predicate`` for at most WAIT real seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the threads")
        time.sleep(0.001)


def run_threads(target: Any, count: int = THREADS) -> None:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert [] == [t for t in threads if t.is_alive()], "a thread deadlocked"


@pytest.mark.parametrize("max_calls", [1, 3])
def test_threads_admit_exactly_half_open_max_calls(clock: FakeClock, max_calls: int) -> None:
    """8 threads on a half-open breaker: max_calls trials run, the rest get retry_after 0."""
    breaker = tripped(clock, half_open_max_calls=max_calls, success_threshold=max_calls)
    lock = threading.Lock()
    admitted: list[int] = []
    rejected: list[float] = []
    start = threading.Barrier(THREADS)
    finish = threading.Event()

    @breaker
    def trial() -> None:
        with lock:
            admitted.append(1)
        assert finish.wait(WAIT)

    def worker() -> None:
        start.wait(WAIT)
        try:
            trial()
        except CircuitOpenError as exc:
            with lock:
                rejected.append(exc.retry_after)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(admitted) + len(rejected) == THREADS)
        # Every admitted trial is still in flight here.
        assert max_calls == len(admitted)
        assert [0.0] * (THREADS - max_calls) == rejected
        assert "half_open" == breaker.state
    finally:
        finish.set()
        for thread in threads:
            thread.join(WAIT)
    assert [] == [t for t in threads if t.is_alive()]
    assert "closed" == breaker.state


def test_threads_failed_trial_reopens_once(clock: FakeClock) -> None:
    """Concurrent trials that all fail re-open the breaker exactly once."""
    breaker = tripped(clock, half_open_max_calls=THREADS)
    seen: list[Any] = []
    events.subscribe(seen.append)
    start = threading.Barrier(THREADS)

    @breaker
    def trial() -> None:
        start.wait(WAIT)  # every trial is admitted before any fails
        raise ConnectionError("down")

    def worker() -> None:
        try:
            trial()
        except ConnectionError:
            pass

    run_threads(worker)
    changes = [(e.old, e.new) for e in seen if isinstance(e, events.CircuitStateChanged)]
    assert [("open", "half_open"), ("half_open", "open")] == changes
    assert ("open", 5.0) == (breaker.state, breaker.retry_after)


@pytest.mark.parametrize("extra", [0, 1])
def test_threads_lose_no_failure_count(clock: FakeClock, extra: int) -> None:
    """8 threads x 50 failures open a threshold-400 breaker exactly at the last one, not before."""
    per_thread = 50
    threshold = THREADS * per_thread + extra
    breaker = CircuitBreaker("counted", failure_threshold=threshold)
    seen: list[Any] = []
    events.subscribe(seen.append)
    start = threading.Barrier(THREADS)

    @circuit_breaker(breaker)
    def down() -> None:
        raise ConnectionError("down")

    def worker() -> None:
        start.wait(WAIT)
        for _ in range(per_thread):
            try:
                down()
            except ConnectionError:
                pass

    run_threads(worker)
    opened = [e for e in seen if isinstance(e, events.CircuitStateChanged)]
    assert ("closed" if extra else "open") == breaker.state
    assert (0 if extra else 1) == len(opened)


def test_threads_lose_no_window_count(clock: FakeClock) -> None:
    """200 concurrent successes all land in the window: one more failure reaches minimum_calls."""
    per_thread = 25
    calls = THREADS * per_thread + 1
    breaker = CircuitBreaker("window", failure_rate=0.001, window=calls, minimum_calls=calls)
    start = threading.Barrier(THREADS)

    @breaker
    def work(fails: bool) -> None:
        if fails:
            raise ConnectionError("down")

    def worker() -> None:
        start.wait(WAIT)
        for _ in range(per_thread):
            work(False)

    run_threads(worker)
    assert "closed" == breaker.state
    with pytest.raises(ConnectionError):
        work(True)
    assert "open" == breaker.state


def test_tasks_admit_exactly_half_open_max_calls(clock: FakeClock) -> None:
    """200 tasks at once on a half-open breaker: max_calls trials run, the rest are rejected."""
    max_calls = 5
    breaker = tripped(clock, half_open_max_calls=max_calls, success_threshold=max_calls)
    admitted: list[int] = []
    rejected: list[float] = []

    async def main() -> None:
        finish = asyncio.Event()

        @breaker
        async def trial() -> None:
            admitted.append(1)
            await finish.wait()

        async def worker() -> None:
            try:
                await trial()
            except CircuitOpenError as exc:
                rejected.append(exc.retry_after)

        tasks = [asyncio.create_task(worker()) for _ in range(TASKS)]
        for _ in range(100):
            if len(admitted) + len(rejected) == TASKS:
                break
            await asyncio.sleep(0)
        assert max_calls == len(admitted)
        assert [0.0] * (TASKS - max_calls) == rejected
        assert "half_open" == breaker.state
        finish.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)

    asyncio.run(main())
    assert "closed" == breaker.state


def test_tasks_cancelled_trials_give_their_slots_back(clock: FakeClock) -> None:
    """Trials cancelled in flight neither close nor re-open the breaker, and free their slots."""
    breaker = tripped(clock, half_open_max_calls=3)

    async def main() -> str:
        @breaker
        async def hang() -> None:
            await asyncio.Event().wait()

        tasks = [asyncio.create_task(hang()) for _ in range(TASKS)]
        for _ in range(10):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
        kinds = [type(r) for r in results]
        assert (3, TASKS - 3) == (
            kinds.count(asyncio.CancelledError),
            kinds.count(CircuitOpenError),
        )
        assert "half_open" == breaker.state

        @breaker
        async def fine() -> str:
            return "ok"

        return await fine()

    assert "ok" == asyncio.run(main())
    assert "closed" == breaker.state


def test_tasks_lose_no_failure_count(clock: FakeClock) -> None:
    """200 tasks failing once each open a threshold-200 breaker exactly once."""
    breaker = CircuitBreaker("counted", failure_threshold=TASKS)
    seen: list[Any] = []
    events.subscribe(seen.append)

    async def main() -> list[Any]:
        @breaker
        async def down() -> None:
            await asyncio.sleep(0)
            raise ConnectionError("down")

        tasks = [asyncio.create_task(down()) for _ in range(TASKS)]
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)

    results = asyncio.run(main())
    assert [ConnectionError] * TASKS == [type(r) for r in results]
    assert [("closed", "open")] == [
        (e.old, e.new) for e in seen if isinstance(e, events.CircuitStateChanged)
    ]
