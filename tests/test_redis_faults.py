"""RedisStore under real faults: new processes, a frozen redis-server (SIGSTOP/SIGCONT)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import retryx
from retryx import CircuitBreaker, CircuitOpenError, RetryBudget
from retryx.redis import RedisStore

from _redis import RedisServer, serve  # isort: skip

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 0.4  # the stores' socket timeout in these tests (seconds)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own: it gets frozen."""
    yield from serve(tmp_path)


@pytest.fixture
def name() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


def url(server: RedisServer) -> str:
    return f"{server.url}?socket_timeout={TIMEOUT}&socket_connect_timeout={TIMEOUT}"


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """redis-server stopped (it accepts connections, answers nothing) for the block."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.proc.send_signal(signal.SIGCONT)


def eventually(check: Callable[[], bool], timeout: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout}s")


def call(breaker: CircuitBreaker, fail: bool = False) -> str:
    @retryx.circuit_breaker(breaker)
    def work() -> str:
        if fail:
            raise ConnectionError("down")
        return "ok"

    try:
        return work()
    except CircuitOpenError:
        return "rejected"
    except ConnectionError:
        return "failed"


FRESH = """
import json, sys
import retryx
from retryx import CircuitBreaker, CircuitOpenError, RetryBudget
from retryx.redis import RedisStore
url, name = sys.argv[1:3]
store = RedisStore(url, sync_interval=60.0)
breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=30.0, store=store)
budget = RetryBudget(10, 1.0, name=name, store=store)
state, tokens = breaker.state, budget.tokens
@retryx.circuit_breaker(breaker)
def work():
    return "ok"
try:
    outcome = work()
except CircuitOpenError as exc:
    outcome = f"rejected {exc.retry_after:.0f}"
print(json.dumps([state, outcome, tokens]))
"""


def fresh_process(server: RedisServer, name: str) -> list[Any]:
    """What a newly started process sees on its first use: [state, call outcome, tokens]."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH, server.url, name],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert 0 == done.returncode, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


def test_a_new_process_sees_the_fleet_state_on_first_use(server: RedisServer, name: str) -> None:
    """A breaker and a budget created in a new process read Redis before their first use."""
    with RedisStore(server.url, sync_interval=0.1) as store:
        breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=30.0, store=store)
        budget = RetryBudget(10, 1.0, name=name, store=store)
        assert ["failed", "failed"] == [call(breaker, fail=True) for _ in range(2)]
        for _ in range(3):
            budget.record_failure()
        # The new process's sync interval is a minute: only a first read can see this.
        state, outcome, tokens = fresh_process(server, name)
        assert ("open", 7.0) == (state, tokens)
        assert outcome.startswith("rejected ")
        assert 20 <= float(outcome.split()[1]) <= 30  # seconds until a trial


def test_waiting_threads_do_not_each_wait_a_timeout(server: RedisServer, name: str) -> None:
    """With Redis frozen, 8 threads reporting failures and 4 taking budget tokens finish
    within about one socket timeout, on their local state, not one timeout each in turn.
    """
    with RedisStore(url(server), sync_interval=60.0) as store:
        breaker = CircuitBreaker(name, failure_threshold=100, store=store)
        budget = RetryBudget(100, 1.0, name=name, store=store)
        assert "failed" == call(breaker, fail=True)
        time.sleep(0.2)  # let the sync thread's first syncs (woken by the attaches) end
        elapsed: list[float] = []
        results: list[str] = []
        barrier = threading.Barrier(12)

        def report() -> None:
            barrier.wait(5.0)
            start = time.monotonic()
            results.append(call(breaker, fail=True))
            elapsed.append(time.monotonic() - start)

        def take() -> None:
            barrier.wait(5.0)
            start = time.monotonic()
            budget.record_failure()
            elapsed.append(time.monotonic() - start)

        threads = [threading.Thread(target=report) for _ in range(8)]
        threads += [threading.Thread(target=take) for _ in range(4)]
        with frozen(server):
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15.0)
            total = time.monotonic() - started
        assert ["failed"] * 8 == results
        assert 12 == len(elapsed)
        assert max(elapsed) < TIMEOUT + 1.0, elapsed  # was 8 timeouts in a row: 3.2 s
        assert total < TIMEOUT + 1.2
        assert not store.available, elapsed
        assert 100 - 4 == budget.tokens  # counted locally


def test_raise_mode_waiters_raise_with_the_failed_round_trip(
    server: RedisServer, name: str
) -> None:
    """on_error="raise" with Redis frozen: threads queued behind a failing round trip
    raise RetryxError when it fails, instead of each spending a timeout of its own.
    """
    with RedisStore(url(server), on_error="raise", sync_interval=60.0) as store:
        breaker = CircuitBreaker(name, failure_threshold=100, store=store)
        time.sleep(0.2)  # let the sync thread's first syncs (woken by the attach) end
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def report() -> None:
            barrier.wait(5.0)
            try:
                call(breaker, fail=True)
            except retryx.RetryxError:
                outcomes.append("raised")

        threads = [threading.Thread(target=report) for _ in range(6)]
        with frozen(server):
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15.0)
            total = time.monotonic() - started
    assert ["raised"] * 6 == outcomes
    assert total < TIMEOUT + 1.0  # was 6 timeouts in a row: 2.4 s


def test_reports_a_frozen_redis_runs_late_are_ignored(server: RedisServer, name: str) -> None:
    """A failure report and a token taken while Redis was frozen, given up by the client,
    change nothing when Redis resumes: the breaker stays closed and the budget keeps its
    count, for this process and a new one.
    """
    raw = redis.Redis.from_url(server.url, decode_responses=True)
    with RedisStore(url(server), sync_interval=0.1) as store:
        breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=30.0, store=store)
        budget = RetryBudget(10, 1.0, name=name, store=store)
        assert "failed" == call(breaker, fail=True)  # one failure, counted in Redis
        budget.record_failure()
        with frozen(server):
            assert "failed" == call(breaker, fail=True)  # times out: counted locally
            budget.record_failure()
            assert "open" == breaker.state  # opened on the local state, for this process
            time.sleep(0.1)
        eventually(lambda: store.available, 5.0)
        eventually(lambda: breaker.state == "closed", 5.0)  # resynchronised
        assert "1" == raw.hget(f"retryx:breaker:{name}", "fail")
        assert "c" == raw.hget(f"retryx:breaker:{name}", "st")
        assert "9" == raw.hget(f"retryx:budget:{name}", "t")
        assert ["closed", "ok", 9.0] == fresh_process(server, name)
    raw.close()
