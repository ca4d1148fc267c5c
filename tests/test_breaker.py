"""CircuitBreaker: opening rules, open and half-open, settings, decorator and context forms."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import retryx
from retryx import CircuitBreaker, CircuitOpenError, ConfigError, Permanent, circuit_breaker, events
from retryx.testing import FakeClock


@pytest.fixture
def recorded() -> Iterator[list[Any]]:
    """Every event emitted during the test."""
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    yield seen
    unsubscribe()


def ok() -> str:
    return "ok"


def fail(exc: BaseException | None = None) -> None:
    raise exc if exc is not None else ConnectionError("down")


def call(breaker: CircuitBreaker, func: Callable[[], Any] = ok) -> Any:
    """One call through the breaker's protocol, as the pipeline makes it."""
    token = breaker._acquire()
    try:
        result = func()
    except Exception as exc:
        breaker._on_failure(token, exc)
        raise
    breaker._on_success(token)
    return result


def fail_times(
    breaker: CircuitBreaker, n: int, exc_type: type[Exception] = ConnectionError
) -> None:
    for _ in range(n):
        with pytest.raises(exc_type):
            call(breaker, lambda: fail(exc_type("down")))


# --- opening rules --------------------------------------------------------------------


def test_consecutive_failures_open_it(clock: FakeClock) -> None:
    """failure_threshold consecutive transient failures open the breaker."""
    breaker = CircuitBreaker("db", failure_threshold=3)
    fail_times(breaker, 2)
    assert "closed" == breaker.state
    fail_times(breaker, 1)
    assert "open" == breaker.state


def test_a_success_ends_the_run_of_failures(clock: FakeClock) -> None:
    """A success between failures restarts the consecutive count."""
    breaker = CircuitBreaker("db", failure_threshold=3)
    fail_times(breaker, 2)
    call(breaker)
    fail_times(breaker, 2)
    assert "closed" == breaker.state


def test_failure_rate_opens_at_the_ratio(clock: FakeClock) -> None:
    """With failure_rate, the breaker opens when the window's failure ratio reaches it."""
    breaker = CircuitBreaker("db", failure_rate=0.5, window=4, minimum_calls=4)
    call(breaker)
    call(breaker)
    fail_times(breaker, 1)
    assert "closed" == breaker.state
    fail_times(breaker, 1)
    assert "open" == breaker.state


def test_failure_rate_waits_for_minimum_calls(clock: FakeClock) -> None:
    """Below minimum_calls the failure ratio does not open the breaker, however high."""
    breaker = CircuitBreaker("db", failure_rate=0.5, window=10, minimum_calls=5)
    fail_times(breaker, 4)
    assert "closed" == breaker.state
    fail_times(breaker, 1)
    assert "open" == breaker.state


def test_minimum_calls_counts_calls_inside_the_window(clock: FakeClock) -> None:
    """Only the last `window` calls count, both for the ratio and for minimum_calls."""
    breaker = CircuitBreaker("db", failure_rate=0.6, window=5, minimum_calls=5)
    fail_times(breaker, 2)
    for _ in range(5):
        call(breaker)
    # The two early failures slid out of the window: 2 of the last 5 fail (0.4 < 0.6).
    fail_times(breaker, 2)
    assert "closed" == breaker.state
    fail_times(breaker, 1)
    assert "open" == breaker.state


def test_failure_rate_ignores_failure_threshold(clock: FakeClock) -> None:
    """With failure_rate set, consecutive failures below minimum_calls do not open it."""
    breaker = CircuitBreaker("db", failure_threshold=1, failure_rate=1.0, window=3, minimum_calls=3)
    fail_times(breaker, 2)
    assert "closed" == breaker.state


def test_permanent_faults_do_not_trip_it(clock: FakeClock) -> None:
    """Permanent faults pass through without counting as failures."""
    breaker = CircuitBreaker("db", failure_threshold=2)
    for _ in range(5):
        fail_times(breaker, 1, ValueError)
    assert "closed" == breaker.state


def test_permanent_fault_ends_the_run_like_a_success(clock: FakeClock) -> None:
    """A permanent fault counts as a success: it breaks a run of consecutive failures."""
    breaker = CircuitBreaker("db", failure_threshold=3)
    fail_times(breaker, 2)
    fail_times(breaker, 1, ValueError)
    fail_times(breaker, 2)
    assert "closed" == breaker.state


