"""The retry engine decides without I/O: schedules, deadlines, hints, budget, give-up order.

Driven the way urllib3 tests ``Retry.increment``: values in, a decision out, no
clock, no sleeping, no decorated function.
"""

from __future__ import annotations

import errno
import math

import hypothesis.strategies as st
import pytest
from hypothesis import given

from retryx import Fault, Policy, RetryBudget, Transient, backoff, classify, testing
from retryx._engine import (
    REASONS,
    RESULT,
    GiveUp,
    Wait,
    before_attempt,
    bounds,
    decide,
    draw,
    judge,
)

TRANSIENT = Fault(True, "connection")
UNSENT = Fault(True, "connection", unsent=True)
PERMANENT = Fault(False, "permanent")


def fixed(**fields: object) -> Policy:
    """A policy waiting 1 s between attempts, no jitter."""
    fields.setdefault("backoff", backoff.fixed(1.0))
    fields.setdefault("jitter", "none")
    return Policy(**fields)  # type: ignore[arg-type]


def run(
    policy: Policy,
    fault: Fault = TRANSIENT,
    *,
    idempotent: bool = True,
    remaining: float | None = None,
) -> tuple[list[float], GiveUp]:
    """Fail every attempt with ``fault``; the waits decided, then the give-up."""
    waits: list[float] = []
    previous = None
    for attempt in range(1, policy.attempts + 2):
        left = None if remaining is None else remaining - sum(waits)
        decision = decide(
            policy, fault, idempotent=idempotent, attempt=attempt, previous=previous, remaining=left
        )
        if isinstance(decision, GiveUp):
            return waits, decision
        waits.append(decision.delay)
        previous = decision.previous
    raise AssertionError("the engine never gave up")


# --- schedules ------------------------------------------------------------------------------


def test_attempts_minus_one_waits_then_attempts() -> None:
    """A policy of n attempts waits n - 1 times, then gives up with reason attempts."""
    waits, end = run(fixed(attempts=4))
    assert [1.0, 1.0, 1.0] == waits
    assert "attempts" == end.reason


def test_exponential_schedule_without_jitter() -> None:
    """Without jitter the waits are the backoff's delays 1, 2, ..."""
    policy = fixed(attempts=5, backoff=backoff.exponential(initial=0.5, max=3.0))
    assert ([0.5, 1.0, 2.0, 3.0], GiveUp("attempts")) == run(policy)


def test_single_attempt_never_waits() -> None:
    """attempts=1 gives up after the first failure."""
    assert ([], GiveUp("attempts")) == run(fixed(attempts=1))


@given(
    attempts=st.integers(1, 30),
    initial=st.floats(0.0, 5.0),
    cap=st.floats(0.0, 60.0),
    kind=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    seed=st.integers(0, 2**32),
)
def test_draws_stay_within_bounds(
    attempts: int, initial: float, cap: float, kind: str, seed: int
) -> None:
    """Every wait lies within the engine's bounds for it, and within 0..cap."""
    policy = Policy(
        attempts=attempts,
        backoff=backoff.exponential(initial=initial, max=max(cap, initial)),
        jitter=kind,
    )
    with testing.seed(seed):
        previous = None
        for retry in range(1, attempts):
            lo, hi = bounds(policy, retry, previous)
            decision = decide(
                policy, TRANSIENT, idempotent=True, attempt=retry, previous=previous, remaining=None
            )
            assert isinstance(decision, Wait)
            assert lo <= decision.delay <= hi <= max(cap, initial)
            previous = decision.previous


def test_decorrelated_jitter_remembers_the_previous_draw() -> None:
    """Decorrelated jitter draws from base..3 x previous, the previous kept in Wait.previous."""
    policy = Policy(attempts=5, backoff=backoff.fixed(1.0), jitter="decorrelated")
    with testing.seed(7):
        first = decide(policy, TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=None)
        assert isinstance(first, Wait)
        assert first.previous == first.delay
        assert 1.0 <= first.delay <= 1.0  # fixed: the cap is the delay itself
    assert (1.0, 1.0) == bounds(policy, 2, 5.0)


def test_draw_matches_decide() -> None:
    """decide() waits exactly what draw() draws from the same random state."""
    policy = Policy(attempts=3, backoff=backoff.exponential(initial=1.0), jitter="full")
    with testing.seed(3):
        expected = draw(policy, 2, None)
    with testing.seed(3):
        decision = decide(
            policy, TRANSIENT, idempotent=True, attempt=2, previous=None, remaining=None
        )
    assert Wait(expected, expected) == decision


