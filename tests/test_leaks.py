"""A failed call leaves nothing behind: no reference cycle, no open socket, no growth."""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import socket
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import retryx
from retryx import (
    AllEndpointsFailed,
    Policy,
    circuit_breaker,
    current,
    failover,
    fallback,
    retry,
    sockets,
    testing,
)
from retryx.testing import FakeClock, servers


class Payload:
    """Something the failing function holds in a local (weakly referenceable)."""


@pytest.fixture
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector is off: only reference counting frees objects."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _layers() -> dict[str, Callable[[Any], Any]]:
    return {
        "retry": retry(attempts=3, backoff="none"),
        "permanent": retry(attempts=3, retry_on=KeyError),
        "breaker": circuit_breaker(failure_threshold=1000),
        "retry+breaker": lambda f: retry(attempts=3, backoff="none")(
            circuit_breaker(failure_threshold=1000)(f)
        ),
        "retry+failover": lambda f: retry(attempts=2, backoff="none")(
            failover(["a", "b"], breaker=None)(f)
        ),
        "fallback+retry": lambda f: fallback(value=0)(retry(attempts=2, backoff="none")(f)),
        "partial": lambda f: retry(attempts=2, backoff="none")(functools.partial(f)),
    }


@pytest.mark.parametrize("layers", list(_layers()))
def test_a_failed_sync_call_frees_the_functions_locals_without_the_gc(
    layers: str, clock: FakeClock, no_gc: None
) -> None:
    """Every object a failing function held is freed by reference counting once the call ends."""
    refs: list[weakref.ref[Payload]] = []

    def fetch(**kwargs: Any) -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        raise ConnectionError("refused")

    decorated = _layers()[layers](fetch)
    for _ in range(3):
        try:
            decorated()
        except Exception:
            pass
    assert refs
    assert [] == [ref for ref in refs if ref() is not None]


@pytest.mark.parametrize("layers", list(_layers()))
def test_a_failed_async_call_frees_the_functions_locals_without_the_gc(
    layers: str, clock: FakeClock, no_gc: None
) -> None:
    """The same holds for coroutine functions, driven by a real event loop."""
    refs: list[weakref.ref[Payload]] = []

    async def fetch(**kwargs: Any) -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        raise ConnectionError("refused")

    decorated = _layers()[layers](fetch)

    async def main() -> None:
        for _ in range(3):
            try:
                await decorated()
            except Exception:
                pass

    with asyncio.Runner() as runner:
        runner.run(main())
    assert refs
    assert [] == [ref for ref in refs if ref() is not None]


def test_memory_held_by_failing_calls_is_freed_call_by_call(clock: FakeClock, no_gc: None) -> None:
    """Failed calls holding 1 MB each peak near 1 MB, not at their sum."""

    @retry(attempts=2, backoff="none")
    def fetch() -> None:
        buffer = bytearray(1 << 20)  # noqa: F841 - held by the frame, as a response would be
        raise ConnectionError("reset")

    tracemalloc.start()
    try:
        for _ in range(30):
            with pytest.raises(ConnectionError):
                fetch()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 << 20


def _open_descriptors() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the finaliser closes it, and says so
def test_failed_calls_leave_no_socket_open(clock: FakeClock, no_gc: None) -> None:
    """Sockets a failing function leaves to its frame are closed when the call fails."""
    with servers.refusing() as address:

        @retry(attempts=3, backoff="none")
        def connect() -> socket.socket:
            sock = socket.socket()  # closed by its finaliser, as user code often relies on
            sock.connect(address)
            return sock

        before = _open_descriptors()
        try:
            for _ in range(50):
                with pytest.raises(ConnectionRefusedError):
                    connect()
            assert before == _open_descriptors()
        finally:
            gc.collect()  # what a failure left to the collector: not for the next test


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_sockets_connect_leaves_no_socket_open_when_every_endpoint_fails(
    clock: FakeClock, no_gc: None
) -> None:
    """``sockets.connect`` over refusing endpoints closes every socket it made."""
    with servers.refusing() as first, servers.refusing() as second:
        policy = Policy(attempts=2, backoff="none")
        before = _open_descriptors()
        for _ in range(20):
            with pytest.raises(AllEndpointsFailed):
                sockets.connect([first, second], policy=policy)
        assert before == _open_descriptors()


# --- the scope of a call that has ended (item 4) ---------------------------------------


def test_a_task_that_outlives_the_call_sees_no_current_call() -> None:
    """``current()`` in a task spawned by a call is ``None`` once that call has ended."""
    seen: list[Any] = []

    async def later() -> None:
        await asyncio.sleep(0)
        seen.append(current())

    @retry(attempts=2, backoff="none")
    async def spawn() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(later())

    async def main() -> None:
        task = await spawn()
        await task

    asyncio.run(main())
    assert [None] == seen


