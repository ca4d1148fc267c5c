"""The ``@retry`` engine on plain functions (mirrored by ``test_retry_async.py``)."""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

import retryx
from retryx import (
    CircuitOpenError,
    ConfigError,
    Policy,
    RetryBudget,
    Transient,
    _clock,
    backoff,
    current,
    events,
    retry,
    stats,
)
from retryx.testing import FakeClock, FaultSequence

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

NOTE = re.compile(
    r"retryx: gave up after (\d+) attempts? in (\d+\.\d\d)s \(policy '(.+)', reason: (\w+)\)"
)


def flaky(*outcomes: Any, **fields: Any) -> tuple[FaultSequence, Callable[..., Any]]:
    """A function ``fetch`` decorated with ``retry(**fields)`` producing ``outcomes`` in turn."""
    seq = FaultSequence(*outcomes)

    def fetch(*args: Any, **kwargs: Any) -> Any:
        return seq(*args, **kwargs)

    return seq, retry(**fields)(fetch)


def exact(**fields: Any) -> dict[str, Any]:
    """Policy fields with no jitter, so the waits are exactly the backoff."""
    return {"jitter": "none", **fields}


def note_of(exc: BaseException) -> tuple[int, str, str, str]:
    """The (attempts, elapsed, policy, reason) of the single retryx note on ``exc``."""
    notes = [n for n in getattr(exc, "__notes__", []) if n.startswith("retryx:")]
    assert 1 == len(notes), notes
    match = NOTE.fullmatch(notes[0])
    assert match is not None, notes[0]
    return int(match[1]), match[2], match[3], match[4]


def gave_up_events() -> list[events.GaveUp]:
    received: list[events.GaveUp] = []
    events.subscribe(lambda e: received.append(e) if isinstance(e, events.GaveUp) else None)
    return received


# --- decorator forms -----------------------------------------------------------------------


def _bare(func: Callable[..., Any]) -> Callable[..., Any]:
    return retry(func)


@pytest.fixture(
    params=[
        pytest.param(_bare, id="@retry"),
        pytest.param(retry(), id="@retry()"),
        pytest.param(retry(Policy(attempts=3)), id="@retry(Policy(...))"),
        pytest.param(retry(attempts=5, backoff="exponential"), id="@retry(attempts=5, ...)"),
    ]
)
def decorate(request: pytest.FixtureRequest) -> Decorator:
    """Every decorator form of ``retry``."""
    return request.param  # type: ignore[no-any-return]


def test_every_form_retries_until_success(clock: FakeClock, decorate: Decorator) -> None:
    """Each decorator form retries transient faults and returns the eventual result."""
    seq = FaultSequence(ConnectionError, TimeoutError, "ok")
    fetch = decorate(seq)
    assert "ok" == fetch()
    assert 3 == seq.calls
    assert 2 == len(clock.sleeps)


def test_every_form_passes_arguments_through(clock: FakeClock, decorate: Decorator) -> None:
    """Positional and keyword arguments reach the callable on every attempt."""
    seq = FaultSequence(ConnectionError, "ok")
    assert "ok" == decorate(seq)(1, b=2)
    assert [((1,), {"b": 2}), ((1,), {"b": 2})] == seq.args


def test_policy_and_fields_combine(clock: FakeClock) -> None:
    """``retry(policy, **fields)`` applies the fields on top of the policy."""
    seq, fetch = flaky(ConnectionError)
    fetch = retry(Policy(attempts=2), attempts=4, jitter="none")(seq)
    with pytest.raises(ConnectionError):
        fetch()
    assert 4 == seq.calls


def test_unknown_field_is_config_error() -> None:
    """``retry(atempts=3)`` (a typo) raises ``ConfigError`` naming the bad field."""
    with pytest.raises(ConfigError, match="atempts"):
        retry(atempts=3)


def test_bad_positional_argument_is_config_error() -> None:
    """``retry(42)`` is neither a callable, a policy nor a name: ``ConfigError``."""
    with pytest.raises(ConfigError, match="42"):
        retry(42)  # type: ignore[call-overload]