# --- deadlines and hints ----------------------------------------------------------------------


def test_wait_crossing_the_deadline_gives_up() -> None:
    """A wait longer than the time left gives up at once with reason deadline."""
    assert GiveUp("deadline", 1.0) == decide(
        fixed(), TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=0.5
    )


def test_wait_equal_to_the_time_left_is_waited() -> None:
    """A wait exactly equal to the time left is waited."""
    assert Wait(1.0, 1.0) == decide(
        fixed(), TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=1.0
    )


def test_deadline_cuts_a_schedule() -> None:
    """With 2.5 s left the 1 s schedule waits twice, then gives up on the deadline."""
    waits, end = run(fixed(attempts=10), remaining=2.5)
    assert [1.0, 1.0] == waits
    assert GiveUp("deadline", 1.0) == end


def test_hint_replaces_the_backoff_unjittered() -> None:
    """A Retry-After hint is waited exactly, and the jitter's memory is left as it was."""
    policy = Policy(attempts=3, jitter="full")
    hinted = Fault(True, "throttled", 2.5)
    assert Wait(2.5, 0.7) == decide(
        policy, hinted, idempotent=True, attempt=1, previous=0.7, remaining=None
    )


@pytest.mark.parametrize(
    ("hint", "remaining", "expected"),
    [
        (60.0, None, Wait(60.0, None)),  # equal to retry_after_max: waited
        (60.5, None, GiveUp("deadline", 60.5)),  # beyond retry_after_max
        (math.inf, None, GiveUp("deadline", math.inf)),  # a breaker opened by hand
        (3.0, 3.0, Wait(3.0, None)),  # equal to the time left: waited
        (3.0, 2.0, GiveUp("deadline", 3.0)),  # beyond the time left
        (0.0, 0.0, Wait(0.0, None)),
    ],
)
def test_hints_against_the_cap_and_the_time_left(
    hint: float, remaining: float | None, expected: Wait | GiveUp
) -> None:
    """Hints beyond retry_after_max, infinite, or beyond the time left give up (deadline)."""
    fault = Fault(True, "throttled", hint)
    assert expected == decide(
        Policy(), fault, idempotent=True, attempt=1, previous=None, remaining=remaining
    )


def test_infinite_hint_gives_up_whatever_the_cap() -> None:
    """An infinite hint is never waited, even with an infinite retry_after_max."""
    policy = Policy(retry_after_max=math.inf)
    fault = Fault(True, "circuit_open", math.inf)
    decision = decide(policy, fault, idempotent=True, attempt=1, previous=None, remaining=None)
    assert "deadline" == decision.reason  # type: ignore[union-attr]


def test_before_attempt_checks_the_deadline() -> None:
    """The next attempt starts at exactly the deadline, not after it."""
    assert None is before_attempt(None)
    assert None is before_attempt(0.0)
    assert GiveUp("deadline") == before_attempt(-0.001)


# --- budget -----------------------------------------------------------------------------------


def test_budget_denies_last() -> None:
    """An exhausted budget gives up with reason budget, once every other check passed."""
    budget = RetryBudget(max_tokens=2, token_ratio=0.1)
    budget.record_failure()
    policy = fixed(budget=budget)
    assert GiveUp("budget") == decide(
        policy, TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=None
    )


def test_budget_allows() -> None:
    """A budget with tokens above half lets the retry through."""
    policy = fixed(budget=RetryBudget(max_tokens=10))
    assert Wait(1.0, 1.0) == decide(
        policy, TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=None
    )


# --- the give-up order -----------------------------------------------------------------------


def empty_budget() -> RetryBudget:
    budget = RetryBudget(max_tokens=2)
    budget.record_failure()
    return budget


def test_reasons_in_the_contracts_order() -> None:
    """The reasons are permanent, not_idempotent, attempts, deadline, budget."""
    assert ("permanent", "not_idempotent", "attempts", "deadline", "budget") == REASONS


