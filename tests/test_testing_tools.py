"""``retryx.testing``: ``fake_time``/``FakeClock``, ``seed``, ``FaultSequence``, the fixture."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from retryx import ConfigError, _clock, backoff, jitter, retry, testing
from retryx.testing import FakeClock, FaultSequence, fake_time

# --- fake_time -----------------------------------------------------------------------------


def test_fake_time_records_sync_waits_without_sleeping() -> None:
    """Under ``fake_time`` a sync retry's waits are recorded and move the clock; nothing sleeps."""
    fetch = retry(attempts=4, backoff=backoff.fixed(100.0), jitter="none")(
        FaultSequence(ConnectionError)
    )
    started = time.perf_counter()
    with fake_time() as clock, pytest.raises(ConnectionError):
        fetch()
    assert [100.0, 100.0, 100.0] == clock.sleeps
    assert 1300.0 == clock.monotonic()
    assert time.perf_counter() - started < 1.0


def test_fake_time_records_async_waits_without_sleeping() -> None:
    """Under ``fake_time`` async waits are recorded and move the clock; nothing sleeps."""
    seq = FaultSequence(ConnectionError, ConnectionError, "ok")

    @retry(backoff=backoff.fixed(100.0), jitter="none")
    async def fetch() -> Any:
        return seq()

    started = time.perf_counter()
    with fake_time() as clock:
        assert "ok" == asyncio.run(fetch())
    assert [100.0, 100.0] == clock.sleeps
    assert time.perf_counter() - started < 1.0


def test_fake_time_records_zero_waits() -> None:
    """Zero waits appear in ``sleeps`` (without calling any sleep) and do not move the clock."""
    fetch = retry(attempts=3, backoff="none")(FaultSequence(ConnectionError))
    with fake_time() as clock, pytest.raises(ConnectionError):
        fetch()
    assert [0.0, 0.0] == clock.sleeps
    assert 1000.0 == clock.monotonic()


def test_fake_clock_sleep_and_async_sleep() -> None:
    """``sleep`` and ``async_sleep`` record the delay and advance the clock."""
    clock = FakeClock(start=10.0)
    clock.sleep(1.5)
    asyncio.run(clock.async_sleep(2.5))  # type: ignore[arg-type]
    assert [1.5, 2.5] == clock.sleeps
    assert 14.0 == clock.monotonic()


def test_advance_moves_time_by_hand() -> None:
    """``advance`` moves both clocks without recording a wait."""
    with fake_time() as clock:
        wall = clock.now()
        clock.advance(30.0)
        assert 1030.0 == _clock.monotonic()
        assert wall + 30.0 == _clock.now()
        assert [] == clock.sleeps


def test_advance_backwards_is_refused() -> None:
    """Time never goes backwards: a negative ``advance`` is a ``ConfigError``."""
    with pytest.raises(ConfigError, match="-1"):
        FakeClock().advance(-1)


def test_now_is_wall_time_moving_with_the_clock() -> None:
    """``now()`` is epoch seconds (for HTTP-dates) and moves with waits."""
    with fake_time() as clock:
        start = clock.now()
        assert start > 1_000_000_000
        _clock.sleep(5.0)
        assert start + 5.0 == clock.now()


def test_fake_time_start() -> None:
    """``fake_time(start=...)`` sets the monotonic origin."""
    with fake_time(start=0.0) as clock:
        assert 0.0 == _clock.monotonic()
        assert 0.0 == clock.monotonic()


def test_fake_time_restores_the_real_clock() -> None:
    """Leaving ``fake_time`` (even by an exception) restores every clock function."""
    saved = (_clock.monotonic, _clock.now, _clock.sleep, _clock.async_sleep, _clock.zero_wait)

    def fail_inside() -> None:
        with fake_time():
            assert saved[0] is not _clock.monotonic
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert saved == (
        _clock.monotonic,
        _clock.now,
        _clock.sleep,
        _clock.async_sleep,
        _clock.zero_wait,
    )


def test_fake_time_nests() -> None:
    """An inner ``fake_time`` has its own clock; the outer one is back after it."""
    with fake_time() as outer:
        with fake_time(start=5.0) as inner:
            _clock.sleep(1.0)
        _clock.sleep(2.0)
    assert [1.0] == inner.sleeps
    assert [2.0] == outer.sleeps


def test_deadline_follows_the_fake_clock() -> None:
    """Deadlines are measured on the fake clock, so they can be tested without waiting."""
    fetch = retry(attempts=100, deadline=10.0, backoff=backoff.fixed(3.0), jitter="none")(
        FaultSequence(ConnectionError)
    )
    with fake_time() as clock, pytest.raises(ConnectionError):
        fetch()
    assert [3.0, 3.0, 3.0] == clock.sleeps


def test_retryx_clock_fixture(retryx_clock: FakeClock) -> None:
    """The plugin's ``retryx_clock`` fixture is a fake clock driving retryx's waits."""
    fetch = retry(attempts=2, backoff=backoff.fixed(7.0), jitter="none")(
        FaultSequence(ConnectionError, "ok")
    )
    assert "ok" == fetch()
    assert [7.0] == retryx_clock.sleeps


