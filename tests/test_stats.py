"""retryx.stats: exact counters under threads and asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest

import retryx
from retryx.testing import fake_time


def test_stats_exact_after_four_threads_with_mixed_outcomes() -> None:
    """4 threads x 10k calls with successes, retried successes and failures count exactly,
    while a fifth thread reads (and so folds) the counters.
    """
    per_thread = 10_000

    @retryx.retry(attempts=2, backoff="none", jitter="none")
    def work(i: int, state: dict[str, int]) -> int:
        kind = i % 4
        if kind == 1:  # fails once, then succeeds
            state[str(i)] = state.get(str(i), 0) + 1
            if state[str(i)] == 1:
                raise ConnectionError("once")
        if kind == 3:  # permanent: no retry
            raise KeyError(i)
        return i

    def run() -> None:
        state: dict[str, int] = {}
        for i in range(per_thread):
            try:
                work(i, state)
            except KeyError:
                pass

    done = threading.Event()
    reads: list[int] = []

    def read() -> None:  # folds the pending counts while the workers append
        for _ in range(100_000):
            if done.is_set():
                break
            reads.append(retryx.stats(work).calls)

    with fake_time():
        threads = [threading.Thread(target=run) for _ in range(4)]
        reader = threading.Thread(target=read)
        for t in [*threads, reader]:
            t.start()
        for t in threads:
            t.join(timeout=60)
        done.set()
        reader.join(timeout=60)
        assert not any(t.is_alive() for t in [*threads, reader])
    assert reads == sorted(reads)  # counts only grow

    s = retryx.stats(work)
    total = 4 * per_thread
    quarter = total // 4
    assert total == s.calls
    assert 3 * quarter == s.successes
    assert quarter == s.failures
    assert quarter == s.retries
    assert total + quarter == s.attempts
    assert quarter == s.gave_up  # the permanent faults
    assert {"connection": quarter, "permanent": quarter} == s.by_cause


def test_stats_exact_under_asyncio_tasks() -> None:
    """200 concurrent tasks that each fail once are counted exactly."""

    @retryx.retry(attempts=3, backoff="none")
    async def work(box: list[int]) -> None:
        box[0] += 1
        await asyncio.sleep(0)
        if box[0] == 1:
            raise TimeoutError()

    async def main() -> None:
        await asyncio.gather(*(work([0]) for _ in range(200)))

    with fake_time():
        asyncio.run(main())
    s = retryx.stats(work)
    assert (200, 200, 400, 200) == (s.calls, s.successes, s.attempts, s.retries)
    assert {"timeout": 200} == s.by_cause


def test_breaker_rejections_and_failover_switches_are_counted() -> None:
    """Stats expose breaker rejections and failover switches where those layers exist."""

    @retryx.failover(hosts=["a", "b"])
    def call(host: str) -> str:
        if host == "a":
            raise ConnectionRefusedError(host)
        return host

    with fake_time():
        for _ in range(5):
            assert "b" == call()
    s = retryx.stats(call)
    assert 5 == s.calls
    # "a" fails 3 times (its breaker opens), then is skipped twice: 5 switches, 2 rejections.
    assert 5 == s.switches
    assert 2 == s.rejections
    assert s.attempts == s.calls  # no retry layer


def test_reset_zeroes_the_counters() -> None:
    """stats(func, reset=True) returns the snapshot and starts again from zero."""

    @retryx.circuit_breaker
    def ok() -> int:
        return 1

    ok()
    ok()
    assert 2 == retryx.stats(ok, reset=True).calls
    assert 0 == retryx.stats(ok).calls


def test_elapsed_is_measured_on_the_retryx_clock() -> None:
    """total_elapsed and max_elapsed include the waits, on the fake clock."""

    @retryx.retry(attempts=2, backoff=retryx.backoff.fixed(1.5), jitter="none")
    def once(box: list[int]) -> None:
        box[0] += 1
        if box[0] == 1:
            raise ConnectionError()

    with fake_time():
        once([0])
        once([1])
    s = retryx.stats(once)
    assert 1.5 == pytest.approx(s.total_elapsed)
    assert 1.5 == pytest.approx(s.max_elapsed)


def test_stats_of_an_undecorated_callable_is_a_config_error() -> None:
    """stats() names the callable that carries no retryx layer."""
    with pytest.raises(retryx.ConfigError, match="not decorated"):
        retryx.stats(print)
