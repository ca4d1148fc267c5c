"""The nested-retry guard: defer, raise or allow, across tasks, threads and pools."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from retryx import (
    NestedRetryError,
    Policy,
    backoff,
    classify,
    current,
    events,
    failover,
    retry,
    stats,
)
from retryx.testing import FakeClock

WAIT = 5.0  # real seconds a thread may take before the test fails instead of hanging


def policy(name: str, nested: str = "defer") -> Policy:
    return Policy(attempts=3, backoff=backoff.fixed(1.0), jitter="none", nested=nested, name=name)


class Pair:
    """An outer retrying function calling an inner retrying function that always fails."""

    def __init__(
        self,
        nested: str = "defer",
        *,
        is_async: bool = False,
        names: tuple[str, str] = ("outer", "inner"),
    ) -> None:
        outer_name, inner_name = names
        self.innermost = 0
        self.ids: list[tuple[str, str]] = []

        @retry(policy(inner_name, nested))
        def inner() -> None:
            self.record("inner")
            self.innermost += 1
            raise ConnectionError("down")

        @retry(policy(outer_name))
        def outer() -> None:
            self.record("outer")
            inner()

        @retry(policy(inner_name, nested))
        async def ainner() -> None:
            self.record("inner")
            self.innermost += 1
            raise ConnectionError("down")

        @retry(policy(outer_name))
        async def aouter() -> None:
            self.record("outer")
            await ainner()

        self.inner: Callable[..., Any] = ainner if is_async else inner
        self.outer: Callable[..., Any] = aouter if is_async else outer
        self.is_async = is_async

    def record(self, who: str) -> None:
        context = current()
        assert context is not None
        self.ids.append((who, context.call_id))

    def call(self, func: Callable[..., Any]) -> Any:
        """Call ``func`` (run it in a fresh event loop when it is a coroutine function)."""
        return asyncio.run(func()) if self.is_async else func()

    def run(self) -> BaseException:
        """Call the outer function once; return what it raised."""
        with pytest.raises(Exception) as info:
            self.call(self.outer)
        return info.value


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    """Run the test for functions and for coroutine functions."""
    return bool(request.param)


def subscribe() -> list[Any]:
    seen: list[Any] = []
    events.subscribe(seen.append)
    return seen


# --- counting calls -----------------------------------------------------------------------------


def test_defer_calls_the_innermost_once_per_outer_attempt(clock: FakeClock, is_async: bool) -> None:
    """Under "defer" the innermost function runs at most the outer attempts: 3."""
    pair = Pair("defer", is_async=is_async)
    error = pair.run()
    assert ConnectionError is type(error)
    assert 3 == pair.innermost
    assert [1.0, 1.0] == clock.sleeps  # the outer waits only; the inner never waits


def test_allow_multiplies(clock: FakeClock, is_async: bool) -> None:
    """Under "allow" the attempts multiply: 3 x 3 = 9 innermost calls."""
    pair = Pair("allow", is_async=is_async)
    assert ConnectionError is type(pair.run())
    assert 9 == pair.innermost
    assert 2 * 3 + 2 == len(clock.sleeps)


def test_raise_never_calls_the_innermost(clock: FakeClock, is_async: bool) -> None:
    """Under "raise" NestedRetryError is raised before the call and the outer gives up at once."""
    pair = Pair("raise", is_async=is_async)
    seen = subscribe()
    error = pair.run()
    assert isinstance(error, NestedRetryError)
    assert ("outer", "inner") == (error.outer, error.inner)
    assert 0 == pair.innermost
    assert [] == clock.sleeps
    assert [("outer", "permanent")] == [
        (e.name, e.reason) for e in seen if isinstance(e, events.GaveUp)
    ]


def test_nested_retry_error_is_permanent() -> None:
    """classify() calls NestedRetryError permanent."""
    assert False is classify(NestedRetryError("a", "b")).transient


def test_sequential_calls_are_not_nested(clock: FakeClock) -> None:
    """A retrying call made after another one returned is not nested."""
    runs: list[int] = []

    @retry(policy("first"))
    def first() -> str:
        return "ok"

    @retry(policy("second"))
    def second() -> None:
        runs.append(1)
        raise ConnectionError("down")

    first()
    with pytest.raises(ConnectionError):
        second()
    assert 3 == len(runs)


def test_non_retrying_layer_between_is_still_nested(clock: FakeClock) -> None:
    """A failover-only function between two retries does not hide the outer retry."""
    runs: list[str] = []

    @retry(policy("inner"))
    def inner() -> None:
        runs.append("inner")
        raise ConnectionError("down")

    @failover(["a"])
    def middle(*, host: str) -> None:
        inner()

    @retry(policy("outer"))
    def outer() -> None:
        middle()

    with pytest.raises(Exception):  # noqa: B017 - the sweep's AllEndpointsFailed
        outer()
    assert ["inner"] * 3 == runs


# --- warning and events --------------------------------------------------------------------------


def nested_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "retryx" and r.levelno == logging.WARNING and "nested" in r.getMessage()
    ]


def unique_names(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Names no other test uses: the warning is once per process for each pair."""
    return (f"outer-{request.node.name}", f"inner-{request.node.name}")


