"""Switches: ``set_active``, ``testing.test_mode`` and ``override`` affect every layer
and restore what was there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Policy, backoff, testing
from retryx.testing import FakeClock, FaultSequence


@pytest.fixture(autouse=True)
def _back_on() -> Iterator[None]:
    yield
    retryx.set_active(True)


def test_switched_off_nothing_is_retried(clock: FakeClock) -> None:
    """``set_active(False)``: one plain call, the fault raised as is, no note."""
    seq = FaultSequence(ConnectionError("down"), "ok")
    call = retryx.retry(attempts=5)(seq)
    retryx.set_active(False)
    with pytest.raises(ConnectionError) as info:
        call()
    assert 1 == seq.calls
    assert not getattr(info.value, "__notes__", [])
    retryx.set_active(True)
    assert "ok" == call()


def test_switched_off_breakers_admit_and_count_nothing(clock: FakeClock) -> None:
    """An open breaker admits while retryx is off, and its counts do not move."""
    breaker = retryx.CircuitBreaker("switch-db", failure_threshold=1)
    breaker.open()
    guarded = breaker(lambda: "through")
    retryx.set_active(False)
    assert "through" == guarded()
    retryx.set_active(True)
    with pytest.raises(retryx.CircuitOpenError):
        guarded()


def test_switched_off_failover_calls_the_first_endpoint(clock: FakeClock) -> None:
    """A failover function is called once, on the first endpoint."""
    seen: list[str] = []

    @retryx.failover(hosts=["a", "b"])
    def query(*, host: str = retryx.ENDPOINT) -> str:
        seen.append(host)
        raise ConnectionRefusedError(host)

    retryx.set_active(False)
    with pytest.raises(ConnectionRefusedError):
        query()
    assert ["a"] == seen


def test_switched_off_fallback_does_not_catch(clock: FakeClock) -> None:
    """Fallbacks are layers too: off, the fault reaches the caller."""
    call = retryx.fallback(value=0)(retryx.retry(FaultSequence(KeyError("x"))))
    retryx.set_active(False)
    with pytest.raises(KeyError):
        call()


def test_switched_off_coroutines_and_methods(clock: FakeClock) -> None:
    """Coroutine functions and methods (the proxy form) are plain calls too."""
    seq = FaultSequence(ConnectionError(), "ok")

    @retryx.retry(attempts=3)
    async def fetch() -> Any:
        return seq()

    class Client:
        @retryx.retry(attempts=3)
        @classmethod
        def get(cls) -> Any:
            return seq()

    retryx.set_active(False)
    with pytest.raises(ConnectionError):
        asyncio.run(fetch())
    assert "ok" == Client.get()
    assert 2 == seq.calls


def test_switched_off_blocks_run_once(clock: FakeClock) -> None:
    """A retry block runs its body once and raises its fault."""
    runs = 0
    retryx.set_active(False)

    def block() -> None:
        nonlocal runs
        for attempt in retryx.attempts(attempts=4, name="off-block"):
            with attempt:
                runs += 1
                raise ConnectionError

    with pytest.raises(ConnectionError):
        block()
    assert 1 == runs


def test_set_active_rejects_non_bools() -> None:
    """``set_active("no")`` is a mistake, not a truthy value."""
    with pytest.raises(ConfigError, match="active must be a bool"):
        retryx.set_active("no")  # type: ignore[arg-type]


def test_test_mode_caps_attempts_and_removes_waits(clock: FakeClock) -> None:
    """Inside ``test_mode(attempts=2)`` a 5-attempt policy makes 2 attempts and never waits."""
    seq = FaultSequence(ConnectionError(), ConnectionError(), ConnectionError(), "ok")
    call = retryx.retry(attempts=5, backoff=backoff.fixed(30.0))(seq)
    with testing.test_mode(attempts=2), pytest.raises(ConnectionError):
        call()
    assert 2 == seq.calls
    assert [0.0] == clock.sleeps
    assert "ok" == call()  # restored: the next call retries fully again (2 more faults)


def test_test_mode_one_attempt_is_the_fixture(retryx_test_mode: None, clock: FakeClock) -> None:
    """The ``retryx_test_mode`` fixture: one attempt per call."""
    seq = FaultSequence(ConnectionError(), "ok")
    with pytest.raises(ConnectionError):
        retryx.retry(attempts=3)(seq)()
    assert 1 == seq.calls


def test_test_mode_rejects_bad_attempts() -> None:
    """``test_mode(attempts=0)`` is a ``ConfigError``."""
    with pytest.raises(ConfigError, match="attempts"), testing.test_mode(attempts=0):
        pass


def test_override_swaps_the_policy_inside_the_block(clock: FakeClock) -> None:
    """``retryx.override(fn, attempts=1)`` changes fn's policy, then restores it."""
    seq = FaultSequence(ConnectionError(), "ok")
    call = retryx.retry(Policy(attempts=3, backoff="none"))(seq)
    with retryx.override(call, attempts=1) as policy, pytest.raises(ConnectionError):
        call()
    assert 1 == policy.attempts
    assert 1 == seq.calls
    assert "ok" == call()


def test_override_of_a_coroutine_function(clock: FakeClock) -> None:
    """Overrides apply to async pipelines too."""
    seq = FaultSequence(ConnectionError(), ConnectionError(), "ok")

    @retryx.retry(attempts=3, backoff="none")
    async def fetch() -> Any:
        return seq()

    with retryx.override(fetch, attempts=2), pytest.raises(ConnectionError):
        asyncio.run(fetch())
    assert 2 == seq.calls


def test_override_needs_a_retry_layer() -> None:
    """Only a ``@retry`` callable can be overridden; bad fields are ``ConfigError``s."""
    with pytest.raises(ConfigError, match="no @retry layer"), retryx.override(print, attempts=1):
        pass
    call = retryx.retry(lambda: 1)
    with pytest.raises(ConfigError), retryx.override(call, attempts=0):
        pass
