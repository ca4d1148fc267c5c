"""Retry blocks (``retryx.attempts``): the decorator's engine around a ``with`` block."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Policy, backoff, events
from retryx.testing import FakeClock, FaultSequence

pytestmark = pytest.mark.usefixtures("clock")


def _record() -> tuple[list[Any], Any]:
    seen: list[Any] = []
    return seen, events.subscribe(seen.append)


def _shape(seen: list[Any]) -> list[tuple[str, int]]:
    out = []
    for e in seen:
        kind = type(e).__name__
        number = getattr(e, "attempt", None) or getattr(e, "attempts", 0)
        out.append((kind, number))
    return out


POLICY = Policy(attempts=4, backoff=backoff.exponential(initial=1.0), jitter="none")


def test_a_block_retries_like_the_decorator(clock: FakeClock) -> None:
    """The same attempts, waits and events as ``@retry`` with the same policy."""
    script = [ConnectionError(), TimeoutError(), "ok"]
    seen, stop = _record()
    seq = FaultSequence(*script)
    for attempt in retryx.attempts(POLICY, name="block"):
        with attempt:
            result = seq()
    stop()
    block_events, block_sleeps = _shape(seen), list(clock.sleeps)

    clock.sleeps.clear()
    seen, stop = _record()
    decorated = retryx.retry(POLICY.replace(name="block"))(FaultSequence(*script))
    assert "ok" == decorated()
    stop()
    assert "ok" == result
    assert 3 == seq.calls
    assert [1.0, 2.0] == block_sleeps
    assert list(clock.sleeps) == block_sleeps
    assert _shape(seen) == block_events


def test_the_attempt_number_and_current(clock: FakeClock) -> None:
    """``attempt.number`` counts from 1 and ``current()`` sees the block's call."""
    numbers, ids = [], set()
    seq = FaultSequence(ConnectionError(), ConnectionError(), "ok")
    for attempt in retryx.attempts(attempts=3, backoff="none", name="numbered"):
        with attempt:
            ctx = retryx.current()
            assert ctx is not None
            numbers.append((attempt.number, ctx.attempt, ctx.name))
            ids.add(ctx.call_id)
            seq()
    assert [(1, 1, "numbered"), (2, 2, "numbered"), (3, 3, "numbered")] == numbers
    assert 1 == len(ids)
    assert retryx.current() is None


def test_giving_up_re_raises_the_fault_with_the_note(clock: FakeClock) -> None:
    """When attempts run out, the last fault comes out of the ``for`` with retryx's note."""
    with pytest.raises(ConnectionResetError) as info:  # noqa: PT012 (the block under test is a loop)
        for attempt in retryx.attempts(attempts=2, backoff="none", name="doomed"):
            with attempt:
                raise ConnectionResetError("reset")
    assert "gave up after 2 attempts" in "".join(info.value.__notes__)


def test_a_permanent_fault_is_raised_at_once(clock: FakeClock) -> None:
    """A fault the classifier calls permanent ends the block after one attempt."""
    runs = 0
    with pytest.raises(KeyError):  # noqa: PT012 (the block under test is a loop)
        for attempt in retryx.attempts(attempts=5, name="perm"):
            with attempt:
                runs += 1
                raise KeyError("x")
    assert 1 == runs


def test_keyboard_interrupt_is_never_retried(clock: FakeClock) -> None:
    """A BaseException that is not an Exception leaves the block untouched."""
    runs = 0
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 (the block under test is a loop)
        for attempt in retryx.attempts(attempts=5, name="kbd"):
            with attempt:
                runs += 1
                raise KeyboardInterrupt
    assert 1 == runs


def test_stats_under_the_blocks_name(clock: FakeClock) -> None:
    """``retryx.stats(name)`` counts the block's calls, attempts and retries."""
    for _ in range(2):
        seq = FaultSequence(ConnectionError(), "ok")
        for attempt in retryx.attempts(attempts=3, backoff="none", name="counted"):
            with attempt:
                seq()
    got = retryx.stats("counted")
    assert (2, 2, 4, 2) == (got.calls, got.successes, got.attempts, got.retries)
    with pytest.raises(ConfigError, match="no retry block named"):
        retryx.stats("never-ran")