# --- seed ----------------------------------------------------------------------------------


def draws(n: int = 5) -> list[float]:
    return [jitter.full.apply(1.0, 1.0, 1.0, 1.0) for _ in range(n)]


def test_seed_makes_jitter_deterministic() -> None:
    """The same seed gives the same jitter draws."""
    testing.seed(99)
    first = draws()
    testing.seed(99)
    assert first == draws()
    testing.seed(100)
    assert first != draws()


def test_seed_as_context_manager_restores_the_previous_state() -> None:
    """``with seed(n):`` seeds inside the block and restores the random state on exit."""
    testing.seed(1)
    state = _clock.rng.getstate()
    with testing.seed(2):
        inside = draws()
    assert state == _clock.rng.getstate()
    with testing.seed(2):
        assert inside == draws()


def test_seed_restores_even_on_error() -> None:
    """The state is restored when the block raises."""
    testing.seed(1)
    state = _clock.rng.getstate()

    def fail_inside() -> None:
        with testing.seed(3):
            draws()
            raise KeyError

    with pytest.raises(KeyError):
        fail_inside()
    assert state == _clock.rng.getstate()


def test_plain_seed_keeps_its_seed() -> None:
    """Called plainly, ``seed(n)`` leaves the generator seeded (nothing to restore)."""
    testing.seed(7)
    expected = draws()
    testing.seed(7)
    assert expected == draws()


# --- FaultSequence -------------------------------------------------------------------------


def test_fault_sequence_produces_outcomes_in_turn() -> None:
    """Exception instances are raised, exception classes instantiated and raised, else returned."""
    error = ConnectionResetError("reset")
    seq = FaultSequence(error, TimeoutError, "ok", None)
    with pytest.raises(ConnectionResetError) as first:
        seq()
    assert error is first.value
    with pytest.raises(TimeoutError):
        seq()
    assert "ok" == seq()
    assert None is seq()
    assert 4 == seq.calls


def test_fault_sequence_repeats_the_last_outcome() -> None:
    """Once exhausted, the last outcome repeats."""
    seq = FaultSequence(KeyError, 42)
    with pytest.raises(KeyError):
        seq()
    assert [42, 42, 42] == [seq(), seq(), seq()]
    failing = FaultSequence("ok", ValueError)
    failing()
    for _ in range(3):
        with pytest.raises(ValueError):
            failing()
    assert 4 == failing.calls


def test_fault_sequence_accepts_any_arguments() -> None:
    """Any positional and keyword arguments are accepted (and recorded)."""
    seq = FaultSequence("ok")
    assert "ok" == seq(1, 2, host="db", timeout=3)
    assert [((1, 2), {"host": "db", "timeout": 3})] == seq.args


def test_fault_sequence_instances_are_fresh_per_class_outcome() -> None:
    """An exception class gives a new instance each time it is raised."""
    seq = FaultSequence(ConnectionError)
    raised = []
    for _ in range(2):
        with pytest.raises(ConnectionError) as info:
            seq()
        raised.append(info.value)
    assert raised[0] is not raised[1]


def test_fault_sequence_needs_an_outcome() -> None:
    """``FaultSequence()`` with nothing to produce is a ``ConfigError``."""
    with pytest.raises(ConfigError):
        FaultSequence()


def test_fault_sequence_drives_a_retry(retryx_clock: FakeClock) -> None:
    """A ``FaultSequence`` decorated directly makes a scripted flaky dependency."""
    seq = FaultSequence(ConnectionError, ConnectionError, "ok")
    assert "ok" == retry(seq)()
    assert 3 == seq.calls


def test_server_fixtures_of_the_plugin(
    retryx_echo: tuple[str, int],
    retryx_refusing: tuple[str, int],
    retryx_http: Any,
) -> None:
    """The plugin's server fixtures give loopback addresses that behave as named."""
    import socket
    import urllib.request

    with socket.create_connection(retryx_echo, timeout=2) as sock:
        sock.sendall(b"hi")
        assert b"hi" == sock.recv(16)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(retryx_refusing, timeout=2).close()
    server = retryx_http([(200, {}, b"ok")])
    with urllib.request.urlopen(server.url, timeout=2) as response:
        assert b"ok" == response.read()


def test_fault_server_fixtures_resetting_and_closing(
    retryx_resetting: tuple[str, int], retryx_accept_then_close: tuple[str, int], retryx_slow: Any
) -> None:
    """The resetting server resets, the closing one ends cleanly, the slow one answers late."""
    import socket

    def talk_to_resetting() -> None:
        # The reset may surface at the first or the second read.
        with socket.create_connection(retryx_resetting, timeout=2) as sock:
            sock.sendall(b"x")
            sock.recv(16)
            sock.recv(16)

    with pytest.raises(ConnectionError):
        talk_to_resetting()
    with socket.create_connection(retryx_accept_then_close, timeout=2) as sock:
        assert b"" == sock.recv(16)
    slow = retryx_slow(0.05)
    started = time.monotonic()
    with socket.create_connection(slow, timeout=2) as sock:
        sock.sendall(b"hi")
        assert b"hi" == sock.recv(16)
    assert time.monotonic() - started >= 0.05