def test_bad_field_value_is_config_error_at_decoration() -> None:
    """An invalid policy field fails when the decorator is built, not at the call."""
    with pytest.raises(ConfigError, match=r"Policy\.attempts.*0"):
        retry(attempts=0)


# --- attempts and waits --------------------------------------------------------------------


def test_first_attempt_success_does_not_wait(clock: FakeClock) -> None:
    """A call that succeeds at once runs once and never waits."""
    seq, fetch = flaky("ok")
    assert "ok" == fetch()
    assert 1 == seq.calls
    assert [] == clock.sleeps


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_attempts_count_the_first_call(clock: FakeClock, attempts: int) -> None:
    """``attempts`` is the total number of calls, the first one included."""
    seq, fetch = flaky(ConnectionError, attempts=attempts, **exact())
    with pytest.raises(ConnectionError):
        fetch()
    assert attempts == seq.calls
    assert attempts - 1 == len(clock.sleeps)


def test_waits_follow_the_backoff_exactly_without_jitter(clock: FakeClock) -> None:
    """Without jitter the waits are ``backoff.delay(1..n-1)``."""
    b = backoff.exponential(initial=0.1, multiplier=2.0, max=0.3)
    _seq, fetch = flaky(ConnectionError, attempts=5, backoff=b, jitter="none")
    with pytest.raises(ConnectionError):
        fetch()
    assert [0.1, 0.2, 0.3, 0.3] == clock.sleeps


def test_full_jitter_stays_within_the_backoff(clock: FakeClock) -> None:
    """With the default full jitter every wait is in ``[0, backoff.delay(n)]``."""
    b = backoff.exponential(initial=1.0, multiplier=2.0, max=8.0)
    _seq, fetch = flaky(ConnectionError, attempts=6, backoff=b)
    with pytest.raises(ConnectionError):
        fetch()
    bounds = [b.delay(n) for n in range(1, 6)]
    assert 5 == len(clock.sleeps)
    assert all(0.0 <= d <= hi for d, hi in zip(clock.sleeps, bounds, strict=True))


def test_immediate_backoff_retries_once_at_once(clock: FakeClock) -> None:
    """``backoff.immediate()`` makes one zero wait, then follows ``then``."""
    b = backoff.immediate(then=backoff.fixed(2.0))
    _seq, fetch = flaky(ConnectionError, attempts=4, backoff=b, jitter="none")
    with pytest.raises(ConnectionError):
        fetch()
    assert [0.0, 2.0, 2.0] == clock.sleeps