def test_permanent_fault_counts_as_success_in_the_window(clock: FakeClock) -> None:
    """In the failure-rate window a permanent fault lowers the ratio like a success."""
    breaker = CircuitBreaker("db", failure_rate=0.5, window=4, minimum_calls=4)
    fail_times(breaker, 1, ValueError)
    fail_times(breaker, 1, ValueError)
    fail_times(breaker, 1, ValueError)
    fail_times(breaker, 1)
    assert "closed" == breaker.state


def test_counts_classifier_decides_what_counts(clock: FakeClock) -> None:
    """counts= given exception types counts exactly those as failures."""
    breaker = CircuitBreaker("db", failure_threshold=1, counts=KeyError)
    fail_times(breaker, 2, ConnectionError)
    assert "closed" == breaker.state
    fail_times(breaker, 1, KeyError)
    assert "open" == breaker.state


def test_counts_predicate(clock: FakeClock) -> None:
    """counts= given a predicate counts the faults it returns True for."""
    breaker = CircuitBreaker("db", failure_threshold=1, counts=lambda e: isinstance(e, KeyError))
    fail_times(breaker, 1, ConnectionError)
    assert "closed" == breaker.state
    fail_times(breaker, 1, KeyError)
    assert "open" == breaker.state


def test_base_exceptions_give_no_verdict(clock: FakeClock) -> None:
    """A cancelled call neither trips nor closes the breaker (context manager form)."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt), breaker:
            raise KeyboardInterrupt
    assert "closed" == breaker.state


# --- open -----------------------------------------------------------------------------


def test_the_trip_call_fails_with_its_own_exception(clock: FakeClock) -> None:
    """The call that trips the breaker raises its own fault; the next one CircuitOpenError."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    fn = retryx.circuit_breaker(breaker)(lambda: fail(ConnectionRefusedError("no")))
    with pytest.raises(ConnectionRefusedError):
        fn()
    with pytest.raises(CircuitOpenError):
        fn()


def test_open_rejects_without_running(clock: FakeClock) -> None:
    """While open, calls are rejected with CircuitOpenError and the callable does not run."""
    runs: list[int] = []
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=10)
    fail_times(breaker, 1)
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as info:
        call(breaker, lambda: runs.append(1))
    assert [] == runs
    assert "db" == info.value.breaker
    assert 6.0 == pytest.approx(info.value.retry_after)
    assert 6.0 == pytest.approx(breaker.retry_after)


def test_circuit_open_error_is_transient_with_its_wait(clock: FakeClock) -> None:
    """classify() calls CircuitOpenError transient, cause circuit_open, hint retry_after."""
    fault = retryx.classify(CircuitOpenError("db", 2.5))
    assert (True, "circuit_open", 2.5) == (fault.transient, fault.cause, fault.retry_after)


def test_retry_after_decreases_with_the_clock(clock: FakeClock) -> None:
    """retry_after is the time left until half-open, read from the clock."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=30)
    fail_times(breaker, 1)
    for waited in (0, 10, 29):
        clock.advance(waited - (30 - breaker.retry_after))
        assert 30.0 - waited == pytest.approx(breaker.retry_after)
    assert 0.0 == CircuitBreaker("other").retry_after


# --- half-open ------------------------------------------------------------------------


def test_half_open_after_recovery_timeout_without_any_call(clock: FakeClock) -> None:
    """.state reports half_open once recovery_timeout has passed, before any call."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(4.999)
    assert "open" == breaker.state
    clock.advance(0.001)
    assert "half_open" == breaker.state
    assert 0.0 == breaker.retry_after


def test_zero_recovery_timeout_is_half_open_at_once(clock: FakeClock) -> None:
    """recovery_timeout=0 lets the next call through as a trial."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=0)
    fail_times(breaker, 1)
    assert "half_open" == breaker.state
    assert "ok" == call(breaker)
    assert "closed" == breaker.state


def test_trial_success_closes_it(clock: FakeClock) -> None:
    """One trial success closes a breaker with the default success_threshold."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(5)
    assert "ok" == call(breaker)
    assert "closed" == breaker.state


