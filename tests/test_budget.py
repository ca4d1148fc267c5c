"""RetryBudget in process: the gRPC token bucket, its use by policies, thread safety."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Permanent, Policy, RetryBudget, events
from retryx.testing import FakeClock


@pytest.fixture
def gave_up() -> Iterator[list[events.GaveUp]]:
    """Every GaveUp event emitted during the test."""
    seen: list[events.GaveUp] = []
    unsubscribe = events.subscribe(
        lambda e: seen.append(e) if isinstance(e, events.GaveUp) else None
    )
    yield seen
    unsubscribe()


def failing(budget: RetryBudget, attempts: int = 10, **policy: Any) -> tuple[Any, list[int]]:
    """A retried function that always fails with a transient fault, and its call counter."""
    calls = [0]

    @retryx.retry(Policy(attempts=attempts, backoff="none", budget=budget, **policy))
    def work() -> None:
        calls[0] += 1
        raise ConnectionError("down")

    return work, calls


# --- the bucket ---------------------------------------------------------------------------


def test_starts_full_and_a_failure_takes_one_token() -> None:
    """The bucket starts at max_tokens; each failure takes exactly one token."""
    budget = RetryBudget(max_tokens=10, token_ratio=0.5)
    assert 10.0 == budget.tokens
    budget.record_failure()
    budget.record_failure()
    assert 8.0 == budget.tokens


def test_a_success_gives_back_token_ratio_capped_at_max() -> None:
    """Each success gives back token_ratio, never above max_tokens."""
    budget = RetryBudget(max_tokens=10, token_ratio=0.5)
    for _ in range(3):
        budget.record_failure()
    budget.record_success()
    assert 7.5 == budget.tokens
    for _ in range(100):
        budget.record_success()
    assert 10.0 == budget.tokens


def test_tokens_never_go_below_zero() -> None:
    """More failures than tokens leave the bucket at zero."""
    budget = RetryBudget(max_tokens=3)
    for _ in range(10):
        budget.record_failure()
    assert 0.0 == budget.tokens


def test_retries_are_allowed_only_above_half() -> None:
    """allows_retry() is true while tokens > max_tokens / 2 (strictly)."""
    budget = RetryBudget(max_tokens=4, token_ratio=1)
    budget.record_failure()
    assert (3.0, True) == (budget.tokens, budget.allows_retry())
    budget.record_failure()
    assert (2.0, False) == (budget.tokens, budget.allows_retry())
    budget.record_success()
    assert (3.0, True) == (budget.tokens, budget.allows_retry())


def test_reset_refills() -> None:
    """reset() puts the bucket back to max_tokens."""
    budget = RetryBudget(max_tokens=5)
    for _ in range(5):
        budget.record_failure()
    budget.reset()
    assert 5.0 == budget.tokens


def test_repr_shows_the_tokens() -> None:
    """The repr names the budget and shows its tokens."""
    budget = RetryBudget(max_tokens=8, name="api")
    budget.record_failure()
    assert "<RetryBudget 'api' tokens=7/8>" == repr(budget)


def test_eight_threads_drain_one_budget_exactly_and_never_below_zero() -> None:
    """Concurrent failures are all counted, and the bucket stops at zero."""
    budget = RetryBudget(max_tokens=1000)
    start = threading.Barrier(8)
    low: list[float] = []

    def drain() -> None:
        start.wait(timeout=10)
        for _ in range(200):  # 8 x 200 = 1600 failures for 1000 tokens
            budget.record_failure()
            low.append(budget.tokens)

    threads = [threading.Thread(target=drain) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert 0.0 == budget.tokens
    assert 0.0 == min(low)


def test_concurrent_failures_and_successes_are_all_counted() -> None:
    """8 threads of failures and successes land on the exact expected count."""
    budget = RetryBudget(max_tokens=10_000, token_ratio=0.5)
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait(timeout=10)
        for _ in range(500):
            budget.record_failure()
            if index % 2:
                budget.record_success()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # 4000 failures, 2000 successes x 0.5: never near either bound, so exact.
    assert 10_000 - 4000 + 1000 == budget.tokens


# --- with policies ------------------------------------------------------------------------


def test_a_denied_retry_gives_up_with_reason_budget(
    clock: FakeClock, gave_up: list[events.GaveUp]
) -> None:
    """When the budget denies, the call gives up: reason budget, a note and a GaveUp event."""
    budget = RetryBudget(max_tokens=6, token_ratio=1)
    work, calls = failing(budget, attempts=10)
    with pytest.raises(ConnectionError) as info:
        work()
    assert 3 == calls[0]  # 6 -> 5 (retry), 5 -> 4 (retry), 4 -> 3 (not above 3: denied)
    assert 3.0 == budget.tokens
    assert "reason: budget" in info.value.__notes__[-1]
    assert [("budget", 3)] == [(e.reason, e.attempts) for e in gave_up]
    assert info.value is gave_up[0].exception


def test_every_failed_attempt_takes_a_token_including_the_last(clock: FakeClock) -> None:
    """Attempts running out still charged the last failed attempt."""
    budget = RetryBudget(max_tokens=100)
    work, calls = failing(budget, attempts=3)
    with pytest.raises(ConnectionError) as info:
        work()
    assert 3 == calls[0]
    assert 97.0 == budget.tokens
    assert "reason: attempts" in info.value.__notes__[-1]


def test_permanent_faults_take_no_token(clock: FakeClock) -> None:
    """A permanent fault is not a retryable failure: the bucket is untouched."""
    budget = RetryBudget(max_tokens=10)

    @retryx.retry(Policy(attempts=3, backoff="none", budget=budget))
    def work() -> None:
        raise Permanent("bad request")

    with pytest.raises(Permanent):
        work()
    assert 10.0 == budget.tokens


def test_a_retried_result_takes_a_token(clock: FakeClock) -> None:
    """A retry_if_result match counts as a failed attempt."""
    budget = RetryBudget(max_tokens=10)

    @retryx.retry(
        Policy(attempts=2, backoff="none", budget=budget, retry_if_result=lambda r: r is None)
    )
    def work() -> None:
        return None

    assert None is work()
    # Both attempts took a token; whether the returned result also counts as a
    # successful call (+token_ratio) is the pipeline's call, not pinned here.
    assert 8.0 <= budget.tokens <= 8.0 + budget.token_ratio


def test_successful_calls_refill_and_retries_resume(clock: FakeClock) -> None:
    """After enough successes the budget allows retries again."""
    budget = RetryBudget(max_tokens=4, token_ratio=1)
    work, calls = failing(budget, attempts=5)
    with pytest.raises(ConnectionError):
        work()
    assert 2 == calls[0]  # 4 -> 3 (retry), 3 -> 2 (denied)

    @retryx.retry(Policy(attempts=3, backoff="none", budget=budget))
    def fine() -> str:
        return "ok"

    assert ["ok", "ok"] == [fine(), fine()]
    assert 4.0 == budget.tokens
    calls[0] = 0
    with pytest.raises(ConnectionError):
        work()
    assert 2 == calls[0]


def test_one_budget_shared_by_two_policies(clock: FakeClock, gave_up: list[events.GaveUp]) -> None:
    """Failures through one policy drain the budget for another policy using it."""
    budget = RetryBudget(max_tokens=10, token_ratio=1)
    first, first_calls = failing(budget, attempts=10, name="first")
    second, second_calls = failing(budget, attempts=10, name="second")
    with pytest.raises(ConnectionError):
        first()
    assert 5 == first_calls[0]  # 10 -> 5: the fifth failure leaves 5, not above half
    with pytest.raises(ConnectionError):
        second()
    assert 1 == second_calls[0]  # already at 5: the first failure ends it
    assert [("first", "budget"), ("second", "budget")] == [(e.name, e.reason) for e in gave_up]


def test_coroutine_functions_use_the_budget(clock: FakeClock) -> None:
    """The async driver charges and consults the budget the same way."""
    budget = RetryBudget(max_tokens=4, token_ratio=1)
    calls = 0

    @retryx.retry(Policy(attempts=5, backoff="none", budget=budget))
    async def work() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError) as info:
        asyncio.run(work())
    assert 2 == calls
    assert "reason: budget" in info.value.__notes__[-1]


def test_many_tasks_share_one_budget(clock: FakeClock) -> None:
    """Concurrent asyncio tasks drain one budget without retrying past it."""
    budget = RetryBudget(max_tokens=20, token_ratio=1)
    calls = 0

    @retryx.retry(Policy(attempts=10, backoff="fixed", jitter="none", budget=budget))
    async def work() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(work() for _ in range(8)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert 10 <= calls <= 10 + 8  # retries stop at half; each task's last failure still counts
    assert 0.0 <= budget.tokens <= 10.0


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": math.nan}, "max_tokens"),
        ({"max_tokens": math.inf}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"token_ratio": 0}, "token_ratio"),
        ({"token_ratio": -0.1}, "token_ratio"),
        ({"token_ratio": 200}, "token_ratio"),
        ({"token_ratio": math.nan}, "token_ratio"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"store": object()}, "name"),
        ({"store": object(), "name": "api"}, "store"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any], field: str) -> None:
    """Every bad setting is a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=rf"RetryBudget\.{field}"):
        RetryBudget(**kwargs)


def test_a_budget_has_identity_equality() -> None:
    """Budgets are shared objects: equal only to themselves, hashable."""
    one, two = RetryBudget(), RetryBudget()
    assert one != two
    assert {one: 1}[one] == 1
