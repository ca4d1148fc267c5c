"""RedisStore(fallback_state=...): the state breakers assume when Redis fails or lost
their key; and the breaker conveniences of section 17 through a store, against a real
redis-server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import retryx
from retryx import CircuitBreaker, CircuitOpenError, ConfigError, events
from retryx.redis import RedisStore

from _redis import RedisServer, serve  # isort: skip

pytestmark = pytest.mark.redis

SYNC = 0.05  # the stores' sync_interval in these tests
SLACK = 2.0  # scheduling on a loaded 2-core machine, on top of the promised delay


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the tests that keep it up (distinct key names)."""
    yield from serve(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test may kill and restart."""
    yield from serve(tmp_path)


@pytest.fixture
def name() -> str:
    return f"fb-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def raw(server: RedisServer) -> Iterator[Any]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()


def eventually(check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until true (bounded in time)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout}s")


def call(breaker: CircuitBreaker, fail: bool = False) -> str:
    """One call through the breaker: ok, failed or rejected."""

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


def test_a_bad_fallback_state_is_a_config_error(server: RedisServer) -> None:
    """fallback_state accepts None, "closed" or "open" only."""
    with pytest.raises(ConfigError, match=r"RedisStore\.fallback_state"):
        RedisStore(server.url, fallback_state="half_open")  # type: ignore[arg-type]


def test_open_rejects_every_call_during_an_outage(own_server: RedisServer, name: str) -> None:
    """fallback_state="open": once Redis is unreachable, calls are rejected until it answers."""
    with RedisStore(own_server.url, sync_interval=SYNC, fallback_state="open") as store:
        breaker = CircuitBreaker(name, recovery_timeout=60.0, store=store)
        assert "ok" == call(breaker)
        own_server.stop()
        eventually(lambda: not store.available, SLACK)  # the background sync notices
        assert "open" == breaker.state
        with pytest.raises(CircuitOpenError) as info:
            breaker._acquire()
        assert SYNC == info.value.retry_after  # when Redis is asked again
        assert ["rejected", "rejected"] == [call(breaker), call(breaker)]

        own_server.start()  # empty: the key was lost, and is re-created open
        eventually(lambda: store.available, 5.0)
        eventually(lambda: 0 < breaker.retry_after <= 60.0, SLACK)
        assert "open" == breaker.state


def test_without_a_fallback_an_outage_keeps_the_local_state(
    own_server: RedisServer, name: str
) -> None:
    """fallback_state=None (the default): the local state goes on deciding."""
    with RedisStore(own_server.url, sync_interval=SYNC) as store:
        breaker = CircuitBreaker(name, store=store)
        own_server.stop()
        eventually(lambda: not store.available, SLACK)
        assert ("closed", "ok") == (breaker.state, call(breaker))


def test_closed_admits_every_call_and_counts_no_failure_during_an_outage(
    own_server: RedisServer, name: str
) -> None:
    """fallback_state="closed": an open breaker closes for the outage and stays closed."""
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        with RedisStore(own_server.url, sync_interval=SYNC, fallback_state="closed") as store:
            breaker = CircuitBreaker(name, failure_threshold=1, store=store)
            assert "failed" == call(breaker, fail=True)
            assert "open" == breaker.state  # shared through Redis
            own_server.stop()
            eventually(lambda: not store.available, SLACK)
            assert "closed" == breaker.state
            assert ["failed"] * 3 == [call(breaker, fail=True) for _ in range(3)]
            assert ("closed", "ok") == (breaker.state, call(breaker))

            own_server.start()  # the key was lost: re-created closed
            eventually(lambda: store.available, 5.0)
            store.sync()
            assert "closed" == breaker.state
    finally:
        unsubscribe()
    changes = [(e.old, e.new) for e in seen if isinstance(e, events.CircuitStateChanged)]
    assert [("closed", "open"), ("open", "closed")] == changes


def test_a_lost_key_is_recreated_in_the_fallback_state(
    server: RedisServer, raw: Any, name: str
) -> None:
    """A key Redis lost while it answers is written back as fallback_state says."""
    with RedisStore(server.url, sync_interval=SYNC, fallback_state="open") as store:
        breaker = CircuitBreaker(name, recovery_timeout=60.0, store=store)
        key = f"retryx:breaker:{name}"
        assert "c" == raw.hget(key, "st")  # written at attach: a loss can be told apart
        assert "ok" == call(breaker)
        raw.delete(key)
        eventually(lambda: breaker.state == "open", SLACK)
        assert "o" == raw.hget(key, "st")


def test_without_a_fallback_a_lost_key_keeps_the_local_state(
    server: RedisServer, raw: Any, name: str
) -> None:
    """fallback_state=None: a pristine breaker whose key is lost stays closed."""
    with RedisStore(server.url, sync_interval=SYNC) as store:
        breaker = CircuitBreaker(name, store=store)
        raw.delete(f"retryx:breaker:{name}")
        store.sync()
        assert ("closed", "ok") == (breaker.state, call(breaker))


def test_half_open_and_opened_at_are_shared(server: RedisServer, name: str) -> None:
    """half_open() by hand applies to every process; opened_at is the shared opening."""
    with (
        RedisStore(server.url, sync_interval=SYNC) as mine,
        RedisStore(server.url, sync_interval=SYNC) as theirs,
    ):
        breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=60.0, store=mine)
        mirror = CircuitBreaker(name, failure_threshold=1, recovery_timeout=60.0, store=theirs)
        before = time.time()
        assert "failed" == call(breaker, fail=True)
        eventually(lambda: mirror.state == "open", SLACK)
        assert mirror.opened_at is not None
        assert before - 1.0 <= mirror.opened_at <= time.time() + 1.0
        assert isinstance(breaker.last_failure, ConnectionError)
        mirror.half_open()
        eventually(lambda: breaker.state == "half_open", SLACK)
        assert "ok" == call(breaker)  # the trial closes it for both
        eventually(lambda: mirror.state == "closed", SLACK)
