"""RedisStore: breakers and budgets shared across processes through a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
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
from retryx import (
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    Policy,
    RetryBudget,
    RetryxError,
    events,
)
from retryx.redis import RedisStore
from retryx.testing import FakeClock

from _redis import RedisServer, serve  # isort: skip
import _redis_workers  # isort: skip

pytestmark = pytest.mark.redis

SYNC = 0.2  # the stores' sync_interval in these tests
SLACK = 1.5  # scheduling and IPC on a loaded 2-core machine, on top of the promised delay
ROOT = Path(__file__).resolve().parents[1]


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module (tests use distinct key names)."""
    yield from serve(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def name() -> str:
    """A fresh breaker/budget name, so tests never see each other's keys."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisStore]:
    with RedisStore(server.url, sync_interval=SYNC) as shared:
        yield shared


@pytest.fixture
def other(server: RedisServer) -> Iterator[RedisStore]:
    """A second store: another process as far as sharing is concerned."""
    with RedisStore(server.url, sync_interval=SYNC) as shared:
        yield shared


@pytest.fixture
def raw(server: RedisServer) -> Iterator[Any]:
    """A plain client to look at the keys."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()


def eventually(check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` until true (bounded); the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout}s")


def call(breaker: CircuitBreaker, fail: bool = False) -> str:
    """One call through the breaker as the pipeline makes it: ok, failed or rejected."""

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


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "retryx" and r.levelno == logging.WARNING and "unreachable" in r.message
    ]


class Worker:
    """A spawned process running ``_redis_workers.serve``; ``run`` sends one command."""

    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_redis_workers.serve, args=(child, url, SYNC), daemon=True)
        self.proc.start()
        child.close()

    def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        self.conn.send((command, args, kwargs))
        if not self.conn.poll(15.0):
            raise AssertionError(f"worker did not answer {command!r} within 15 s")
        status, value = self.conn.recv()
        if status != "ok":
            raise AssertionError(f"worker failed on {command!r}: {value}")
        return value

    def stop(self) -> None:
        try:
            self.run("stop")
        except (AssertionError, OSError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


@pytest.fixture(scope="module")
def workers(server: RedisServer) -> Iterator[tuple[Worker, Worker]]:
    """Two worker processes (spawn) sharing the module's server."""
    pair = (Worker(server.url), Worker(server.url))
    try:
        yield pair
    finally:
        for worker in pair:
            worker.stop()


# --- two processes ----------------------------------------------------------------------


def test_failures_in_one_process_open_the_breaker_for_both(
    workers: tuple[Worker, Worker], name: str
) -> None:
    """Failures in process A open the shared breaker for process B within sync_interval."""
    a, b = workers
    for worker in workers:
        worker.run("breaker", name, failure_threshold=3, recovery_timeout=30.0)
    assert ["ok", "ok"] == [a.run("call", name, False), b.run("call", name, False)]

    assert ["failed"] * 3 == [a.run("call", name, True) for _ in range(3)]
    assert "open" == a.run("state", name)
    opened = time.monotonic()
    eventually(lambda: b.run("state", name) == "open", SYNC + SLACK)
    assert time.monotonic() - opened <= SYNC + SLACK
    assert "rejected" == b.run("call", name, False)


def test_half_open_trial_calls_are_limited_fleet_wide(
    workers: tuple[Worker, Worker], name: str
) -> None:
    """half_open_max_calls counts trial calls across processes, claimed atomically in Redis."""
    a, b = workers
    for worker in workers:
        worker.run(
            "breaker", name, failure_threshold=1, recovery_timeout=0.3, half_open_max_calls=2
        )
    assert "failed" == a.run("call", name, True)
    # Each process rejects locally until the recovery time it last saw in Redis, so
    # their views may differ by the skew of their clocks: wait for both.
    eventually(lambda: b.run("state", name) == "half_open", 0.3 + SYNC + SLACK)
    eventually(lambda: a.run("state", name) == "half_open", SYNC + SLACK)

    assert "admitted" == a.run("acquire", name)
    assert "admitted" == b.run("acquire", name)
    # A third trial is refused, whichever process asks: the slots are fleet-wide.
    assert "rejected 0" == a.run("acquire", name)
    b.run("succeed", name)
    assert "closed" == b.run("state", name)
    eventually(lambda: a.run("state", name) == "closed", SYNC + SLACK)
    assert "ok" == a.run("call", name, False)


def test_a_shared_budget_stops_retries_everywhere_and_refills_on_successes(
    workers: tuple[Worker, Worker], name: str
) -> None:
    """Once A drains the shared budget, B's retries are denied; successes refill it for all."""
    a, b = workers
    for worker in workers:
        worker.run("budget", name, 10, 1.0)

    # 10 tokens, retries while > 5: the 5th failure leaves 5 and the retry is denied.
    assert (5, "budget") == tuple(a.run("retry_failing", name, 10))
    # B's first failure takes the shared count to 4: no retry at all.
    assert (1, "budget") == tuple(b.run("retry_failing", name, 10))
    assert 4.0 == b.run("budget_tokens", name)

    b.run("succeed_calls", name, 4)  # batched, flushed with B's next sync
    eventually(lambda: a.run("budget_tokens", name) == 8.0, 2 * SYNC + SLACK)
    # 8 -> 7 -> 6 -> 5: two retries, then denied.
    assert (3, "budget") == tuple(a.run("retry_failing", name, 10))


# --- one process, several stores -------------------------------------------------------


def test_a_second_store_sees_the_change_within_sync_interval(
    store: RedisStore, other: RedisStore, name: str
) -> None:
    """Another store's breaker adopts an opening within about sync_interval."""
    mine = CircuitBreaker(name, failure_threshold=2, store=store)
    theirs = CircuitBreaker(name, failure_threshold=2, store=other)
    assert ["failed", "failed"] == [call(mine, fail=True), call(mine, fail=True)]
    assert "open" == mine.state
    took = eventually(lambda: theirs.state == "open", SYNC + SLACK)
    assert took <= SYNC + SLACK
    assert 30.0 - 1.0 < theirs.retry_after <= 30.0


def test_the_happy_path_makes_no_round_trip(
    store: RedisStore, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the local view is closed, calls never touch Redis (the closed hot path)."""
    breaker = CircuitBreaker(name, store=store)
    store.sync()
    direct: list[Any] = []
    script = store._breakers.script

    def counting(*args: Any, **kwargs: Any) -> Any:
        if "client" not in kwargs:  # the background sync pipelines; calls do not
            direct.append(args)
        return script(*args, **kwargs)

    monkeypatch.setattr(store._breakers, "script", counting)
    assert ["ok"] * 100 == [call(breaker) for _ in range(100)]
    assert [] == direct


def test_successes_are_batched_and_reset_the_shared_failure_count(
    store: RedisStore, other: RedisStore, name: str, raw: Any
) -> None:
    """A success elsewhere ends a run of consecutive failures, once its batch is flushed."""
    mine = CircuitBreaker(name, failure_threshold=3, store=store)
    theirs = CircuitBreaker(name, failure_threshold=3, store=other)
    call(mine, fail=True)
    call(mine, fail=True)
    assert "2" == raw.hget(f"retryx:breaker:{name}", "fail")
    other.sync()  # theirs learns the run of 2...
    assert "ok" == call(theirs)  # ...which its success ends, locally at once
    other.sync()  # and in Redis with the next sync
    assert "0" == raw.hget(f"retryx:breaker:{name}", "fail")
    call(mine, fail=True)
    assert "closed" == mine.state


def test_failure_rate_window_is_shared(
    store: RedisStore, other: RedisStore, name: str, raw: Any
) -> None:
    """With failure_rate, every process's calls land in one shared window."""
    settings: dict[str, Any] = {"failure_rate": 0.5, "window": 4, "minimum_calls": 4}
    mine = CircuitBreaker(name, store=store, **settings)
    theirs = CircuitBreaker(name, store=other, **settings)
    assert ["ok", "ok"] == [call(theirs), call(theirs)]
    other.sync()  # flushes the two batched successes
    assert "00" == raw.hget(f"retryx:breaker:{name}", "win")
    assert "failed" == call(mine, fail=True)
    assert "closed" == mine.state  # 1 of 3 calls failed, fewer than minimum_calls
    assert "failed" == call(mine, fail=True)
    assert "open" == mine.state  # 2 of 4 failed: the rate is reached


def test_open_and_close_by_hand_apply_to_every_process(
    store: RedisStore, other: RedisStore, name: str
) -> None:
    """open() isolates the breaker fleet-wide until close(); close() clears it for all."""
    mine = CircuitBreaker(name, store=store)
    theirs = CircuitBreaker(name, store=other)
    mine.open()
    eventually(lambda: theirs.state == "open", SYNC + SLACK)
    assert math.inf == theirs.retry_after
    with pytest.raises(CircuitOpenError) as info:
        theirs._acquire()
    assert math.inf == info.value.retry_after
    theirs.reset()
    assert "closed" == theirs.state
    eventually(lambda: mine.state == "closed", SYNC + SLACK)


def test_state_changes_seen_through_redis_are_announced(
    store: RedisStore, other: RedisStore, name: str
) -> None:
    """Each process emits CircuitStateChanged for the changes it sees."""
    seen: list[events.CircuitStateChanged] = []
    unsubscribe = events.subscribe(
        lambda e: seen.append(e) if isinstance(e, events.CircuitStateChanged) else None
    )
    try:
        mine = CircuitBreaker(name, failure_threshold=1, store=store)
        theirs = CircuitBreaker(name, failure_threshold=1, store=other)
        call(mine, fail=True)
        eventually(lambda: len(seen) >= 2, SYNC + SLACK)
        assert "open" == theirs.state
    finally:
        unsubscribe()
    assert [(name, "closed", "open")] * 2 == [(e.breaker, e.old, e.new) for e in seen]


def test_recovery_follows_the_redis_clock_not_the_host_clock(
    clock: FakeClock, store: RedisStore, name: str
) -> None:
    """A host clock that jumps ahead does not let a trial call through early."""
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=30.0, store=store)
    assert "failed" == call(breaker, fail=True)
    clock.advance(1000.0)  # the local view now believes the recovery time has passed
    assert "half_open" == breaker.state
    with pytest.raises(CircuitOpenError) as info:
        breaker._acquire()  # Redis decides, with its own clock
    assert 29.0 < info.value.retry_after <= 30.0
    assert "open" == breaker.state  # the view is re-anchored on the server's answer


def test_keys_are_plain_hashes_with_a_ttl(store: RedisStore, name: str, raw: Any) -> None:
    """Keys hold plain strings (no pickle) and always carry a TTL."""
    breaker = CircuitBreaker(name, failure_threshold=1, store=store)
    budget = RetryBudget(10, 0.5, name=name, store=store)
    call(breaker, fail=True)
    budget.record_failure()
    fields = raw.hgetall(f"retryx:breaker:{name}")
    assert "o" == fields["st"]
    assert all(value == "" or value.isdigit() for k, value in fields.items() if k != "st")
    assert {"t": "9"} == raw.hgetall(f"retryx:budget:{name}")
    for key in (f"retryx:breaker:{name}", f"retryx:budget:{name}"):
        assert 0 < raw.pttl(key) <= 86_400_000


def test_prefix_namespaces_the_keys(server: RedisServer, name: str, raw: Any) -> None:
    """Stores with different prefixes do not share state."""
    with (
        RedisStore(server.url, prefix="app1:") as one,
        RedisStore(server.url, prefix="app2:") as two,
    ):
        first = CircuitBreaker(name, failure_threshold=1, store=one)
        second = CircuitBreaker(name, failure_threshold=1, store=two)
        call(first, fail=True)
        two.sync()
        assert ("open", "closed") == (first.state, second.state)
        assert raw.exists(f"app1:breaker:{name}")
        assert not raw.exists(f"app2:breaker:{name}")


def test_concurrent_failures_from_two_stores_are_all_counted(
    store: RedisStore, other: RedisStore, name: str, raw: Any
) -> None:
    """8 threads over two stores take exactly one shared token each per failure (atomic Lua)."""
    budgets = [RetryBudget(100, 1.0, name=name, store=s) for s in (store, other)]
    start = threading.Barrier(8)

    def drain(budget: RetryBudget) -> None:
        start.wait(timeout=10)
        for _ in range(10):
            budget.record_failure()

    threads = [threading.Thread(target=drain, args=(budgets[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)
    assert "20" == raw.hget(f"retryx:budget:{name}", "t")


def test_close_flushes_batched_successes(
    server: RedisServer, name: str, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Successes still batched when the store closes are written to Redis."""
    monkeypatch.setattr(RedisStore, "_start", lambda self: None)  # no background sync
    shared = RedisStore(server.url)
    budget = RetryBudget(10, 0.5, name=name, store=shared)
    budget.record_failure()
    budget.record_failure()
    budget.record_success()
    assert "8" == raw.hget(f"retryx:budget:{name}", "t")
    shared.close()
    assert "8.5" == raw.hget(f"retryx:budget:{name}", "t")
    assert "closed" in repr(shared)


# --- clients ----------------------------------------------------------------------------


def test_a_sync_client_is_used_and_left_open(server: RedisServer, name: str) -> None:
    """A redis.Redis passed in is used as is, and closing the store does not close it."""
    client = redis.Redis.from_url(server.url)
    try:
        with RedisStore(client, sync_interval=SYNC) as shared:
            breaker = CircuitBreaker(name, failure_threshold=1, store=shared)
            call(breaker, fail=True)
        assert client.hget(f"retryx:breaker:{name}", "st") == b"o"
    finally:
        client.close()


def test_an_asyncio_client_works(server: RedisServer, store: RedisStore, name: str) -> None:
    """A redis.asyncio.Redis works: async calls trip a breaker shared with a sync store."""
    import redis.asyncio

    async def main() -> list[str]:
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            with RedisStore(client, sync_interval=SYNC) as shared:
                breaker = CircuitBreaker(name, failure_threshold=2, store=shared)

                @retryx.circuit_breaker(breaker)
                async def work() -> None:
                    raise ConnectionError("down")

                outcomes = []
                for _ in range(3):
                    try:
                        await work()
                    except CircuitOpenError:
                        outcomes.append("rejected")
                    except ConnectionError:
                        outcomes.append("failed")
                return outcomes
        finally:
            await client.aclose()

    assert ["failed", "failed", "rejected"] == asyncio.run(main())
    mirror = CircuitBreaker(name, failure_threshold=2, store=store)
    eventually(lambda: mirror.state == "open", SYNC + SLACK)


# --- outages ----------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test may kill and restart (the module's one stays up)."""
    yield from serve(tmp_path)


def test_local_mode_survives_an_outage_and_resyncs_after_a_restart(
    own_server: RedisServer, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Killing Redis keeps calls working on local state with one warning; a restart resyncs."""
    caplog.set_level(logging.INFO, logger="retryx")
    with (
        RedisStore(own_server.url, sync_interval=0.05) as mine,
        RedisStore(own_server.url, sync_interval=0.05) as theirs,
    ):
        breaker = CircuitBreaker(name, failure_threshold=3, store=mine)
        mirror = CircuitBreaker(name, failure_threshold=3, store=theirs)
        budget = RetryBudget(10, 1.0, name=name, store=mine)
        assert "ok" == call(breaker)
        budget.record_failure()
        assert 9.0 == budget.tokens

        own_server.stop()
        assert ["ok", "ok"] == [call(breaker), call(breaker)]
        assert ["failed"] * 3 == [call(breaker, fail=True) for _ in range(3)]
        assert "open" == breaker.state  # opened on the local state
        assert "rejected" == call(breaker)
        budget.record_failure()  # the budget carries on from the last count seen
        assert 8.0 == budget.tokens
        time.sleep(0.3)  # several failed background syncs: still one warning per store
        assert not mine.available
        assert 2 == len(redis_warnings(caplog))  # one per store, not one per operation

        own_server.start()  # same port, empty: the keys were lost
        eventually(lambda: mine.available and theirs.available, 5.0)
        # The open breaker was seeded back from the local state, and the other
        # process adopted it; the budget kept its local count.
        eventually(lambda: mirror.state == "open", SYNC + SLACK)
        assert "open" == breaker.state
        assert 8.0 == budget.tokens
        assert any("answers again" in r.message for r in caplog.records)

        caplog.clear()
        own_server.stop()
        call(breaker)
        eventually(lambda: not mine.available, 2.0)
        assert 1 <= len(redis_warnings(caplog)) <= 2  # a new outage warns again


def test_raise_mode_raises_retryx_error(own_server: RedisServer, name: str) -> None:
    """on_error="raise": operations that need Redis raise RetryxError, chained."""
    with RedisStore(own_server.url, on_error="raise", sync_interval=SYNC) as strict:
        breaker = CircuitBreaker(name, failure_threshold=1, store=strict)
        budget = RetryBudget(10, 1.0, name=name, store=strict)
        own_server.stop()

        @retryx.circuit_breaker(breaker)
        def work() -> None:
            raise ConnectionError("down")

        with pytest.raises(RetryxError) as info:
            work()
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        with pytest.raises(RetryxError):
            breaker.open()
        with pytest.raises(RetryxError):
            budget.record_failure()
        with pytest.raises(RetryxError):
            strict.sync()


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"client_or_url": 42}, "client_or_url"),
        ({"client_or_url": "http://example.com"}, "client_or_url"),
        ({"on_error": "ignore"}, "on_error"),
        ({"sync_interval": 0}, "sync_interval"),
        ({"sync_interval": -1.0}, "sync_interval"),
        ({"sync_interval": math.nan}, "sync_interval"),
        ({"sync_interval": True}, "sync_interval"),
        ({"prefix": 3}, "prefix"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], field: str) -> None:
    """Every bad argument is a ConfigError naming the parameter."""
    args = {"client_or_url": "redis://127.0.0.1:1/0", **kwargs}
    with pytest.raises(ConfigError, match=rf"RedisStore\.{field}"):
        RedisStore(args.pop("client_or_url"), **args)


def test_a_shared_budget_needs_a_name(store: RedisStore) -> None:
    """RetryBudget(store=...) without a name is a ConfigError."""
    with pytest.raises(ConfigError, match=r"RetryBudget\.name"):
        RetryBudget(store=store)


def test_importing_retryx_does_not_import_redis() -> None:
    """``import retryx`` stays light: the redis package loads with retryx.redis only."""
    code = "import sys, retryx; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_a_policy_accepts_a_shared_budget(store: RedisStore, name: str) -> None:
    """A store-backed budget plugs into Policy like an in-process one."""
    budget = RetryBudget(4, 1.0, name=name, store=store)
    calls = 0

    @retryx.retry(Policy(attempts=5, backoff="none", budget=budget))
    def work() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError) as info:
        work()
    assert 2 == calls  # 4 -> 3 (retry), 3 -> 2 (not above half: denied)
    assert "reason: budget" in info.value.__notes__[-1]


def test_benchmark_quick_mode_runs(server: RedisServer) -> None:
    """benchmarks/redis_breaker.py --quick runs end to end against the test server."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "redis_breaker.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={**os.environ, "RETRYX_BENCH_REDIS_URL": server.url},
    )
    assert 0 == proc.returncode, proc.stderr[-3000:]
    assert "failure path" in proc.stdout
