"""``attempts=None`` (unlimited), waits read from a returned value, ``RetryWaited``, and
the warning for a predicate returning ``None`` (issue 19, item 9)."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Fault, Policy, backoff, events, retry
from retryx._explain import warnings
from retryx.testing import FakeClock, FaultSequence


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Callable[..., Callable[[], Any]]:
    """Build ``fetch`` (sync or async) from outcomes and policy fields; returns a caller."""

    def build(*outcomes: Any, **fields: Any) -> Callable[[], Any]:
        seq = FaultSequence(*outcomes)
        fields.setdefault("name", "fetch")
        fields.setdefault("jitter", "none")
        if request.param == "sync":
            return retry(**fields)(seq)  # type: ignore[no-any-return]

        async def fetch() -> Any:
            return seq()

        decorated = retry(**fields)(fetch)
        return lambda: asyncio.run(decorated())

    return build


# --- attempts=None ---------------------------------------------------------------------------


def test_unlimited_attempts_retry_until_success(clock: FakeClock, make: Any) -> None:
    """``attempts=None`` keeps retrying: 40 failures, then the result."""
    call = make(*[ConnectionError("down")] * 40, "ok", attempts=None, backoff="fixed")
    assert "ok" == call()
    assert 40 == len(clock.sleeps)


def test_unlimited_attempts_end_at_the_deadline(clock: FakeClock, make: Any) -> None:
    """With a deadline, unlimited attempts give up when the next wait would cross it."""
    received: list[Any] = []
    events.subscribe(received.append)
    call = make(ConnectionError("down"), attempts=None, backoff=backoff.fixed(1.0), deadline=10)
    with pytest.raises(ConnectionError):
        call()
    gave_up = received[-1]
    assert ("deadline", 11) == (gave_up.reason, gave_up.attempts)  # at t = 0, 1, ..., 10


def test_unlimited_attempts_in_a_retry_block(clock: FakeClock) -> None:
    """A retry block takes ``attempts=None`` too."""
    outcomes = FaultSequence(*[TimeoutError()] * 12, "ok")
    for attempt in retryx.attempts(attempts=None, backoff="none"):
        with attempt:
            outcomes()
    assert 13 == outcomes.calls


def test_explain_warns_about_an_unbounded_policy() -> None:
    """``explain`` warns when nothing bounds the call, and says the deadline alone bounds it."""
    (unbounded,) = [w for w in warnings(Policy(attempts=None)) if "unlimited" in w]
    assert "no deadline" in unbounded
    (bounded,) = [w for w in warnings(Policy(attempts=None, deadline=30)) if "unlimited" in w]
    assert "only the deadline bounds" in bounded


def test_explain_cli_takes_unlimited(capsys: pytest.CaptureFixture[str]) -> None:
    """``retryx explain --attempts unlimited`` shows the schedule and the warning."""
    from retryx._cli import main

    assert 0 == main(["explain", "--attempts", "unlimited"])
    out = capsys.readouterr().out
    assert "of unlimited attempts" in out
    assert "warning: unlimited attempts and no deadline" in out


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_attempts_must_be_a_positive_int_or_none(bad: Any) -> None:
    """Anything but an int >= 1 or ``None`` is a ``ConfigError`` naming ``Policy.attempts``."""
    with pytest.raises(ConfigError, match=r"Policy\.attempts"):
        Policy(attempts=bad)


# --- a wait read from a returned value -------------------------------------------------------


def test_retry_if_result_may_return_the_delay(clock: FakeClock, make: Any) -> None:
    """A number returned by ``retry_if_result`` is the wait before the retry (not jittered)."""
    call = make(
        {"status": 429, "retry_after": 2.5},
        {"status": 200},
        attempts=3,
        jitter="full",
        retry_if_result=lambda r: r.get("retry_after", False),
    )
    assert {"status": 200} == call()
    assert [2.5] == clock.sleeps


def test_retry_if_result_may_return_a_timedelta_or_zero(clock: FakeClock, make: Any) -> None:
    """A ``timedelta`` is a delay too; ``0`` retries at once (it is not read as false)."""
    waits = iter([datetime.timedelta(milliseconds=1500), 0, False])
    call = make("a", "b", "c", attempts=5, retry_if_result=lambda r: next(waits))
    assert "c" == call()
    assert [1.5, 0.0] == clock.sleeps


def test_retry_if_result_may_return_a_fault(clock: FakeClock, make: Any) -> None:
    """A returned ``Fault`` sets the wait (its ``retry_after``) and the cause."""
    received: list[Any] = []
    events.subscribe(received.append)

    def verdict(response: dict[str, Any]) -> Fault | bool:
        if response["status"] == 429:
            return Fault(True, "throttled", retry_after=4.0)
        return False

    call = make({"status": 429}, {"status": 200}, retry_if_result=verdict)
    assert {"status": 200} == call()
    assert [4.0] == clock.sleeps
    assert "throttled" == received[0].cause
    assert {"status": 429} == received[0].result


def test_a_returned_permanent_fault_is_not_retried(clock: FakeClock, make: Any) -> None:
    """A ``Fault`` that is not transient returns the result as it is."""
    call = make("gone", "never", retry_if_result=lambda r: Fault(False, "permanent"))
    assert "gone" == call()
    assert [] == clock.sleeps


def test_a_returned_delay_beyond_retry_after_max_ends_the_call(clock: FakeClock, make: Any) -> None:
    """A returned delay is a hint: above ``retry_after_max`` the call ends with the result."""
    received: list[Any] = []
    events.subscribe(received.append)
    call = make("busy", "ok", retry_after_max=10, retry_if_result=lambda r: 3600.0)
    assert "busy" == call()
    assert ("deadline", "busy") == (received[-1].reason, received[-1].result)


def test_a_negative_returned_delay_is_a_config_error(clock: FakeClock, make: Any) -> None:
    """A negative delay is a ``ConfigError`` naming ``Policy.retry_if_result``."""
    call = make("busy", retry_if_result=lambda r: -1.0)
    with pytest.raises(ConfigError, match=r"Policy\.retry_if_result"):
        call()


# --- RetryWaited -----------------------------------------------------------------------------


def test_retry_waited_ends_each_wait(clock: FakeClock, make: Any) -> None:
    """Each wait is followed by ``RetryWaited`` (the failed attempt, the delay waited)."""
    received: list[Any] = []

    def seen(event: Any) -> None:
        received.append((type(event).__name__, len(clock.sleeps)))

    events.subscribe(seen)
    call = make(ConnectionError, ConnectionError, "ok", backoff=backoff.fixed(0.5))
    assert "ok" == call()
    assert [
        ("RetryScheduled", 0),
        ("RetryWaited", 1),
        ("RetryScheduled", 1),
        ("RetryWaited", 2),
        ("Succeeded", 2),
    ] == received


def test_retry_waited_in_a_retry_block(clock: FakeClock) -> None:
    """A retry block emits ``RetryWaited`` after each wait too."""
    received: list[Any] = []
    events.subscribe(received.append)
    outcomes = FaultSequence(ConnectionError, "ok")
    for attempt in retryx.attempts(backoff=backoff.fixed(0.5), jitter="none", name="block"):
        with attempt:
            outcomes()
    assert events.RetryWaited("block", 1, 0.5) == received[1]


# --- a predicate returning None --------------------------------------------------------------


@pytest.fixture
def fresh_warnings() -> None:
    """Forget the warnings already given (they are once per process)."""
    from retryx import _classifiers

    _classifiers._warned_none.clear()


def test_a_retry_if_result_returning_none_is_warned_about_once(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    """``None`` from ``retry_if_result`` is read as no retry, with one warning per callable."""

    def forgot_to_return(result: Any) -> None:
        result == "busy"  # noqa: B015 - the bug this warning is for

    call = make("busy", retry_if_result=forgot_to_return, name="forgetful")
    with caplog.at_level(logging.WARNING, logger="retryx"):
        assert "busy" == call()
        assert "busy" == call()
    (warning,) = [r for r in caplog.records if "returned None" in r.getMessage()]
    assert "forgetful" in warning.getMessage()
    assert "Policy.retry_if_result" in warning.getMessage()
    assert [] == clock.sleeps


def test_a_retry_on_predicate_returning_none_is_warned_about_once(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    """``None`` from a ``retry_on`` predicate is permanent, with one warning per predicate."""

    def no_verdict(exc: BaseException) -> None:
        isinstance(exc, ConnectionError)

    call = make(ConnectionError("down"), retry_on=no_verdict)
    with caplog.at_level(logging.WARNING, logger="retryx"):
        for _ in range(2):
            with pytest.raises(ConnectionError):
                call()
    (warning,) = [r for r in caplog.records if "returned None" in r.getMessage()]
    assert "no_verdict" in warning.getMessage()


def test_retry_waited_in_an_async_retry_block(clock: FakeClock) -> None:
    """``async for`` blocks emit ``RetryWaited`` after each wait, and run the policy's hooks."""
    received: list[Any] = []
    hooked: list[Any] = []
    events.subscribe(received.append)
    outcomes = FaultSequence(ConnectionError, "ok")

    async def run() -> None:
        block = retryx.attempts(
            backoff=backoff.fixed(0.5), jitter="none", name="ablock", on_retry=hooked.append
        )
        async for attempt in block:
            with attempt:
                outcomes()

    asyncio.run(run())
    assert events.RetryWaited("ablock", 1, 0.5) == received[1]
    assert ["RetryScheduled"] == [type(e).__name__ for e in hooked]
