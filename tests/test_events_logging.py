"""Events (``RetryScheduled``, ``GaveUp``, ``Succeeded``) and the ``retryx`` logger."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pytest

from retryx import ConfigError, RetryBudget, backoff, events, retry
from retryx.testing import FakeClock, FaultSequence


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Callable[..., Callable[[], Any]]:
    """Build ``fetch_user`` (sync or async) from outcomes and policy fields; returns a caller."""

    def build(*outcomes: Any, **fields: Any) -> Callable[[], Any]:
        seq = FaultSequence(*outcomes)
        fields.setdefault("name", "fetch_user")
        if request.param == "sync":
            return retry(**fields)(seq)  # type: ignore[no-any-return]

        async def fetch_user() -> Any:
            return seq()

        decorated = retry(**fields)(fetch_user)
        return lambda: asyncio.run(decorated())

    return build


@pytest.fixture
def received() -> list[Any]:
    """Every event emitted during the test."""
    log: list[Any] = []
    events.subscribe(log.append)
    return log


def fresh(fields: dict[str, Any]) -> dict[str, Any]:
    """Policy fields with factories called, so shared state (a budget) is new per test."""
    return {k: v() if callable(v) else v for k, v in fields.items()}


def kinds(log: list[Any]) -> list[str]:
    return [type(e).__name__ for e in log]


# --- event records -------------------------------------------------------------------------


def test_events_of_a_call_that_succeeds_after_retries(
    clock: FakeClock, make: Any, received: list[Any]
) -> None:
    """Each retry emits ``RetryScheduled`` (failed attempt, wait, fault) and ``RetryWaited``
    when the wait ends, then ``Succeeded``."""
    first, second = ConnectionRefusedError("one"), TimeoutError("two")
    call = make(first, second, "ok", attempts=5, jitter="none", backoff=backoff.fixed(0.25))
    assert "ok" == call()
    assert [
        events.RetryScheduled("fetch_user", 1, 0.25, first, "connection"),
        events.RetryWaited("fetch_user", 1, 0.25),
        events.RetryScheduled("fetch_user", 2, 0.25, second, "timeout"),
        events.RetryWaited("fetch_user", 2, 0.25),
        events.Succeeded("fetch_user", 3, 0.5),
    ] == received


def test_succeeded_for_a_first_attempt_success(
    clock: FakeClock, make: Any, received: list[Any]
) -> None:
    """A call succeeding at once still emits ``Succeeded`` with ``attempts == 1``."""
    assert "ok" == make("ok")()
    assert [events.Succeeded("fetch_user", 1, 0.0)] == received


def test_gave_up_after_attempts(clock: FakeClock, make: Any, received: list[Any]) -> None:
    """Running out of attempts emits ``GaveUp`` with attempts, elapsed time, fault and reason."""
    error = ConnectionResetError("gone")
    call = make(error, attempts=3, jitter="none", backoff=backoff.fixed(1.0))
    with pytest.raises(ConnectionResetError):
        call()
    assert [
        "RetryScheduled",
        "RetryWaited",
        "RetryScheduled",
        "RetryWaited",
        "GaveUp",
    ] == kinds(received)
    assert events.GaveUp("fetch_user", 3, 2.0, error, "attempts") == received[-1]


@pytest.mark.parametrize(
    ("outcome", "fields", "reason", "attempts"),
    [
        (ValueError("bad"), {}, "permanent", 1),
        (ConnectionError("x"), {"deadline": 1.0, "backoff": backoff.fixed(5.0)}, "deadline", 1),
        (ConnectionError("x"), {"budget": lambda: RetryBudget(max_tokens=4)}, "budget", 2),
    ],
)
def test_gave_up_reasons(
    clock: FakeClock,
    make: Any,
    received: list[Any],
    outcome: Exception,
    fields: dict[str, Any],
    reason: str,
    attempts: int,
) -> None:
    """``GaveUp.reason`` says why the call ended; a permanent first fault emits one too."""
    call = make(outcome, attempts=5, jitter="none", **{"backoff": "none", **fresh(fields)})
    with pytest.raises(type(outcome)):
        call()
    gave_up = received[-1]
    assert isinstance(gave_up, events.GaveUp)
    assert (reason, attempts, outcome) == (gave_up.reason, gave_up.attempts, gave_up.exception)


def test_result_retries_carry_no_exception(
    clock: FakeClock, make: Any, received: list[Any]
) -> None:
    """A ``retry_if_result`` match is retried and given up on with ``exception=None``."""
    call = make(
        "busy",
        "busy",
        attempts=2,
        jitter="none",
        backoff=backoff.fixed(1.0),
        retry_if_result=lambda r: r == "busy",
    )
    assert "busy" == call()
    assert [
        events.RetryScheduled("fetch_user", 1, 1.0, None, "result"),
        events.RetryWaited("fetch_user", 1, 1.0),
        events.GaveUp("fetch_user", 2, 1.0, None, "attempts"),
    ] == received


def test_event_records_are_frozen_dataclasses() -> None:
    """Event records are frozen dataclasses with the contract's fields (the call's last)."""
    call = ["target", "args", "kwargs", "result"]
    expected = {
        events.RetryScheduled: ["name", "attempt", "delay", "exception", "cause", *call],
        events.RetryWaited: ["name", "attempt", "delay"],
        events.GaveUp: ["name", "attempts", "elapsed", "exception", "reason", *call],
        events.Succeeded: ["name", "attempts", "elapsed", *call],
        events.CircuitStateChanged: ["breaker", "old", "new"],
        events.EndpointFailed: ["name", "endpoint", "exception"],
        events.NestedRetry: ["outer", "inner"],
    }
    for cls, names in expected.items():
        assert names == [f.name for f in dataclasses.fields(cls)]
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


# --- subscribers ---------------------------------------------------------------------------


def test_unsubscribe_stops_delivery(clock: FakeClock) -> None:
    """The function ``subscribe`` returns removes the callback; calling it twice is harmless."""
    log: list[Any] = []
    unsubscribe = events.subscribe(log.append)
    fetch = retry(FaultSequence("ok"))
    fetch()
    unsubscribe()
    unsubscribe()
    fetch()
    assert 1 == len(log)


def test_subscribe_needs_a_callable() -> None:
    """Subscribing something that is not callable is a ``ConfigError``."""
    with pytest.raises(ConfigError):
        events.subscribe(42)  # type: ignore[arg-type]


def test_raising_subscriber_is_logged_and_skipped(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that raises is logged on ``retryx`` and skipped; others and the call go on."""

    def broken(event: Any) -> None:
        raise RuntimeError("subscriber bug")

    log: list[Any] = []
    events.subscribe(broken)
    events.subscribe(log.append)
    call = make(ConnectionError, "ok", backoff="none")
    with caplog.at_level(logging.DEBUG, logger="retryx"):
        assert "ok" == call()
    assert ["RetryScheduled", "RetryWaited", "Succeeded"] == kinds(log)
    failures = [r for r in caplog.records if r.exc_info and "subscriber" in r.getMessage()]
    assert 3 == len(failures)
    assert "retryx" == failures[0].name
    assert logging.ERROR == failures[0].levelno
    assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]


