"""A half-open trial slot always comes back, whatever the classifier or the exit order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from retryx import CircuitBreaker, CircuitOpenError, circuit_breaker
from retryx.testing import FakeClock


class Odd(Exception):
    """An exception the classifiers below cannot judge."""


def raising(exc: BaseException) -> bool:
    if isinstance(exc, Odd):
        raise RuntimeError("classifier bug")
    return isinstance(exc, ConnectionError)


def no_verdict(exc: BaseException) -> Any:
    return "maybe" if isinstance(exc, Odd) else isinstance(exc, ConnectionError)


def _half_open(counts: Any, clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker("trials", failure_threshold=1, recovery_timeout=1.0, counts=counts)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("down")
    clock.advance(1.0)
    assert "half_open" == breaker.state
    return breaker


@pytest.mark.parametrize("counts", [raising, no_verdict], ids=["raises", "str"])
def test_a_trial_the_classifier_cannot_judge_gives_its_slot_back_decorated(
    counts: Any, clock: FakeClock
) -> None:
    """Through the decorator, the next call is admitted as a trial after an unjudged one."""
    breaker = _half_open(counts, clock)
    calls = 0

    @circuit_breaker(breaker)
    def call(fail: bool) -> str:
        nonlocal calls
        calls += 1
        if fail:
            raise Odd("odd")
        return "ok"

    with pytest.raises((RuntimeError, TypeError)):
        call(True)
    assert "ok" == call(False)
    assert (2, "closed") == (calls, breaker.state)


@pytest.mark.parametrize("counts", [raising, no_verdict], ids=["raises", "str"])
def test_a_trial_the_classifier_cannot_judge_gives_its_slot_back_in_a_with_block(
    counts: Any, clock: FakeClock
) -> None:
    """Through the context manager too."""
    breaker = _half_open(counts, clock)
    with pytest.raises((RuntimeError, TypeError)), breaker:
        raise Odd("odd")
    with breaker:
        pass
    assert "closed" == breaker.state


@pytest.mark.parametrize("counts", [raising, no_verdict], ids=["raises", "str"])
def test_a_trial_the_classifier_cannot_judge_gives_its_slot_back_async(
    counts: Any, clock: FakeClock
) -> None:
    """And for coroutine functions."""
    breaker = _half_open(counts, clock)

    @circuit_breaker(breaker)
    async def call(fail: bool) -> str:
        if fail:
            raise Odd("odd")
        return "ok"

    async def main() -> str:
        with pytest.raises((RuntimeError, TypeError)):
            await call(True)
        return await call(False)

    assert "ok" == asyncio.run(main())
    assert "closed" == breaker.state


def test_with_blocks_that_do_not_nest_book_their_own_breakers_token(clock: FakeClock) -> None:
    """Two generators reading alternately, each under its own breaker, close both breakers."""
    a = _half_open(None, clock)
    b = CircuitBreaker("b", failure_threshold=5)

    def stream(breaker: CircuitBreaker) -> Iterator[int]:
        with breaker:
            yield 1
            yield 2

    first, second = stream(a), stream(b)
    next(first)  # a entered (a half-open trial)
    next(second)  # b entered (closed)
    assert [2] == list(first)  # a exits first: not the last block entered
    assert [2] == list(second)
    assert ("closed", "closed") == (a.state, b.state)
    with a:  # a is closed, so the next call is admitted at once
        pass


def test_async_with_blocks_that_do_not_nest_book_their_own_breakers_token(
    clock: FakeClock,
) -> None:
    """The same with async generators on a real event loop."""
    a = _half_open(None, clock)
    b = CircuitBreaker("b", failure_threshold=5)

    async def stream(breaker: CircuitBreaker) -> AsyncIterator[int]:
        async with breaker:
            yield 1

    async def main() -> None:
        first, second = stream(a), stream(b)
        await anext(first)
        await anext(second)
        with pytest.raises(StopAsyncIteration):
            await anext(first)
        with pytest.raises(StopAsyncIteration):
            await anext(second)

    asyncio.run(main())
    assert ("closed", "closed") == (a.state, b.state)


def test_an_unclosed_trial_still_refuses_others(clock: FakeClock) -> None:
    """The fix keeps the limit: a trial in progress refuses a second one."""
    a = _half_open(None, clock)
    with a, pytest.raises(CircuitOpenError), a:
        pass
