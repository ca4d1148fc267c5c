"""A breaker guards generator functions and async generator functions; a retry layer
still refuses them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import retryx
from retryx import CircuitBreaker, CircuitOpenError, ConfigError, Permanent, circuit_breaker
from retryx.testing import FakeClock


def rows(breaker: CircuitBreaker, fault: Exception | None = None, after: int = 2) -> Any:
    """A generator function through ``breaker`` yielding ``after`` rows, then ``fault``."""

    @breaker
    def read() -> Iterator[int]:
        yield from range(after)
        if fault is not None:
            raise fault

    return read


def async_rows(breaker: CircuitBreaker, fault: Exception | None = None, after: int = 2) -> Any:
    """``rows`` as an async generator function."""

    @breaker
    async def read() -> AsyncIterator[int]:
        for row in range(after):
            await asyncio.sleep(0)
            yield row
        if fault is not None:
            raise fault

    return read


async def drain(agen: Any) -> list[Any]:
    return [row async for row in agen]


def half_open(breaker: CircuitBreaker) -> CircuitBreaker:
    breaker.open()
    breaker.half_open()
    return breaker


# --- sync generators --------------------------------------------------------------------


def test_a_decorated_generator_function_is_still_one(clock: FakeClock) -> None:
    """The decorated function is a generator function yielding the same rows."""
    read = rows(CircuitBreaker("db"))
    assert inspect.isgeneratorfunction(read)
    assert [0, 1] == list(read())


def test_admission_happens_at_the_first_next(clock: FakeClock) -> None:
    """Creating the generator is not a call; its first next() is refused when open."""
    breaker = CircuitBreaker("db")
    read = rows(breaker)
    breaker.open()
    started = read()
    with pytest.raises(CircuitOpenError):
        next(started)
    assert 1 == retryx.stats(read).rejections


def test_a_fault_while_iterating_counts_as_a_failure(clock: FakeClock) -> None:
    """A transient fault raised after some rows counts, and the caller gets it."""
    breaker = CircuitBreaker("db", failure_threshold=2)
    read = rows(breaker, ConnectionError("reset"))
    for _ in range(2):
        started = read()
        assert [0, 1] == [next(started), next(started)]
        with pytest.raises(ConnectionError):
            next(started)
    assert "open" == breaker.state


def test_a_permanent_fault_while_iterating_is_not_counted(clock: FakeClock) -> None:
    """The counts classifier decides: a permanent fault leaves the count alone."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    with pytest.raises(Permanent):
        list(rows(breaker, Permanent("bad query"))())
    assert ("closed", 0) == (breaker.state, breaker.failure_count)


def test_a_completed_iteration_is_a_success(clock: FakeClock) -> None:
    """Exhausting the generator books a success: a half-open breaker closes."""
    breaker = half_open(CircuitBreaker("db"))
    assert [0, 1] == list(rows(breaker)())
    assert "closed" == breaker.state


def test_closing_early_gives_the_trial_slot_back_without_a_verdict(clock: FakeClock) -> None:
    """close() before the end releases the trial slot; the breaker stays half-open."""
    breaker = half_open(CircuitBreaker("db", half_open_max_calls=1))
    read = rows(breaker, after=5)
    first = read()
    assert 0 == next(first)
    with pytest.raises(CircuitOpenError):
        next(read())  # the only trial slot is taken
    first.close()
    assert "half_open" == breaker.state
    assert [0, 1, 2, 3, 4] == list(read())  # the slot was free again: a trial that closes
    assert "closed" == breaker.state


def test_a_generator_never_started_takes_no_slot(clock: FakeClock) -> None:
    """A generator created and dropped was never admitted."""
    breaker = half_open(CircuitBreaker("db", half_open_max_calls=1))
    read = rows(breaker)
    read()
    assert [0, 1] == list(read())


def test_send_and_throw_reach_the_generator(clock: FakeClock) -> None:
    """send() values and throw() faults go to the decorated generator."""
    breaker = CircuitBreaker("db", failure_threshold=1)

    @breaker
    def echo() -> Iterator[Any]:
        received = yield "ready"
        while True:
            received = yield f"got {received}"

    talk = echo()
    assert "ready" == next(talk)
    assert "got 1" == talk.send(1)
    with pytest.raises(TimeoutError):
        talk.throw(TimeoutError("slow"))
    assert "open" == breaker.state  # a thrown fault that escapes counts too


def test_a_generator_method_binds(clock: FakeClock) -> None:
    """A generator method decorated with a breaker gets its instance."""

    class Table:
        def __init__(self) -> None:
            self.data = [1, 2, 3]

        @circuit_breaker(name="table")
        def scan(self) -> Iterator[int]:
            yield from self.data

    assert [1, 2, 3] == list(Table().scan())


def test_a_switched_off_retryx_iterates_plainly(clock: FakeClock) -> None:
    """set_active(False): an open breaker admits the iteration."""
    breaker = CircuitBreaker("db")
    read = rows(breaker)
    breaker.open()
    retryx.set_active(False)
    try:
        assert [0, 1] == list(read())
    finally:
        retryx.set_active(True)