def test_success_threshold(clock: FakeClock) -> None:
    """success_threshold trial successes are needed to close it."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5, success_threshold=3)
    fail_times(breaker, 1)
    clock.advance(5)
    call(breaker)
    call(breaker)
    assert "half_open" == breaker.state
    call(breaker)
    assert "closed" == breaker.state


def test_trial_failure_reopens_it(clock: FakeClock) -> None:
    """A failed trial re-opens the breaker for a fresh recovery_timeout."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5, success_threshold=2)
    fail_times(breaker, 1)
    clock.advance(5)
    call(breaker)
    fail_times(breaker, 1)
    assert "open" == breaker.state
    assert 5.0 == breaker.retry_after


def test_permanent_fault_in_half_open_counts_as_success(clock: FakeClock) -> None:
    """A permanent fault during a trial means the dependency answered: it closes the breaker."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(5)
    fail_times(breaker, 1, Permanent)
    assert "closed" == breaker.state


def test_half_open_max_calls_limits_concurrent_trials(clock: FakeClock) -> None:
    """At most half_open_max_calls trials are in flight; the next gets retry_after 0.0."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    fail_times(breaker, 1)
    clock.advance(5)
    first = breaker._acquire()
    second = breaker._acquire()
    with pytest.raises(CircuitOpenError) as info:
        breaker._acquire()
    assert 0.0 == info.value.retry_after
    assert "half_open" == breaker.state
    breaker._on_success(first)
    breaker._release(second)
    assert "closed" == breaker.state


def test_released_trial_slot_is_reusable(clock: FakeClock) -> None:
    """A trial that ends without a verdict gives its slot back."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(5)
    breaker._release(breaker._acquire())
    assert "half_open" == breaker.state
    assert "ok" == call(breaker)


# --- manual control --------------------------------------------------------------------


def test_open_by_hand_isolates_it(clock: FakeClock) -> None:
    """.open() rejects with retry_after inf and never recovers by itself."""
    breaker = CircuitBreaker("db", recovery_timeout=1)
    breaker.open()
    clock.advance(1e6)
    assert "open" == breaker.state
    assert math.inf == breaker.retry_after
    with pytest.raises(CircuitOpenError) as info:
        call(breaker)
    assert math.inf == info.value.retry_after


@pytest.mark.parametrize("method", ["close", "reset"])
def test_close_or_reset_ends_isolation(clock: FakeClock, method: str) -> None:
    """.close() and .reset() end a manual .open()."""
    breaker = CircuitBreaker("db")
    breaker.open()
    getattr(breaker, method)()
    assert "closed" == breaker.state
    assert "ok" == call(breaker)


@pytest.mark.parametrize("method", ["close", "reset"])
def test_close_or_reset_clears_counts(clock: FakeClock, method: str) -> None:
    """.close() and .reset() forget the failures counted so far."""
    breaker = CircuitBreaker("db", failure_threshold=3)
    fail_times(breaker, 2)
    getattr(breaker, method)()
    fail_times(breaker, 2)
    assert "closed" == breaker.state


@pytest.mark.parametrize("method", ["close", "reset"])
def test_close_or_reset_clears_the_window(clock: FakeClock, method: str) -> None:
    """.close() and .reset() empty the failure-rate window."""
    breaker = CircuitBreaker("db", failure_rate=1.0, window=3, minimum_calls=3)
    fail_times(breaker, 2)
    getattr(breaker, method)()
    fail_times(breaker, 2)
    assert "closed" == breaker.state


def test_close_from_open(clock: FakeClock) -> None:
    """.close() on a breaker opened by failures lets calls through at once."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    fail_times(breaker, 1)
    breaker.close()
    assert ("closed", 0.0) == (breaker.state, breaker.retry_after)


