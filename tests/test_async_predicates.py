"""Async predicates (``retry_on`` and ``retry_if_result`` as coroutine functions) are
awaited by async pipelines: their verdict counts, not the truthiness of a coroutine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import retryx
from retryx import Fault, retry
from retryx.testing import FakeClock, FaultSequence


class Verdicts:
    """An async predicate that really suspends before answering, and counts its calls."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.seen: list[Any] = []

    async def __call__(self, value: Any) -> Any:
        await asyncio.sleep(0)  # a real suspension: an un-awaited call would never get here
        self.seen.append(value)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def _retry_while_empty(result: str) -> bool:
    await asyncio.sleep(0)
    return result == ""


def test_an_async_retry_if_result_is_awaited(clock: FakeClock) -> None:
    """Retried while the awaited verdict is ``True``: 3 attempts, not all 10."""
    outcomes = FaultSequence("", "", "done")

    @retry(attempts=10, retry_if_result=_retry_while_empty)
    async def fetch() -> str:
        return str(outcomes())

    assert "done" == asyncio.run(fetch())
    assert 3 == outcomes.calls
    assert 2 == len(clock.sleeps)


def test_an_async_retry_if_result_saying_no_ends_at_once(clock: FakeClock) -> None:
    """A ``False`` verdict on the first result returns it, without a retry."""
    verdicts = Verdicts(False)

    @retry(attempts=10, retry_if_result=verdicts)
    async def fetch() -> int:
        return 42

    assert 42 == asyncio.run(fetch())
    assert [42] == verdicts.seen
    assert [] == clock.sleeps


def test_an_async_retry_if_result_returns_the_last_result_when_attempts_run_out(
    clock: FakeClock,
) -> None:
    """As with a sync predicate, the last result is returned when attempts run out."""
    verdicts = Verdicts(True)

    @retry(attempts=3, retry_if_result=verdicts)
    async def fetch() -> str:
        return "still busy"

    assert "still busy" == asyncio.run(fetch())
    assert 3 == len(verdicts.seen)


def test_an_async_retry_on_is_awaited(clock: FakeClock) -> None:
    """An async ``retry_on`` saying ``True`` retries; 3 attempts until success."""
    verdicts = Verdicts(True)
    outcomes = FaultSequence(KeyError("a"), KeyError("b"), "ok")

    @retry(attempts=10, retry_on=verdicts)
    async def fetch() -> object:
        return outcomes()

    assert "ok" == asyncio.run(fetch())
    assert 3 == outcomes.calls
    assert ["a", "b"] == [e.args[0] for e in verdicts.seen]


def test_an_async_retry_on_saying_no_raises_the_callers_exception(clock: FakeClock) -> None:
    """A ``False`` verdict raises the function's own exception at once, not a TypeError."""
    verdicts = Verdicts(False)

    @retry(attempts=10, retry_on=verdicts)
    async def fetch() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing") as caught:
        asyncio.run(fetch())
    assert 1 == len(verdicts.seen)
    assert any("reason: permanent" in note for note in caught.value.__notes__)


def test_an_async_retry_on_may_return_a_fault(clock: FakeClock) -> None:
    """A ``Fault`` from an async predicate is used as is: its ``retry_after`` is waited."""
    verdicts = Verdicts(Fault(True, "throttled", 2.5))
    outcomes = FaultSequence(OSError("busy"), "ok")

    @retry(attempts=5, retry_on=verdicts)
    async def fetch() -> object:
        return outcomes()

    assert "ok" == asyncio.run(fetch())
    assert [2.5] == clock.sleeps


def test_an_async_retry_on_sees_every_retried_fault_in_stats(clock: FakeClock) -> None:
    """The awaited verdict's cause is booked like a sync classifier's."""
    outcomes = FaultSequence(KeyError(), KeyError(), "ok")

    @retry(attempts=5, retry_on=Verdicts(Fault(True, "server", None)))
    async def fetch() -> object:
        return outcomes()

    asyncio.run(fetch())
    assert {"server": 2} == retryx.stats(fetch).by_cause