@pytest.mark.parametrize("kind", ["generator", "async generator"])
def test_retry_still_refuses_generators(kind: str) -> None:
    """@retry on a generator function, or over a guarded one, is a ConfigError."""

    def gen() -> Iterator[int]:
        yield 1

    async def agen() -> AsyncIterator[int]:
        yield 1

    func: Any = gen if kind == "generator" else agen
    with pytest.raises(ConfigError, match=f"is an? {kind}: retryx cannot retry it"):
        retryx.retry(attempts=2)(func)
    with pytest.raises(ConfigError, match="cannot retry it"):
        retryx.retry(attempts=2)(circuit_breaker(func))


def test_failover_refuses_generators() -> None:
    """A failover layer needs a second run too: refused."""

    def gen(host: str = "a") -> Iterator[str]:
        yield host

    with pytest.raises(ConfigError, match="is a generator: @failover cannot wrap it"):
        retryx.failover(["a", "b"])(gen)


def test_fallback_refuses_generators_naming_itself() -> None:
    """@fallback on a generator function is refused with a message about @fallback (not
    about retrying): its failures arise while it is iterated, after the call returned."""

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(ConfigError, match="is a generator: @fallback cannot wrap it"):
        retryx.fallback(value=0)(gen)


# --- async generators -------------------------------------------------------------------


def test_a_decorated_async_generator_function_is_still_one(clock: FakeClock) -> None:
    """The decorated function is an async generator function yielding the same rows."""
    read = async_rows(CircuitBreaker("db"))
    assert inspect.isasyncgenfunction(read)
    assert [0, 1] == asyncio.run(drain(read()))


def test_async_admission_happens_at_the_first_step(clock: FakeClock) -> None:
    """Creating the async generator is not a call; its first step is refused when open."""
    breaker = CircuitBreaker("db")
    read = async_rows(breaker)
    breaker.open()
    started = read()
    with pytest.raises(CircuitOpenError):
        asyncio.run(drain(started))


def test_an_async_fault_while_iterating_counts_as_a_failure(clock: FakeClock) -> None:
    """A transient fault raised while iterating counts; a permanent one does not."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    with pytest.raises(Permanent):
        asyncio.run(drain(async_rows(breaker, Permanent("bad query"))()))
    assert "closed" == breaker.state
    with pytest.raises(ConnectionError):
        asyncio.run(drain(async_rows(breaker, ConnectionError("reset"))()))
    assert "open" == breaker.state


def test_a_completed_async_iteration_is_a_success(clock: FakeClock) -> None:
    """Exhausting the async generator books a success: a half-open breaker closes."""
    breaker = half_open(CircuitBreaker("db"))
    assert [0, 1] == asyncio.run(drain(async_rows(breaker)()))
    assert "closed" == breaker.state


def test_closing_an_async_generator_early_gives_the_slot_back(clock: FakeClock) -> None:
    """aclose() before the end releases the trial slot without a verdict."""
    breaker = half_open(CircuitBreaker("db", half_open_max_calls=1))
    read = async_rows(breaker, after=5)

    async def main() -> list[int]:
        first = read()
        assert 0 == await first.__anext__()
        with pytest.raises(CircuitOpenError):
            await read().__anext__()
        await first.aclose()
        assert "half_open" == breaker.state
        return await drain(read())

    assert [0, 1, 2, 3, 4] == asyncio.run(main())
    assert "closed" == breaker.state


def test_a_cancelled_async_iteration_gives_the_slot_back(clock: FakeClock) -> None:
    """A task cancelled while iterating books no verdict."""
    breaker = half_open(CircuitBreaker("db", half_open_max_calls=1))

    @breaker
    async def slow() -> AsyncIterator[int]:
        yield 0
        await asyncio.Event().wait()  # never set
        yield 1

    async def main() -> None:
        task = asyncio.create_task(drain(slow()))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert ("half_open", 0) == (breaker.state, breaker._trials)


def test_asend_and_athrow_reach_the_async_generator(clock: FakeClock) -> None:
    """asend() values and athrow() faults go to the decorated async generator."""
    breaker = CircuitBreaker("db", failure_threshold=1)

    @breaker
    async def echo() -> AsyncIterator[Any]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except KeyError:
                received = "handled"

    async def main() -> list[Any]:
        talk = echo()
        seen = [await talk.__anext__(), await talk.asend(1)]
        seen.append(await talk.athrow(KeyError("k")))  # caught inside: iteration goes on
        seen.append(await talk.asend(2))
        with pytest.raises(TimeoutError):
            await talk.athrow(TimeoutError("slow"))
        return seen

    assert ["ready", "got 1", "got handled", "got 2"] == asyncio.run(main())
    assert "open" == breaker.state


def test_an_async_generator_is_guarded_under_trio(clock: FakeClock) -> None:
    """The async guard uses no asyncio: it works under trio too."""
    trio = pytest.importorskip("trio")
    breaker = CircuitBreaker("db", failure_threshold=1)

    @breaker
    async def read() -> AsyncIterator[int]:
        for row in range(2):
            await trio.sleep(0)
            yield row
        raise ConnectionError("reset")

    async def main() -> list[int]:
        agen = read()
        seen = [await agen.__anext__(), await agen.__anext__()]
        with pytest.raises(ConnectionError):
            await agen.__anext__()
        return seen

    assert [0, 1] == trio.run(main)
    assert "open" == breaker.state