def test_deadline_and_budget_apply(clock: FakeClock) -> None:
    """The deadline ends a block before a wait would cross it (reason deadline)."""
    seen, stop = _record()
    with pytest.raises(ConnectionError):  # noqa: PT012 (the block under test is a loop)
        for attempt in retryx.attempts(
            attempts=10, backoff=backoff.fixed(4.0), jitter="none", deadline=10, name="dl"
        ):
            with attempt:
                raise ConnectionError
    stop()
    assert [8.0] == [sum(clock.sleeps)]
    assert "deadline" == next(e.reason for e in seen if isinstance(e, events.GaveUp))


def test_a_block_inside_a_retrying_function_defers(clock: FakeClock) -> None:
    """The nested guard: a block inside a retrying call runs one attempt per outer attempt."""
    inner_runs = 0

    @retryx.retry(attempts=3, backoff="none")
    def outer() -> None:
        nonlocal inner_runs
        for attempt in retryx.attempts(attempts=3, backoff="none", name="inner-block"):
            with attempt:
                inner_runs += 1
                raise ConnectionError

    with pytest.raises(ConnectionError):
        outer()
    assert 3 == inner_runs


def test_async_for_awaits_the_waits(clock: FakeClock) -> None:
    """``async for`` gives the same attempts and waits, awaiting the clock."""
    seq = FaultSequence(ConnectionError(), TimeoutError(), "ok")

    async def main() -> str:
        async for attempt in retryx.attempts(POLICY, name="async-block"):
            with attempt:
                return str(seq())
        raise AssertionError("unreachable")

    assert "ok" == asyncio.run(main())
    assert [1.0, 2.0] == clock.sleeps


def test_async_block_gives_up_with_the_fault(clock: FakeClock) -> None:
    """An async block that runs out of attempts raises the last fault."""

    async def main() -> None:
        async for attempt in retryx.attempts(attempts=2, backoff="none", name="async-doomed"):
            with attempt:
                raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        asyncio.run(main())


def test_trio_block(clock: FakeClock) -> None:
    """``async for`` over a block works under trio."""
    trio = pytest.importorskip("trio")
    seq = FaultSequence(ConnectionError(), "ok")

    async def main() -> Any:
        async for attempt in retryx.attempts(attempts=2, backoff=backoff.fixed(5.0), name="t"):
            with attempt:
                return seq()
        return None

    assert "ok" == trio.run(main)
    assert 1 == len(clock.sleeps)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((Policy(),), {"attempts": 2}, "not both"),
        ((42,), {}, "must be a Policy"),
        ((), {"attempt_timeout": 1.0}, "attempt_timeout"),
        ((), {"attemps": 2}, "attemps"),
    ],
)
def test_bad_arguments_are_config_errors(args: Any, kwargs: Any, match: str) -> None:
    """Mistakes fail when the block is made, naming the problem."""
    with pytest.raises((ConfigError, TypeError), match=match):
        retryx.attempts(*args, **kwargs)


def test_default_name_is_the_callers_qualname(clock: FakeClock) -> None:
    """Without ``name=`` the block is named after the function it is in."""
    block = retryx.attempts(attempts=1)
    assert "test_default_name_is_the_callers_qualname" == block.name


def test_leaving_the_loop_with_return_books_the_success(clock: FakeClock) -> None:
    """``return`` inside ``with attempt:`` ends the block as a success and leaves no scope."""
    seq = FaultSequence(ConnectionError(), "ok")

    def fetch() -> Any:
        for attempt in retryx.attempts(attempts=3, backoff="none", name="returning"):
            with attempt:
                return seq()
        return None

    assert "ok" == fetch()
    got = retryx.stats("returning")
    assert (1, 1, 2) == (got.calls, got.successes, got.attempts)
    assert retryx.current() is None


def test_a_body_without_with_is_a_success(clock: FakeClock) -> None:
    """A loop body that never enters ``with attempt:`` ends after one attempt."""
    runs = 0
    for _attempt in retryx.attempts(attempts=3, name="no-with"):
        runs += 1
    assert 1 == runs