def test_repr_shows_name_and_state(clock: FakeClock) -> None:
    """The repr names the breaker and its state."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    fail_times(breaker, 1)
    assert "'db'" in repr(breaker)
    assert "state=open" in repr(breaker)


def test_identity_equality() -> None:
    """Two breakers with the same name and settings are different objects."""
    assert CircuitBreaker("db") != CircuitBreaker("db")


def test_same_name_does_not_share_state(clock: FakeClock) -> None:
    """Two breakers with the same name but no shared store keep separate state."""
    first, second = CircuitBreaker("db", failure_threshold=1), CircuitBreaker("db")
    fail_times(first, 1)
    assert ("open", "closed") == (first.state, second.state)


def test_copy_keeps_settings_not_state(clock: FakeClock) -> None:
    """copy(name) makes a fresh closed breaker with the same settings."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=7, half_open_max_calls=2)
    fail_times(breaker, 1)
    twin = breaker.copy("db2")
    assert ("db2", "closed", 1, 7.0, 2) == (
        twin.name,
        twin.state,
        twin.failure_threshold,
        twin.recovery_timeout,
        twin.half_open_max_calls,
    )


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 1.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_rate": 0}, "failure_rate"),
        ({"failure_rate": 1.01}, "failure_rate"),
        ({"failure_rate": -0.1}, "failure_rate"),
        ({"failure_rate": "half"}, "failure_rate"),
        ({"failure_rate": math.nan}, "failure_rate"),
        ({"window": 0}, "window"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"failure_rate": 0.5, "window": 5, "minimum_calls": 6}, "window"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"recovery_timeout": math.inf}, "recovery_timeout"),
        ({"recovery_timeout": math.nan}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"counts": 42}, "counts"),
        ({"store": object()}, "store"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, Any], named: str) -> None:
    """Every bad setting raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=named):
        CircuitBreaker("db", **settings)


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_name(name: Any) -> None:
    """A breaker needs a non-empty string name."""
    with pytest.raises(ConfigError, match="name"):
        CircuitBreaker(name)


def test_window_below_minimum_calls_is_fine_without_failure_rate() -> None:
    """Without failure_rate, window < minimum_calls is unused and not checked."""
    assert 5 == CircuitBreaker("db", window=5, minimum_calls=6).window


def test_decorator_settings_are_checked_at_decoration() -> None:
    """@circuit_breaker(**settings) rejects bad or unknown settings before any call."""
    with pytest.raises(ConfigError, match="failure_threshold"):
        circuit_breaker(failure_threshold=0)
    with pytest.raises(ConfigError, match="nonsense"):
        circuit_breaker(nonsense=1)
    with pytest.raises(ConfigError, match="recovery_timeout"):
        circuit_breaker(name="db", recovery_timeout=-1)


def test_breaker_instance_takes_no_settings() -> None:
    """@circuit_breaker(breaker, **settings) is ambiguous and rejected."""
    with pytest.raises(ConfigError):
        circuit_breaker(CircuitBreaker("db"), failure_threshold=2)


# --- decorator forms ------------------------------------------------------------------------


def tripping(decorate: Callable[[Any], Any]) -> Callable[[], Any]:
    """A function that always fails transiently, decorated by ``decorate``."""

    def down() -> None:
        raise ConnectionError("down")

    return decorate(down)


def trip(fn: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            fn()


def test_breaker_as_decorator(clock: FakeClock) -> None:
    """@breaker guards the function with that breaker."""
    breaker = CircuitBreaker("db", failure_threshold=2)
    fn = tripping(breaker)
    trip(fn, 2)
    with pytest.raises(CircuitOpenError):
        fn()
    assert ["circuit_breaker"] == retryx.describe(fn)


def test_circuit_breaker_with_a_breaker(clock: FakeClock) -> None:
    """@circuit_breaker(breaker) guards the function with that breaker; two functions share it."""
    breaker = CircuitBreaker("db", failure_threshold=2)
    first = tripping(circuit_breaker(breaker))
    second = circuit_breaker(breaker)(ok)
    trip(first, 2)
    with pytest.raises(CircuitOpenError):
        second()


def test_circuit_breaker_with_settings(clock: FakeClock) -> None:
    """@circuit_breaker(name=..., **settings) creates a breaker with those settings."""
    fn = tripping(circuit_breaker(name="made", failure_threshold=1, recovery_timeout=3))
    trip(fn, 1)
    with pytest.raises(CircuitOpenError) as info:
        fn()
    assert ("made", 3.0) == (info.value.breaker, info.value.retry_after)


def test_circuit_breaker_with_settings_and_no_name(clock: FakeClock) -> None:
    """@circuit_breaker(**settings) names the breaker after the function."""
    fn = tripping(circuit_breaker(failure_threshold=1))
    trip(fn, 1)
    with pytest.raises(CircuitOpenError) as info:
        fn()
    assert info.value.breaker.endswith("down")


def test_bare_circuit_breaker(clock: FakeClock) -> None:
    """Bare @circuit_breaker creates a default breaker (5 failures) named after the function."""

    @circuit_breaker
    def flaky() -> None:
        raise ConnectionError("down")

    trip(flaky, 5)
    with pytest.raises(CircuitOpenError) as info:
        flaky()
    assert info.value.breaker.endswith("flaky")


def test_named_breaker_is_shared_by_name(clock: FakeClock) -> None:
    """@circuit_breaker("name") is one process-wide breaker: two functions share its state."""
    first = tripping(circuit_breaker("test-breaker-shared"))
    second = circuit_breaker("test-breaker-shared")(ok)
    trip(first, 5)  # the defaults: 5 consecutive failures
    with pytest.raises(CircuitOpenError) as info:
        second()
    assert "test-breaker-shared" == info.value.breaker


def test_empty_parentheses(clock: FakeClock) -> None:
    """@circuit_breaker() behaves like the bare form."""
    fn = tripping(circuit_breaker())
    trip(fn, 5)
    with pytest.raises(CircuitOpenError):
        fn()


def test_bare_breakers_are_separate(clock: FakeClock) -> None:
    """Each bare @circuit_breaker gets its own breaker."""
    first = tripping(circuit_breaker)
    second = tripping(circuit_breaker)
    trip(first, 5)
    trip(second, 1)


def test_decorated_function_passes_arguments_and_results(clock: FakeClock) -> None:
    """Arguments go through and the result comes back."""

    @CircuitBreaker("db")
    def add(a: int, b: int = 0) -> int:
        return a + b

    assert 5 == add(2, b=3)


def test_decorated_permanent_fault_is_raised_as_is(clock: FakeClock) -> None:
    """A permanent fault is raised unchanged and does not trip the breaker."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    error = ValueError("bad")

    @breaker
    def bad() -> None:
        raise error

    for _ in range(3):
        with pytest.raises(ValueError) as info:
            bad()
        assert error is info.value
    assert "closed" == breaker.state