def test_clear_drops_every_subscriber(clock: FakeClock) -> None:
    """``events.clear()`` removes all subscribers."""
    log: list[Any] = []
    events.subscribe(log.append)
    events.clear()
    retry(FaultSequence("ok"))()
    assert [] == log


# --- logging -------------------------------------------------------------------------------


def retryx_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "retryx"]


def test_retry_is_logged_at_warning_with_the_cause(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry logs a WARNING naming the call, the wait, the fault, the cause and the attempt."""
    call = make(
        ConnectionRefusedError,
        ConnectionRefusedError,
        "ok",
        attempts=5,
        jitter="none",
        backoff=backoff.fixed(0.42),
    )
    with caplog.at_level(logging.DEBUG, logger="retryx"):
        call()
    warnings = [r for r in retryx_records(caplog) if r.levelno == logging.WARNING]
    assert [
        "retrying fetch_user in 0.42s after ConnectionRefusedError (cause=connection, attempt 1/5)",
        "retrying fetch_user in 0.42s after ConnectionRefusedError (cause=connection, attempt 2/5)",
    ] == [r.getMessage() for r in warnings]
    assert {
        "name": "fetch_user",
        "attempt": 2,
        "delay": 0.42,
        "cause": "connection",
        "elapsed": pytest.approx(0.42),
    } == warnings[1].retryx  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("outcome", "fields", "reason"),
    [
        (ConnectionError("down"), {"attempts": 2}, "attempts"),
        (ConnectionError("down"), {"deadline": 1.0, "backoff": backoff.fixed(5.0)}, "deadline"),
        (ConnectionError("down"), {"budget": lambda: RetryBudget(max_tokens=2)}, "budget"),
    ],
)
def test_giving_up_is_logged_at_error(
    clock: FakeClock,
    make: Any,
    caplog: pytest.LogCaptureFixture,
    outcome: Exception,
    fields: dict[str, Any],
    reason: str,
) -> None:
    """Giving up for attempts, deadline or budget logs one ERROR with the reason."""
    call = make(outcome, jitter="none", **{"backoff": "none", **fresh(fields)})
    with caplog.at_level(logging.DEBUG, logger="retryx"), pytest.raises(ConnectionError):
        call()
    errors = [r for r in retryx_records(caplog) if r.levelno == logging.ERROR]
    assert 1 == len(errors)
    message = errors[0].getMessage()
    assert "fetch_user" in message
    assert f"reason: {reason}" in message
    fields_logged = errors[0].retryx  # type: ignore[attr-defined]
    assert {"name", "attempt", "elapsed", "reason"} == set(fields_logged)
    assert reason == fields_logged["reason"]
    assert "fetch_user" == fields_logged["name"]


def test_permanent_fault_is_logged_at_debug_only(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A permanent fault is the caller's to handle: DEBUG, never WARNING or ERROR."""
    call = make(ValueError("bad input"))
    with caplog.at_level(logging.DEBUG, logger="retryx"), pytest.raises(ValueError):
        call()
    records = retryx_records(caplog)
    assert [logging.DEBUG] == [r.levelno for r in records]
    assert "permanent" == records[0].retryx["reason"]  # type: ignore[attr-defined]


def test_nothing_logged_above_info_for_a_success(
    clock: FakeClock, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A first-attempt success logs nothing at WARNING or above."""
    with caplog.at_level(logging.DEBUG, logger="retryx"):
        make("ok")()
    assert [] == [r for r in retryx_records(caplog) if r.levelno >= logging.WARNING]


def test_log_name_defaults_to_the_qualname(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ``Policy.name`` logs and events use the callable's qualified name."""
    log: list[Any] = []
    events.subscribe(log.append)

    @retry(attempts=2, backoff="none")
    def load() -> None:
        raise ConnectionError

    with caplog.at_level(logging.WARNING, logger="retryx"), pytest.raises(ConnectionError):
        load()
    assert {load.__qualname__} == {e.name for e in log}
    assert all(load.__qualname__ in r.getMessage() for r in retryx_records(caplog))


def test_silenced_logger_still_emits_events(
    clock: FakeClock, make: Any, received: list[Any]
) -> None:
    """Events do not depend on the logger's level."""
    logging.getLogger("retryx").setLevel(logging.CRITICAL + 1)
    with pytest.raises(ConnectionError):
        make(ConnectionError, attempts=2, backoff="none")()
    assert ["RetryScheduled", "RetryWaited", "GaveUp"] == kinds(received)