def test_warning_once_per_pair(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    """The nesting warning says "nested" and is logged once per (outer, inner) pair."""
    caplog.set_level(logging.WARNING, logger="retryx")
    names = unique_names(request)
    pair = Pair("defer", names=names)
    pair.run()
    pair.run()
    warnings = nested_warnings(caplog)
    assert 1 == len(warnings)
    assert names[0] in warnings[0].getMessage()
    assert names[1] in warnings[0].getMessage()


def test_warning_once_per_pair_of_names(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    """Other functions with the same outer and inner names do not warn again."""
    caplog.set_level(logging.WARNING, logger="retryx")
    names = unique_names(request)
    Pair("defer", names=names).run()
    Pair("defer", names=names, is_async=True).run()
    assert 1 == len(nested_warnings(caplog))


def test_warning_again_for_another_outer(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    """A different outer name around the same inner function warns once more."""
    caplog.set_level(logging.WARNING, logger="retryx")
    names = unique_names(request)
    pair = Pair("defer", names=names)

    @retry(policy(f"other-{request.node.name}"))
    def other() -> None:
        pair.inner()

    pair.run()
    with pytest.raises(ConnectionError):
        other()
    with pytest.raises(ConnectionError):
        other()
    assert 2 == len(nested_warnings(caplog))


def test_nested_retry_event_every_deferred_call(clock: FakeClock, is_async: bool) -> None:
    """NestedRetry(outer, inner) is emitted on every deferred call."""
    seen = subscribe()
    pair = Pair("defer", is_async=is_async)
    pair.run()
    pair.run()
    nested = [(e.outer, e.inner) for e in seen if isinstance(e, events.NestedRetry)]
    assert [("outer", "inner")] * 6 == nested


def test_no_event_under_allow(clock: FakeClock) -> None:
    """Under "allow" no NestedRetry is emitted."""
    seen = subscribe()
    Pair("allow").run()
    assert [] == [e for e in seen if isinstance(e, events.NestedRetry)]


def test_deferred_call_adds_no_note_and_no_gave_up(clock: FakeClock, is_async: bool) -> None:
    """A deferred inner call adds no note and emits no GaveUp; only the outer gives up."""
    seen = subscribe()
    error = Pair("defer", is_async=is_async).run()
    notes = getattr(error, "__notes__", [])
    assert 1 == len(notes)
    assert "'outer'" in notes[0]
    assert "reason: attempts" in notes[0]
    assert [("outer", "attempts")] == [
        (e.name, e.reason) for e in seen if isinstance(e, events.GaveUp)
    ]


def test_deferred_call_stats(clock: FakeClock, is_async: bool) -> None:
    """Each deferred inner call counts one call, one attempt and a failure, not gave_up."""
    pair = Pair("defer", is_async=is_async)
    pair.run()
    inner = stats(pair.inner)
    assert (3, 3, 3, 0, 0, 0) == (
        inner.calls,
        inner.attempts,
        inner.failures,
        inner.successes,
        inner.retries,
        inner.gave_up,
    )
    outer = stats(pair.outer)
    assert (1, 3, 1, 1) == (outer.calls, outer.attempts, outer.failures, outer.gave_up)


def test_deferred_call_has_its_own_call_id(clock: FakeClock, is_async: bool) -> None:
    """Each deferred inner call has its own call_id; the outer keeps one for all its attempts."""
    pair = Pair("defer", is_async=is_async)
    pair.run()
    outer_ids = {i for who, i in pair.ids if who == "outer"}
    inner_ids = [i for who, i in pair.ids if who == "inner"]
    assert 1 == len(outer_ids)
    assert 3 == len(set(inner_ids))
    assert not outer_ids & set(inner_ids)


def test_deferred_inner_success_is_returned(clock: FakeClock) -> None:
    """A deferred inner call that succeeds returns its result to the outer call."""
    outcomes = iter([ConnectionError("down"), "ok"])

    @retry(policy("inner"))
    def inner() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @retry(policy("outer"))
    def outer() -> str:
        return inner()  # type: ignore[no-any-return]

    assert "ok" == outer()
    assert [1.0] == clock.sleeps


# --- scope inheritance: tasks, threads, pools ----------------------------------------------------


def run_elsewhere(how: str, pair: Pair) -> None:
    """Call ``pair.inner`` from a retrying outer call, through ``how``; count innermost calls."""

    @retry(policy("outer"))
    def outer() -> None:
        if how == "thread":
            errors: list[BaseException] = []

            def target() -> None:
                try:
                    pair.inner()
                except ConnectionError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            thread.join(WAIT)
            assert not thread.is_alive()
            raise errors[0]
        if how == "thread in copied context":
            context = contextvars.copy_context()
            errors = []

            def copied() -> None:
                try:
                    context.run(pair.inner)
                except ConnectionError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=copied, daemon=True)
            thread.start()
            thread.join(WAIT)
            assert not thread.is_alive()
            raise errors[0]
        with ThreadPoolExecutor(1) as pool:
            if how == "pool":
                future = pool.submit(pair.inner)
            else:
                future = pool.submit(contextvars.copy_context().run, pair.inner)
            future.result(WAIT)

    with pytest.raises(ConnectionError):
        outer()


@pytest.mark.parametrize(
    ("how", "innermost"),
    [("thread", 9), ("pool", 9), ("thread in copied context", 3), ("pool in copied context", 3)],
)
def test_threads_and_pools(clock: FakeClock, how: str, innermost: int) -> None:
    """Plain threads and pool submissions are not nested; a copied context is."""
    pair = Pair("defer")
    run_elsewhere(how, pair)
    assert innermost == pair.innermost


def test_task_inherits_the_scope(clock: FakeClock) -> None:
    """An asyncio task created inside a retrying call is nested in it."""
    pair = Pair("defer", is_async=True)

    @retry(policy("outer"))
    async def outer() -> None:
        await asyncio.create_task(pair.inner())

    with pytest.raises(ConnectionError):
        asyncio.run(outer())
    assert 3 == pair.innermost


def test_gathered_tasks_inherit_the_scope(clock: FakeClock) -> None:
    """Several tasks gathered inside a retrying call are each nested (one attempt each)."""
    pair = Pair("defer", is_async=True)

    @retry(policy("outer"))
    async def outer() -> None:
        await asyncio.gather(pair.inner(), pair.inner())

    with pytest.raises(ConnectionError):
        asyncio.run(outer())
    assert 6 == pair.innermost


def test_to_thread_inherits_the_scope(clock: FakeClock) -> None:
    """asyncio.to_thread copies the context: the sync inner call is nested."""
    pair = Pair("defer")

    @retry(policy("outer"))
    async def outer() -> None:
        await asyncio.to_thread(pair.inner)

    with pytest.raises(ConnectionError):
        asyncio.run(outer())
    assert 3 == pair.innermost


def test_task_created_outside_is_not_nested(clock: FakeClock) -> None:
    """A task created before the retrying call started does not inherit its scope."""
    pair = Pair("defer", is_async=True)

    async def main() -> None:
        started = asyncio.Event()
        go = asyncio.Event()

        async def independent() -> None:
            started.set()
            await go.wait()
            try:
                await pair.inner()
            except ConnectionError:
                pass

        task = asyncio.create_task(independent())
        await started.wait()

        @retry(policy("outer"))
        async def outer() -> None:
            go.set()
            await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.shield(task), WAIT)

        await outer()

    asyncio.run(main())
    assert 3 == pair.innermost


def test_scope_ends_with_the_call(clock: FakeClock, is_async: bool) -> None:
    """After the outer call ends, current() is None and the inner function retries fully."""
    pair = Pair("defer", is_async=is_async)
    pair.run()
    assert None is current()
    pair.innermost = 0
    with pytest.raises(ConnectionError):
        pair.call(pair.inner)
    assert 3 == pair.innermost