# --- context managers ------------------------------------------------------------------------


def test_sync_context_manager(clock: FakeClock) -> None:
    """`with breaker:` counts failures, rejects while open, and closes after a trial."""
    breaker = CircuitBreaker("db", failure_threshold=2, recovery_timeout=5)
    for _ in range(2):
        with pytest.raises(ConnectionError), breaker:
            raise ConnectionError("down")
    runs: list[int] = []
    with pytest.raises(CircuitOpenError), breaker:
        runs.append(1)
    assert [] == runs
    clock.advance(5)
    with breaker as entered:
        assert breaker is entered
    assert "closed" == breaker.state


def test_nested_context_managers_keep_their_tokens(clock: FakeClock) -> None:
    """Two breakers nested as context managers each get their own verdict."""
    outer = CircuitBreaker("outer", failure_threshold=1, recovery_timeout=5)
    inner = CircuitBreaker("inner", failure_threshold=1, recovery_timeout=5)
    fail_times(outer, 1)
    fail_times(inner, 1)
    clock.advance(5)

    def both() -> None:
        with outer:
            with inner:
                pass
            raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        both()
    assert ("open", "closed") == (outer.state, inner.state)


def test_async_context_manager(clock: FakeClock) -> None:
    """`async with breaker:` behaves like the sync form."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)

    async def main() -> list[str]:
        states = []
        with pytest.raises(ConnectionError):
            async with breaker:
                raise ConnectionError("down")
        states.append(breaker.state)
        with pytest.raises(CircuitOpenError):
            async with breaker:
                pass
        clock.advance(5)
        async with breaker:
            states.append(breaker.state)
        states.append(breaker.state)
        return states

    assert ["open", "half_open", "closed"] == asyncio.run(main())


def test_async_context_manager_in_concurrent_tasks(clock: FakeClock) -> None:
    """Concurrent trials under `async with`: the failed one re-opens, the late success is stale."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    fail_times(breaker, 1)
    clock.advance(5)

    async def trial(fails: bool, gate: asyncio.Event) -> None:
        async with breaker:
            await gate.wait()
            if fails:
                raise ConnectionError("down")

    async def main() -> list[Any]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(trial(True, gate)), asyncio.create_task(trial(False, gate))]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert [ConnectionError, None] == [r if r is None else type(r) for r in results]
    assert "open" == breaker.state


# --- coroutine functions and methods -----------------------------------------------------------


def test_coroutine_function(clock: FakeClock) -> None:
    """A decorated coroutine function stays one, and its failures count."""
    breaker = CircuitBreaker("db", failure_threshold=2)

    @breaker
    async def fetch(fail_it: bool) -> str:
        await asyncio.sleep(0)
        if fail_it:
            raise ConnectionError("down")
        return "ok"

    async def main() -> list[Any]:
        out: list[Any] = [await fetch(False)]
        for _ in range(2):
            try:
                await fetch(True)
            except ConnectionError as exc:
                out.append(type(exc))
        try:
            await fetch(False)
        except CircuitOpenError as exc:
            out.append(type(exc))
        return out

    import inspect

    assert inspect.iscoroutinefunction(fetch)
    assert ["ok", ConnectionError, ConnectionError, CircuitOpenError] == asyncio.run(main())