def test_zero_wait_never_calls_sleep(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero delay is recorded by the fake clock but never reaches ``sleep``."""
    slept: list[float] = []
    monkeypatch.setattr(_clock, "sleep", slept.append)
    _seq, fetch = flaky(ConnectionError, attempts=3, backoff="none")
    with pytest.raises(ConnectionError):
        fetch()
    assert [0.0, 0.0] == clock.sleeps
    assert [] == slept


def test_zero_wait_never_calls_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real clock a zero delay calls neither ``time.sleep`` nor retryx's sleep."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(_clock, "sleep", slept.append)
    _seq, fetch = flaky(ConnectionError, ConnectionError, "ok", backoff="none")
    assert "ok" == fetch()
    assert [] == slept


# --- deadline ------------------------------------------------------------------------------


def test_deadline_never_sleeps_past_it(clock: FakeClock) -> None:
    """Waits stop before the one that would cross the deadline."""
    seq, fetch = flaky(
        ConnectionError, attempts=100, deadline=1.0, **exact(backoff=backoff.fixed(0.3))
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert [0.3, 0.3, 0.3] == clock.sleeps
    assert 4 == seq.calls
    assert (4, "0.90", fetch.__qualname__, "deadline") == note_of(info.value)


def test_deadline_gives_up_at_once_when_the_next_wait_would_cross_it(clock: FakeClock) -> None:
    """A wait longer than the time left is not started: the call ends at once."""
    seq, fetch = flaky(
        ConnectionError, attempts=5, deadline=1.0, **exact(backoff=backoff.fixed(2.0))
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert [] == clock.sleeps
    assert 1 == seq.calls
    assert "deadline" == note_of(info.value)[3]


def test_wait_ending_exactly_at_the_deadline_is_waited(clock: FakeClock) -> None:
    """A wait that uses exactly the time left is made, and one more attempt runs."""
    seq, fetch = flaky(
        ConnectionError, attempts=5, deadline=1.0, **exact(backoff=backoff.fixed(0.5))
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert [0.5, 0.5] == clock.sleeps
    assert 3 == seq.calls
    assert "deadline" == note_of(info.value)[3]


def test_deadline_passed_during_an_attempt_ends_the_call(clock: FakeClock) -> None:
    """An attempt that overran the deadline is not followed by another, even with no wait."""
    calls = 0

    @retry(attempts=5, deadline=1.0, backoff="none")
    def slow() -> None:
        nonlocal calls
        calls += 1
        clock.advance(2.0)
        raise ConnectionError

    with pytest.raises(ConnectionError) as info:
        slow()
    assert 1 == calls
    assert "deadline" == note_of(info.value)[3]


def test_deadline_checked_after_a_zero_wait(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time passed during a zero wait counts: the deadline is checked before the next attempt."""
    monkeypatch.setattr(_clock, "zero_wait", lambda delay: clock.advance(5.0))
    seq, fetch = flaky(ConnectionError, attempts=5, deadline=1.0, backoff="none")
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert 1 == seq.calls
    assert "deadline" == note_of(info.value)[3]


def test_deadline_checked_after_an_overlong_wait(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that overslept past the deadline ends the call before the next attempt."""
    monkeypatch.setattr(_clock, "sleep", lambda delay: clock.advance(delay + 10.0))
    seq, fetch = flaky(
        ConnectionError, attempts=5, deadline=1.0, **exact(backoff=backoff.fixed(0.5))
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert 1 == seq.calls
    assert "deadline" == note_of(info.value)[3]


def test_sum_of_waits_never_exceeds_the_deadline(clock: FakeClock) -> None:
    """With jitter and many attempts the total wait stays within the deadline."""
    _seq, fetch = flaky(
        ConnectionError, attempts=50, deadline=3.0, backoff=backoff.exponential(max=1.0)
    )
    with pytest.raises(ConnectionError):
        fetch()
    assert sum(clock.sleeps) <= 3.0


# --- attempt_timeout -----------------------------------------------------------------------


def test_attempt_timeout_on_a_sync_function_is_config_error() -> None:
    """``attempt_timeout`` needs a coroutine function: ``ConfigError`` at decoration."""

    def fetch() -> None: ...

    with pytest.raises(ConfigError, match=r"fetch.*attempt_timeout"):
        retry(attempt_timeout=1.0)(fetch)


# --- retry_if_result -----------------------------------------------------------------------


def test_retry_if_result_retries_until_the_result_is_good(clock: FakeClock) -> None:
    """A result matching ``retry_if_result`` is retried like a transient fault."""
    seq, fetch = flaky(None, None, "ok", attempts=5, retry_if_result=lambda r: r is None)
    assert "ok" == fetch()
    assert 3 == seq.calls
    assert 2 == len(clock.sleeps)


def test_retry_if_result_returns_the_last_result_when_attempts_run_out(clock: FakeClock) -> None:
    """When attempts run out on matching results, the last result is returned, not raised."""
    seq, fetch = flaky(1, 2, 3, attempts=3, retry_if_result=lambda r: True)
    assert 3 == fetch()
    assert 3 == seq.calls


def test_retry_if_result_returns_the_last_result_at_the_deadline(clock: FakeClock) -> None:
    """A matching result is returned when the deadline ends the retries."""
    seq, fetch = flaky(
        "a",
        "b",
        attempts=10,
        deadline=1.0,
        retry_if_result=lambda r: True,
        **exact(backoff=backoff.fixed(0.6)),
    )
    assert "b" == fetch()
    assert 2 == seq.calls


def test_retry_if_result_returns_the_last_result_when_the_budget_denies(clock: FakeClock) -> None:
    """A matching result is returned when the budget ends the retries."""
    seq, fetch = flaky(
        "a", "b", attempts=10, budget=RetryBudget(max_tokens=2), retry_if_result=lambda r: True
    )
    assert "a" == fetch()
    assert 1 == seq.calls


def test_retry_if_result_and_faults_mix(clock: FakeClock) -> None:
    """Faults and matching results share the attempts; a final fault is raised."""
    seq, fetch = flaky(
        None,
        ConnectionError,
        None,
        ConnectionError,
        attempts=4,
        retry_if_result=lambda r: r is None,
    )
    with pytest.raises(ConnectionError):
        fetch()
    assert 4 == seq.calls


def test_retry_if_result_returns_the_last_result_after_an_overlong_wait(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A matching result is returned when a wait overran the deadline before the next attempt."""
    monkeypatch.setattr(_clock, "zero_wait", lambda delay: clock.advance(5.0))
    seq, fetch = flaky("a", "b", deadline=1.0, backoff="none", retry_if_result=lambda r: True)
    assert "a" == fetch()
    assert 1 == seq.calls


# --- Retry-After hints ---------------------------------------------------------------------


class HTTPFailure(Exception):
    """An HTTP client error carrying a response, as requests/httpx raise them."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.response = type("Response", (), {"status_code": status, "headers": headers})()


def test_retry_after_hint_replaces_the_backoff_unjittered(clock: FakeClock) -> None:
    """A ``retry_after`` hint is waited exactly, whatever the backoff and jitter."""
    _seq, fetch = flaky(
        Transient("busy", retry_after=2.5), "ok", backoff=backoff.fixed(9.0), jitter="full"
    )
    assert "ok" == fetch()
    assert [2.5] == clock.sleeps


def test_retry_after_header_seconds(clock: FakeClock) -> None:
    """A ``Retry-After`` delta-seconds header on the response is waited."""
    _seq, fetch = flaky(HTTPFailure(503, {"Retry-After": "3"}), "ok")
    assert "ok" == fetch()
    assert [3.0] == clock.sleeps


def test_retry_after_header_http_date(clock: FakeClock) -> None:
    """A ``Retry-After`` HTTP-date is turned into the seconds from now."""
    when = datetime.fromtimestamp(clock.now() + 7, tz=UTC)
    _seq, fetch = flaky(HTTPFailure(429, {"retry-after": format_datetime(when, usegmt=True)}), "ok")
    assert "ok" == fetch()
    assert [7.0] == clock.sleeps


def test_retry_after_http_date_in_the_past_is_zero(clock: FakeClock) -> None:
    """A past HTTP-date means retry at once."""
    when = datetime.fromtimestamp(clock.now() - 60, tz=UTC)
    _seq, fetch = flaky(HTTPFailure(503, {"Retry-After": format_datetime(when, usegmt=True)}), "ok")
    assert "ok" == fetch()
    assert [0.0] == clock.sleeps


def test_retry_after_beyond_retry_after_max_gives_up(clock: FakeClock) -> None:
    """A hint larger than ``retry_after_max`` ends the call at once with reason ``deadline``."""
    seq, fetch = flaky(Transient("busy", retry_after=5.5), "ok", retry_after_max=5.0)
    with pytest.raises(Transient) as info:
        fetch()
    assert 1 == seq.calls
    assert [] == clock.sleeps
    assert "deadline" == note_of(info.value)[3]


def test_retry_after_equal_to_retry_after_max_is_waited(clock: FakeClock) -> None:
    """A hint exactly equal to ``retry_after_max`` is waited."""
    _seq, fetch = flaky(Transient("busy", retry_after=5.0), "ok", retry_after_max=5.0)
    assert "ok" == fetch()
    assert [5.0] == clock.sleeps


def test_default_retry_after_max_is_sixty_seconds(clock: FakeClock) -> None:
    """The default cap is 60 s: 60 is waited, 61 gives up."""
    _, fetch = flaky(Transient("busy", retry_after=60), "ok")
    assert "ok" == fetch()
    _seq, fetch = flaky(Transient("busy", retry_after=61), "ok")
    with pytest.raises(Transient):
        fetch()
    assert [60.0] == clock.sleeps


def test_retry_after_beyond_the_time_left_gives_up(clock: FakeClock) -> None:
    """A hint longer than the time left before the deadline ends the call at once."""
    _seq, fetch = flaky(Transient("busy", retry_after=4.0), "ok", deadline=3.0)
    with pytest.raises(Transient) as info:
        fetch()
    assert [] == clock.sleeps
    assert "deadline" == note_of(info.value)[3]


def test_retry_after_equal_to_the_time_left_is_waited(clock: FakeClock) -> None:
    """A hint exactly equal to the time left is waited, and the next attempt runs."""
    _seq, fetch = flaky(Transient("busy", retry_after=4.0), "ok", deadline=4.0)
    assert "ok" == fetch()
    assert [4.0] == clock.sleeps


def test_circuit_open_hint_is_waited(clock: FakeClock) -> None:
    """A ``CircuitOpenError`` from below is retried after its ``retry_after``."""
    _seq, fetch = flaky(CircuitOpenError("db", 2.0), "ok", backoff=backoff.fixed(9.0))
    assert "ok" == fetch()
    assert [2.0] == clock.sleeps


def test_breaker_opened_by_hand_gives_up_at_once(clock: FakeClock) -> None:
    """A breaker opened by hand (infinite ``retry_after``) ends the call: reason ``deadline``."""
    _seq, fetch = flaky(CircuitOpenError("db", math.inf), "ok")
    with pytest.raises(CircuitOpenError) as info:
        fetch()
    assert [] == clock.sleeps
    assert "deadline" == note_of(info.value)[3]


def test_infinite_hint_is_never_waited_even_without_a_cap(clock: FakeClock) -> None:
    """With ``retry_after_max=inf`` and no deadline, an infinite hint still ends the call."""
    _seq, fetch = flaky(CircuitOpenError("db", math.inf), "ok", retry_after_max=math.inf)
    with pytest.raises(CircuitOpenError) as info:
        fetch()
    assert [] == clock.sleeps
    assert "deadline" == note_of(info.value)[3]


def test_no_attempts_left_beats_a_too_large_hint(clock: FakeClock) -> None:
    """On the last attempt the reason is ``attempts``, whatever the hint."""
    _seq, fetch = flaky(Transient("busy", retry_after=1000.0), attempts=1)
    with pytest.raises(Transient) as info:
        fetch()
    assert "attempts" == note_of(info.value)[3]


# --- which faults are retried --------------------------------------------------------------


def test_permanent_fault_is_raised_at_once(clock: FakeClock) -> None:
    """A fault the classifier calls permanent is not retried."""
    seq, fetch = flaky(ValueError("bad"), "ok", attempts=5)
    with pytest.raises(ValueError, match="bad") as info:
        fetch()
    assert 1 == seq.calls
    assert (1, "0.00", fetch.__qualname__, "permanent") == note_of(info.value)


@pytest.fixture(
    params=[
        pytest.param(KeyError, id="type"),
        pytest.param((KeyError, IndexError), id="tuple"),
        pytest.param(lambda exc: isinstance(exc, KeyError), id="predicate"),
        pytest.param(
            lambda exc: retryx.Fault(isinstance(exc, KeyError), "explicit"), id="classifier"
        ),
    ]
)
def retry_on_keyerror(request: pytest.FixtureRequest) -> Any:
    """``retry_on`` in each accepted shape, all meaning "retry KeyError only"."""
    return request.param


def test_retry_on_selects_the_retried_faults(clock: FakeClock, retry_on_keyerror: Any) -> None:
    """Faults matched by ``retry_on`` are retried; others (even ConnectionError) are not."""
    seq, fetch = flaky(KeyError, "ok", retry_on=retry_on_keyerror)
    assert "ok" == fetch()
    seq, fetch = flaky(ConnectionError, "ok", retry_on=retry_on_keyerror)
    with pytest.raises(ConnectionError):
        fetch()
    assert 1 == seq.calls


@pytest.mark.parametrize(
    "fault",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        socket.gaierror(socket.EAI_AGAIN, "try again"),
        Transient("unsent", unsent=True),
    ],
    ids=["refused", "EAI_AGAIN", "Transient-unsent"],
)
def test_not_idempotent_retries_unsent_faults(clock: FakeClock, fault: Exception) -> None:
    """With ``idempotent=False`` faults proving the request was never sent are retried."""
    seq, fetch = flaky(fault, "ok", idempotent=False)
    assert "ok" == fetch()
    assert 2 == seq.calls


@pytest.mark.parametrize(
    "fault",
    [ConnectionResetError(), TimeoutError(), Transient("maybe sent"), HTTPFailure(503, {})],
    ids=["reset", "timeout", "Transient", "503"],
)
def test_not_idempotent_does_not_retry_faults_that_may_have_been_sent(
    clock: FakeClock, fault: Exception
) -> None:
    """With ``idempotent=False`` a transient fault that may have reached the peer is raised."""
    seq, fetch = flaky(fault, "ok", idempotent=False)
    with pytest.raises(type(fault)) as info:
        fetch()
    assert info.value is fault
    assert 1 == seq.calls


@pytest.mark.parametrize(
    "fault",
    [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError],
)
@pytest.mark.parametrize(
    "retry_on", [None, BaseException, lambda exc: True], ids=["default", "BaseException", "always"]
)
def test_base_exceptions_are_never_retried(
    clock: FakeClock, fault: type[BaseException], retry_on: Any
) -> None:
    """Non-``Exception`` BaseExceptions propagate at once, untouched, whatever ``retry_on`` says."""
    seq, fetch = flaky(fault, "ok", retry_on=retry_on)
    with pytest.raises(fault) as info:
        fetch()
    assert 1 == seq.calls
    assert [] == clock.sleeps
    assert [] == getattr(info.value, "__notes__", [])


# --- giving up -----------------------------------------------------------------------------


def test_last_exception_is_reraised_unchanged(clock: FakeClock) -> None:
    """The very exception object of the last attempt is raised, not a wrapper."""
    errors = [ConnectionError("1"), ConnectionError("2"), ConnectionError("3")]
    _seq, fetch = flaky(*errors, **exact(backoff=backoff.fixed(0.4)))
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert errors[-1] is info.value
    assert [] == getattr(errors[0], "__notes__", [])
    assert [
        "retryx: gave up after 3 attempts in 0.80s "
        f"(policy {fetch.__qualname__!r}, reason: attempts)"
    ] == info.value.__notes__


def test_note_uses_the_policy_name(clock: FakeClock) -> None:
    """The note names the policy by ``Policy.name`` when it is set."""
    _seq, fetch = flaky(ConnectionError, name="payments", attempts=2, backoff="none")
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert (2, "0.00", "payments", "attempts") == note_of(info.value)


def test_note_singular_for_one_attempt(clock: FakeClock) -> None:
    """One attempt reads "1 attempt", not "1 attempts"."""
    _seq, fetch = flaky(ConnectionError, name="p", attempts=1)
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert [
        "retryx: gave up after 1 attempt in 0.00s (policy 'p', reason: attempts)"
    ] == info.value.__notes__


def test_give_up_reason_budget(clock: FakeClock) -> None:
    """When the retry budget denies a retry the call gives up with reason ``budget``."""
    budget = RetryBudget(max_tokens=4)
    seq, fetch = flaky(ConnectionError, attempts=10, budget=budget, backoff="none")
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert 2 == seq.calls
    assert (2, "0.00", fetch.__qualname__, "budget") == note_of(info.value)


def test_budget_takes_a_token_per_transient_failure(clock: FakeClock) -> None:
    """Every transient failed attempt takes a token, the last one included."""
    budget = RetryBudget(max_tokens=100, token_ratio=0.5)
    _seq, fetch = flaky(ConnectionError, attempts=3, budget=budget, backoff="none")
    with pytest.raises(ConnectionError):
        fetch()
    assert 97.0 == budget.tokens


def test_budget_untouched_by_permanent_faults(clock: FakeClock) -> None:
    """A permanent fault takes no token."""
    budget = RetryBudget(max_tokens=100)
    _seq, fetch = flaky(ValueError, budget=budget)
    with pytest.raises(ValueError):
        fetch()
    assert 100.0 == budget.tokens


def test_budget_refilled_by_successful_calls(clock: FakeClock) -> None:
    """A successful call gives back ``token_ratio``; a matching result takes a token."""
    budget = RetryBudget(max_tokens=10, token_ratio=0.5)
    _seq, fetch = flaky(
        ConnectionError,
        None,
        "ok",
        budget=budget,
        backoff="none",
        retry_if_result=lambda r: r is None,
    )
    assert "ok" == fetch()
    assert 8.5 == budget.tokens


def test_give_up_order_permanent_before_attempts(clock: FakeClock) -> None:
    """A permanent fault on the last attempt gives up with reason ``permanent``."""
    _seq, fetch = flaky(ValueError, attempts=1)
    with pytest.raises(ValueError) as info:
        fetch()
    assert "permanent" == note_of(info.value)[3]


def test_give_up_order_attempts_before_deadline(clock: FakeClock) -> None:
    """With no attempts left the reason is ``attempts``, even if a wait would cross the deadline."""
    _seq, fetch = flaky(
        ConnectionError, attempts=2, deadline=1.0, **exact(backoff=backoff.fixed(0.9))
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert "attempts" == note_of(info.value)[3]


def test_give_up_order_deadline_before_budget(clock: FakeClock) -> None:
    """When both the deadline and the budget would stop it, the reason is ``deadline``."""
    budget = RetryBudget(max_tokens=2)
    _seq, fetch = flaky(
        ConnectionError,
        attempts=5,
        deadline=1.0,
        budget=budget,
        **exact(backoff=backoff.fixed(2.0)),
    )
    with pytest.raises(ConnectionError) as info:
        fetch()
    assert "deadline" == note_of(info.value)[3]


def test_gave_up_event_for_every_reason(clock: FakeClock) -> None:
    """A ``GaveUp`` event is emitted for each reason, a first-attempt permanent fault included."""
    received = gave_up_events()
    for outcome, fields in [
        (ConnectionError, {"attempts": 1}),
        (ConnectionError, {"deadline": 1.0, "backoff": backoff.fixed(2.0), "jitter": "none"}),
        (ConnectionError, {"budget": RetryBudget(max_tokens=1)}),
        (ValueError, {}),
    ]:
        _seq, fetch = flaky(outcome, **fields)
        with pytest.raises(Exception):  # noqa: B017 - any of the above
            fetch()
    assert ["attempts", "deadline", "budget", "permanent"] == [e.reason for e in received]


# --- current() -----------------------------------------------------------------------------


def test_current_is_none_outside_a_call() -> None:
    """``current()`` is ``None`` outside any retryx call."""
    assert None is current()


def test_current_inside_a_call(clock: FakeClock) -> None:
    """``current()`` shows a stable hex ``call_id``, the 1-based attempt and the name."""
    seen: list[retryx._context.CallContext] = []

    @retry(attempts=3, backoff="none")
    def fetch() -> str:
        ctx = current()
        assert ctx is not None
        seen.append(ctx)
        if len(seen) < 3:
            raise ConnectionError
        return "ok"

    assert "ok" == fetch()
    assert [1, 2, 3] == [c.attempt for c in seen]
    assert 1 == len({c.call_id for c in seen})
    assert re.fullmatch(r"[0-9a-f]{16,}", seen[0].call_id)
    assert [fetch.__qualname__] * 3 == [c.name for c in seen]
    assert [None] * 3 == [c.remaining for c in seen]
    assert [None] * 3 == [c.endpoint for c in seen]
    assert None is current()


def test_call_id_differs_between_calls(clock: FakeClock) -> None:
    """Each logical call gets its own ``call_id``."""
    ids: list[str] = []

    @retry
    def fetch() -> None:
        ctx = current()
        assert ctx is not None
        ids.append(ctx.call_id)

    fetch()
    fetch()
    assert 2 == len(set(ids))


def test_current_remaining_counts_down_to_the_deadline(clock: FakeClock) -> None:
    """``remaining`` is the time left before the deadline at each attempt."""
    remaining: list[float | None] = []

    @retry(attempts=3, deadline=10.0, **exact(backoff=backoff.fixed(1.5)))
    def fetch() -> None:
        ctx = current()
        assert ctx is not None
        remaining.append(ctx.remaining)
        raise ConnectionError

    with pytest.raises(ConnectionError):
        fetch()
    assert [10.0, 8.5, 7.0] == remaining


def test_current_uses_the_policy_name(clock: FakeClock) -> None:
    """``current().name`` is the policy's name when it has one."""
    names: list[str] = []

    @retry(name="payments")
    def fetch() -> None:
        ctx = current()
        assert ctx is not None
        names.append(ctx.name)

    fetch()
    assert ["payments"] == names


# --- a sync retry inside an event loop -----------------------------------------------------


def test_sync_retry_sleeping_inside_an_event_loop_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync retrying call about to sleep in a running event loop logs one warning per callable."""
    _seq, fetch = flaky(ConnectionError, attempts=3, **exact(backoff=backoff.fixed(1.0)))
    _seq2, other = flaky(ConnectionError, attempts=2, **exact(backoff=backoff.fixed(1.0)))

    async def main() -> None:
        for f in (fetch, fetch, other):
            with pytest.raises(ConnectionError):
                f()

    with caplog.at_level(logging.WARNING, logger="retryx"):
        asyncio.run(main())
    warnings = [r for r in caplog.records if "event loop" in r.getMessage()]
    assert 2 == len(warnings)
    assert fetch.__qualname__ in warnings[0].getMessage()
    assert logging.WARNING == warnings[0].levelno


def test_sync_retry_outside_an_event_loop_does_not_warn(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Sleeping outside an event loop is fine: no loop warning."""
    _seq, fetch = flaky(ConnectionError, "ok", **exact(backoff=backoff.fixed(1.0)))
    with caplog.at_level(logging.DEBUG, logger="retryx"):
        fetch()
    assert [] == [r for r in caplog.records if "event loop" in r.getMessage()]


def test_sync_retry_without_a_wait_in_an_event_loop_does_not_warn(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A zero wait does not block the loop, so it does not warn."""
    _seq, fetch = flaky(ConnectionError, "ok", backoff="none")

    async def main() -> None:
        fetch()

    with caplog.at_level(logging.DEBUG, logger="retryx"):
        asyncio.run(main())
    assert [] == [r for r in caplog.records if "event loop" in r.getMessage()]


# --- stats ---------------------------------------------------------------------------------


def test_stats_count_calls_attempts_and_causes(clock: FakeClock) -> None:
    """``stats`` counts calls, successes, failures, attempts, retries, give-ups and causes."""
    seq = FaultSequence(
        "ok",  # call 1: first attempt
        ConnectionError, TimeoutError, "ok",  # call 2: two retries
        ConnectionError, ConnectionError, ConnectionError,  # call 3: gives up (attempts)
        ValueError,  # call 4: permanent
    )  # fmt: skip

    @retry(attempts=3, backoff="none")
    def fetch() -> Any:
        return seq()

    fetch()
    fetch()
    for _ in range(2):
        with pytest.raises(Exception):  # noqa: B017 - ConnectionError, then ValueError
            fetch()
    s = stats(fetch)
    assert 4 == s.calls
    assert 2 == s.successes
    assert 2 == s.failures
    assert 8 == s.attempts
    assert 4 == s.retries
    assert 2 == s.gave_up
    assert {"connection": 4, "timeout": 1, "permanent": 1} == s.by_cause


def test_stats_reset(clock: FakeClock) -> None:
    """``stats(func, reset=True)`` returns the counters and zeroes them."""
    _seq, fetch = flaky("ok")
    fetch()
    assert 1 == stats(fetch, reset=True).calls
    assert 0 == stats(fetch).calls


def test_stats_of_an_undecorated_function_is_config_error() -> None:
    """``stats`` of a plain function raises ``ConfigError``."""
    with pytest.raises(ConfigError):
        stats(len)


def test_stats_elapsed_from_the_clock(clock: FakeClock) -> None:
    """``total_elapsed`` and ``max_elapsed`` follow retryx's clock."""
    _seq, fetch = flaky(ConnectionError, "ok", **exact(backoff=backoff.fixed(2.0)))
    fetch()
    s = stats(fetch)
    assert 2.0 == s.total_elapsed
    assert 2.0 == s.max_elapsed