@pytest.mark.parametrize(
    ("fault", "idempotent", "attempts", "remaining", "expected"),
    [
        # Everything wrong at once: the first reason wins, and so on down the list.
        (PERMANENT, False, 1, 0.0, "permanent"),
        (TRANSIENT, False, 1, 0.0, "not_idempotent"),
        (UNSENT, False, 1, 0.0, "attempts"),
        (TRANSIENT, True, 1, 0.0, "attempts"),
        (TRANSIENT, True, 2, 0.0, "deadline"),
        (TRANSIENT, True, 2, None, "budget"),
    ],
)
def test_give_up_order(
    fault: Fault, idempotent: bool, attempts: int, remaining: float | None, expected: str
) -> None:
    """Each give-up reason is checked in the contract's order, given every later one holds."""
    policy = fixed(attempts=attempts, budget=empty_budget())
    decision = decide(
        policy, fault, idempotent=idempotent, attempt=1, previous=None, remaining=remaining
    )
    assert GiveUp is type(decision)
    assert expected == decision.reason  # type: ignore[union-attr]


def test_budget_is_not_asked_when_another_reason_gives_up() -> None:
    """The budget is consulted only when everything else allows the retry."""

    class Counting(RetryBudget):
        asked = 0

        def allows_retry(self) -> bool:
            Counting.asked += 1
            return True

    policy = fixed(attempts=1, budget=Counting())
    decide(policy, TRANSIENT, idempotent=True, attempt=1, previous=None, remaining=None)
    assert 0 == Counting.asked


def test_unsent_fault_is_retried_when_not_idempotent() -> None:
    """A fault proving the request unsent is retried under idempotent=False."""
    assert Wait(1.0, 1.0) == decide(
        fixed(), UNSENT, idempotent=False, attempt=1, previous=None, remaining=None
    )


def test_result_is_retried_whatever_idempotent_says() -> None:
    """A retry_if_result match was answered, so idempotent=False does not stop it."""
    assert Wait(1.0, 1.0) == decide(
        fixed(), RESULT, idempotent=False, attempt=1, previous=None, remaining=None
    )


# --- judging ----------------------------------------------------------------------------------


def test_judge_settles_unsent_only_for_non_idempotent_layers() -> None:
    """judge() marks a refused connection unsent under idempotent=False, not otherwise."""
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert (Fault(True, "connection"), True) == judge(classify, True, refused)
    assert (Fault(True, "connection", unsent=True), False) == judge(classify, False, refused)
    assert (Fault(True, "connection"), False) == judge(classify, False, ConnectionResetError())


def test_judge_prefers_the_carried_verdict() -> None:
    """A carried verdict replaces the classifier; its idempotent joins the layer's."""
    carried = (Fault(True, "explicit", 2.0), False)
    assert carried == judge(classify, True, ValueError("not transient for classify"), carried)
    unsent = Transient("unsent", unsent=True)
    assert (Fault(True, "explicit", None, True), False) == judge(
        classify, True, unsent, (Fault(True, "explicit"), False)
    )


def test_judge_keeps_permanent() -> None:
    """A permanent verdict stays permanent, whatever the layer."""
    assert (PERMANENT, True) == judge(classify, True, ValueError("x"))


@given(
    attempts=st.integers(1, 20),
    deadline=st.floats(0.0, 30.0),
    kind=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    hints=st.lists(st.one_of(st.none(), st.floats(0.0, 90.0)), min_size=20, max_size=20),
    seed=st.integers(0, 2**32),
)
def test_never_waits_past_the_deadline(
    attempts: int, deadline: float, kind: str, hints: list[float | None], seed: int
) -> None:
    """Whatever the schedule and hints, the waits decided never add up past the deadline,
    a hint is never above retry_after_max, and the engine gives up within the attempts."""
    policy = Policy(attempts=attempts, jitter=kind, retry_after_max=60.0)
    waited = 0.0
    previous = None
    decisions = 0
    with testing.seed(seed):
        for attempt in range(1, attempts + 1):
            fault = Fault(True, "throttled", hints[attempt - 1])
            decision = decide(policy, fault, True, attempt, previous, deadline - waited)
            decisions += 1
            if isinstance(decision, GiveUp):
                assert decision.reason in ("attempts", "deadline")
                break
            assert 0.0 <= decision.delay <= 60.0 or hints[attempt - 1] is None
            waited += decision.delay
            previous = decision.previous
            assert waited <= deadline + 1e-9  # (float sums)
    assert decisions <= attempts