def test_a_task_that_outlives_a_failed_call_keeps_no_failed_attempt_alive(no_gc: None) -> None:
    """A task spawned by a failed attempt does not keep that attempt's exception alive."""
    refs: list[weakref.ref[Payload]] = []
    seen: list[Any] = []
    hold = asyncio.Event()

    async def later() -> None:
        await hold.wait()
        seen.append(current())

    tasks: list[asyncio.Task[None]] = []

    with testing.fake_time():

        @retry(attempts=2, backoff="none")
        async def spawn() -> None:
            payload = Payload()
            refs.append(weakref.ref(payload))
            tasks.append(asyncio.get_running_loop().create_task(later()))
            if len(refs) == 1:
                raise ConnectionError("first attempt fails")

        async def main() -> None:
            await spawn()
            alive = [ref for ref in refs if ref() is not None]
            hold.set()
            await asyncio.gather(*tasks)
            assert [] == alive

        with asyncio.Runner() as runner:
            runner.run(main())
    assert [None, None] == seen


def test_a_callback_that_outlives_the_call_sees_no_current_call() -> None:
    """A ``call_soon`` callback scheduled during a call sees ``current() is None`` later."""
    seen: list[Any] = []

    @retry(attempts=2, backoff="none")
    async def schedule() -> None:
        asyncio.get_running_loop().call_soon(lambda: seen.append(current()))

    async def main() -> None:
        await schedule()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [None] == seen


def test_a_task_of_an_ended_inner_call_sees_the_outer_call_still_running() -> None:
    """When the inner call ended but the outer runs on, ``current()`` is the outer call."""
    seen: list[Any] = []

    async def later() -> None:
        seen.append(current())

    @retry(attempts=1, name="inner")
    async def inner() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(later())

    @retry(attempts=1, name="outer")
    async def outer() -> None:
        await (await inner())

    asyncio.run(outer())
    assert ["outer"] == [context.name for context in seen]


# --- growth: notes on a reused exception, the nesting warning's memory (items 5, 6) -----


def test_a_reused_exception_instance_carries_one_give_up_note(clock: FakeClock) -> None:
    """Raising the same instance in many calls leaves one note per policy, not one per call."""
    down = ConnectionError("down")

    @retry(attempts=2, backoff="none", name="fetch")
    def fetch() -> None:
        raise down

    for _ in range(50):
        with pytest.raises(ConnectionError):
            fetch()
    assert 1 == len(down.__notes__)
    assert down.__notes__[0].startswith("retryx: gave up after 2 attempts")


def test_notes_of_other_layers_and_the_users_own_stay(clock: FakeClock) -> None:
    """Only this policy's earlier note is replaced: an inner policy's and the user's stay."""
    down = ConnectionError("down")
    down.add_note("user note")

    @retry(attempts=2, backoff="none", nested="allow", name="inner")
    def inner() -> None:
        raise down

    @retry(attempts=2, backoff="none", name="outer")
    def outer() -> None:
        inner()

    for _ in range(3):
        with pytest.raises(ConnectionError):
            outer()
    assert ["user note", "inner", "outer"] == [
        note if note == "user note" else note.split("'")[1] for note in down.__notes__
    ]


def test_the_nesting_warning_remembers_a_bounded_number_of_pairs(clock: FakeClock) -> None:
    """Per-request policy names do not grow the once-per-pair memory without bound."""
    from retryx import _nesting

    @retry(attempts=1, name="outer")
    def outer(inner: Callable[[], None]) -> None:
        inner()

    for n in range(_nesting._MAX_WARNED_NESTED + 200):
        outer(retry(attempts=2, name=f"inner-{n}")(lambda: None))
    assert len(_nesting._warned_nested) <= _nesting._MAX_WARNED_NESTED


def test_a_failed_retry_block_frees_the_blocks_locals_without_the_gc(
    clock: FakeClock, no_gc: None
) -> None:
    """A ``for attempt in retryx.attempts(...)`` block that gives up leaves no cycle either."""
    refs: list[weakref.ref[Payload]] = []

    def fetch() -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        raise ConnectionError("refused")

    def block() -> None:
        for attempt in retryx.attempts(attempts=2, backoff="none"):
            with attempt:
                fetch()

    for _ in range(3):
        with pytest.raises(ConnectionError):
            block()
    assert 6 == len(refs)
    assert [] == [ref for ref in refs if ref() is not None]


def test_a_failed_async_retry_block_frees_the_blocks_locals_without_the_gc(
    clock: FakeClock, no_gc: None
) -> None:
    """The same for ``async for``."""
    refs: list[weakref.ref[Payload]] = []

    async def fetch() -> None:
        payload = Payload()
        refs.append(weakref.ref(payload))
        raise ConnectionError("refused")

    async def block() -> None:
        async for attempt in retryx.attempts(attempts=2, backoff="none"):
            with attempt:
                await fetch()

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(ConnectionError):
                await block()

    with asyncio.Runner() as runner:
        runner.run(main())
    assert 6 == len(refs)
    assert [] == [ref for ref in refs if ref() is not None]