class Service:
    """A class with every kind of method, each guarded by one shared breaker."""

    breaker = CircuitBreaker("svc", failure_threshold=2)

    def __init__(self) -> None:
        self.up = False

    @breaker
    def method(self, x: int) -> int:
        if not self.up:
            raise ConnectionError("down")
        return x

    @circuit_breaker(breaker)
    @classmethod
    def above_classmethod(cls, x: int) -> int:
        raise ConnectionError("down")

    @classmethod
    @circuit_breaker(breaker)
    def below_classmethod(cls, x: int) -> int:
        raise ConnectionError("down")

    @circuit_breaker(breaker)
    @staticmethod
    def above_staticmethod(x: int) -> int:
        raise ConnectionError("down")

    @staticmethod
    @circuit_breaker(breaker)
    def below_staticmethod(x: int) -> int:
        raise ConnectionError("down")

    @breaker
    async def coroutine_method(self, x: int) -> int:
        raise ConnectionError("down")


def method_calls() -> list[tuple[str, Callable[[], Any]]]:
    service = Service()
    return [
        ("method", lambda: service.method(1)),
        ("unbound method", lambda: Service.method(service, 1)),
        ("above classmethod", lambda: Service.above_classmethod(1)),
        ("above classmethod via instance", lambda: service.above_classmethod(1)),
        ("below classmethod", lambda: Service.below_classmethod(1)),
        ("above staticmethod", lambda: Service.above_staticmethod(1)),
        ("below staticmethod", lambda: service.below_staticmethod(1)),
        ("coroutine method", lambda: asyncio.run(service.coroutine_method(1))),
    ]


@pytest.mark.parametrize("index", range(len(method_calls())), ids=[n for n, _ in method_calls()])
def test_every_method_kind(clock: FakeClock, index: int) -> None:
    """Every kind of method counts its failures and is rejected once the breaker opens."""
    Service.breaker.reset()
    _, invoke = method_calls()[index]
    for _ in range(2):
        with pytest.raises(ConnectionError):
            invoke()
    with pytest.raises(CircuitOpenError):
        invoke()
    assert ["circuit_breaker"] == retryx.describe(Service.method)
    Service.breaker.reset()


def test_method_gets_its_instance(clock: FakeClock) -> None:
    """A guarded instance method receives its own instance."""
    Service.breaker.reset()
    service = Service()
    service.up = True
    assert 7 == service.method(7)
    Service.breaker.reset()


# --- events and logging --------------------------------------------------------------------------


def test_state_change_events(clock: FakeClock, recorded: list[Any]) -> None:
    """Every transition emits CircuitStateChanged with the breaker's name."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(5)
    call(breaker)
    breaker.open()
    breaker.reset()
    changes = [
        (e.breaker, e.old, e.new) for e in recorded if isinstance(e, events.CircuitStateChanged)
    ]
    assert [
        ("db", "closed", "open"),
        ("db", "open", "half_open"),
        ("db", "half_open", "closed"),
        ("db", "closed", "open"),
        ("db", "open", "closed"),
    ] == changes


def test_no_event_without_a_change(clock: FakeClock, recorded: list[Any]) -> None:
    """Closing a closed breaker emits nothing."""
    CircuitBreaker("db").close()
    assert [] == recorded


def test_logging_levels(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Opening logs at WARNING, closing at INFO, with the breaker's name under record.retryx."""
    caplog.set_level(logging.DEBUG, logger="retryx")
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    fail_times(breaker, 1)
    clock.advance(5)
    call(breaker)
    records = [r for r in caplog.records if r.name == "retryx"]
    assert [
        (logging.WARNING, "circuit breaker db opened (was closed)"),
        (logging.INFO, "circuit breaker db is half_open (was open)"),
        (logging.INFO, "circuit breaker db is closed (was half_open)"),
    ] == [(r.levelno, r.getMessage()) for r in records]
    assert [{"breaker": "db"}] * 3 == [r.retryx for r in records]  # type: ignore[attr-defined]
