"""Stacked decorators fuse into one pipeline: fallback -> retry -> failover -> breaker -> call."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from retryx import (
    AllEndpointsFailed,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    backoff,
    circuit_breaker,
    describe,
    events,
    failover,
    fallback,
    retry,
    stats,
)
from retryx.testing import FakeClock

THREE = ("retry", "failover", "circuit_breaker")
FOUR = ("fallback", *THREE)
SIX_ORDERS = list(itertools.permutations(THREE))
ALL_ORDERS = list(itertools.permutations(FOUR))


class Script:
    """Endpoint ``a`` always fails; ``b`` fails ``b_failures`` times, then answers."""

    def __init__(self, b_failures: int) -> None:
        self.b_failures = b_failures
        self.log: list[str] = []

    def __call__(self, host: str) -> str:
        self.log.append(host)
        if host == "a" or (host == "b" and self.log.count("b") <= self.b_failures):
            raise ConnectionError(host)
        return f"answer from {host}"


def decorators(script: Script) -> dict[str, Callable[[Any], Any]]:
    """Fresh decorators of each kind (fresh breakers: no state shared between builds)."""
    return {
        "fallback": fallback(lambda exc, **kw: f"fallback after {type(exc).__name__}"),
        "retry": retry(attempts=2, backoff=backoff.fixed(1.0), jitter="none"),
        "failover": failover(["a", "b"], breaker=CircuitBreaker("ep", failure_threshold=2)),
        "circuit_breaker": circuit_breaker(CircuitBreaker("layer", failure_threshold=10)),
    }


def stack(order: tuple[str, ...], func: Any, script: Script) -> Any:
    """Apply the decorators as if written top to bottom in ``order``."""
    made = decorators(script)
    for kind in reversed(order):
        func = made[kind](func)
    return func


def build(order: tuple[str, ...], script: Script) -> Callable[..., Any]:
    def query(*, host: str) -> str:
        return script(host)

    return stack(order, query, script)  # type: ignore[no-any-return]


def build_async(order: tuple[str, ...], script: Script) -> Callable[..., Any]:
    async def query(*, host: str) -> str:
        await asyncio.sleep(0)
        return script(host)

    return stack(order, query, script)  # type: ignore[no-any-return]


def observe(clock: FakeClock, script: Script, run: Callable[[], Any]) -> list[Any]:
    """What one scenario did: results, endpoint calls, waits and events, in order."""
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        results = [run(), run()]
    finally:
        unsubscribe()
    kinds = [
        (type(e).__name__, getattr(e, "endpoint", None), getattr(e, "new", None))
        for e in seen
        if not isinstance(e, events.BreakerCall)  # per breaker call: test_breaker_events.py
    ]
    return [results, script.log, clock.sleeps, kinds]


# --- one order whatever the written order -----------------------------------------------


@pytest.mark.parametrize("order", SIX_ORDERS, ids="-".join)
def test_six_orders_describe_the_same(order: tuple[str, ...]) -> None:
    """All six written orders of retry/failover/circuit_breaker describe the same pipeline."""
    assert list(THREE) == describe(build(order, Script(0)))


@pytest.mark.parametrize("order", ALL_ORDERS, ids="-".join)
def test_with_fallback_describe_the_same(order: tuple[str, ...]) -> None:
    """With fallback too, every written order describes fallback first."""
    assert list(FOUR) == describe(build(order, Script(0)))


def expected_sequence() -> list[Any]:
    # Call 1, attempt 1: a fails, b fails -> AllEndpointsFailed, wait 1 s.
    # Attempt 2: a fails (its breaker opens at 2), b answers.
    # Call 2: a is skipped by its open breaker, b answers.
    return [
        ["answer from b", "answer from b"],
        ["a", "b", "a", "b", "b"],
        [1.0],
        [
            ("EndpointFailed", "a", None),
            ("EndpointFailed", "b", None),
            ("RetryScheduled", None, None),
            ("RetryWaited", None, None),
            ("CircuitStateChanged", None, "open"),
            ("EndpointFailed", "a", None),
            ("Succeeded", None, None),
            ("EndpointFailed", "a", None),
            ("Succeeded", None, None),
        ],
    ]


@pytest.mark.parametrize("order", SIX_ORDERS, ids="-".join)
def test_six_orders_make_the_same_calls(clock: FakeClock, order: tuple[str, ...]) -> None:
    """All six written orders make the same endpoint calls, waits and events."""
    script = Script(b_failures=1)
    query = build(order, script)
    assert expected_sequence() == observe(clock, script, query)


@pytest.mark.parametrize("order", SIX_ORDERS, ids="-".join)
def test_six_orders_make_the_same_calls_async(clock: FakeClock, order: tuple[str, ...]) -> None:
    """All six written orders of a coroutine function make the same calls, waits and events."""
    script = Script(b_failures=1)
    query = build_async(order, script)
    assert inspect.iscoroutinefunction(query)
    assert expected_sequence() == observe(clock, script, lambda: asyncio.run(query()))


def fallback_sequence() -> list[Any]:
    # Both endpoints always fail. Call 1: two sweeps 1 s apart, both endpoint breakers
    # open at their second failure, then the fallback. Call 2: attempt 1 finds both
    # open and waits their 30 s recovery; attempt 2's trials fail; the fallback again.
    failed = "fallback after AllEndpointsFailed"
    return [
        [failed, failed],
        ["a", "b", "a", "b", "a", "b"],
        [1.0, 30.0],
    ]


@pytest.mark.parametrize("order", ALL_ORDERS, ids="-".join)
def test_with_fallback_make_the_same_calls(clock: FakeClock, order: tuple[str, ...]) -> None:
    """All 24 written orders with fallback make the same calls and fall back last."""
    script = Script(b_failures=99)
    query = build(order, script)
    assert fallback_sequence() == observe(clock, script, query)[:3]


@pytest.mark.parametrize("order", ALL_ORDERS[::5], ids="-".join)
def test_with_fallback_make_the_same_calls_async(clock: FakeClock, order: tuple[str, ...]) -> None:
    """Written orders with fallback on a coroutine function fall back the same way."""
    script = Script(b_failures=99)
    query = build_async(order, script)
    assert fallback_sequence() == observe(clock, script, lambda: asyncio.run(query()))[:3]


# --- the same kind twice ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", FOUR)
def test_same_kind_twice_is_an_error(kind: str) -> None:
    """The same decorator kind twice on one callable is a ConfigError at decoration."""
    made, again = decorators(Script(0)), decorators(Script(0))

    def query(*, host: str) -> str:
        return host

    with pytest.raises(ConfigError, match=kind):
        again[kind](made[kind](query))


@pytest.mark.parametrize("kind", FOUR)
def test_same_kind_twice_with_another_between(kind: str) -> None:
    """The same kind twice is an error even with another kind written between them."""
    made, again = decorators(Script(0)), decorators(Script(0))
    other = "retry" if kind != "retry" else "failover"

    def query(*, host: str) -> str:
        return host

    with pytest.raises(ConfigError, match=kind):
        again[kind](made[other](made[kind](query)))


def test_same_kind_twice_around_classmethod() -> None:
    """Two retries, one above and one below @classmethod, are a ConfigError."""
    with pytest.raises(ConfigError, match="retry"):

        class Client:
            @retry
            @classmethod
            @retry
            def query(cls) -> None:
                pass


def test_breaker_instance_twice_is_an_error() -> None:
    """@breaker twice (or with @circuit_breaker) is the same kind twice."""
    breaker = CircuitBreaker("db")
    with pytest.raises(ConfigError):
        breaker(circuit_breaker(name="other")(lambda: None))


def test_describe_undecorated() -> None:
    """describe() of a plain callable is []."""
    assert [] == describe(len)
    assert [] == describe(lambda: None)


# --- methods -----------------------------------------------------------------------------------


def full_stack(func: Any, script: Script) -> Any:
    return stack(("circuit_breaker", "retry", "fallback", "failover"), func, script)


def make_client(script: Script) -> type:
    class Service:
        def method(self, *, host: str) -> str:
            assert isinstance(self, Service)
            return script(host)

        method = full_stack(method, script)  # type: ignore[assignment]

        @classmethod
        def _cm(cls, *, host: str) -> str:
            assert cls is Service
            return script(host)

        above_classmethod = full_stack(_cm, script)
        below_classmethod = classmethod(full_stack(_cm.__func__, script))

        @staticmethod
        def _sm(*, host: str) -> str:
            return script(host)

        above_staticmethod = full_stack(_sm, script)
        below_staticmethod = staticmethod(full_stack(_sm.__func__, script))

        async def _am(self, *, host: str) -> str:
            assert isinstance(self, Service)
            return script(host)

        coroutine_method = full_stack(_am, script)

        @classmethod
        async def _acm(cls, *, host: str) -> str:
            return script(host)

        async_classmethod = full_stack(_acm, script)

    return Service


METHODS = [
    "method",
    "above_classmethod",
    "below_classmethod",
    "above_staticmethod",
    "below_staticmethod",
    "coroutine_method",
    "async_classmethod",
]


@pytest.mark.parametrize("through", ["instance", "class"])
@pytest.mark.parametrize("name", METHODS)
def test_every_method_kind(clock: FakeClock, name: str, through: str) -> None:
    """Every kind of method runs the full pipeline alike, through the class or an instance."""
    script = Script(b_failures=1)
    service = make_client(script)
    owner: Any = service() if through == "instance" else service
    bound = getattr(owner, name)
    if name in ("method", "coroutine_method") and through == "class":
        target = service()
        call: Callable[[], Any] = lambda: bound(target)  # noqa: E731
    else:
        call = bound
    if "coroutine" in name or "async" in name:
        run: Callable[[], Any] = lambda: asyncio.run(call())  # noqa: E731
    else:
        run = call
    assert expected_sequence()[:3] == observe(clock, script, run)[:3]
    assert list(FOUR) == describe(getattr(service, name))
    assert list(FOUR) == describe(getattr(service(), name))


# --- retry x failover x breakers ------------------------------------------------------------------


def test_one_sweep_per_attempt(clock: FakeClock) -> None:
    """A 3-attempt retry over 3 failing endpoints calls each endpoint once per attempt."""
    log: list[str] = []

    @retry(attempts=3, backoff=backoff.fixed(1.0), jitter="none")
    @failover(["a", "b", "c"], breaker=CircuitBreaker("ep", failure_threshold=99))
    def query(*, host: str) -> None:
        log.append(host)
        raise ConnectionError(host)

    with pytest.raises(AllEndpointsFailed):
        query()
    assert ["a", "b", "c"] * 3 == log
    assert [1.0, 1.0] == clock.sleeps
    snapshot = stats(query)
    assert (1, 3, 1) == (snapshot.calls, snapshot.attempts, snapshot.gave_up)


def test_each_endpoint_breaker_sees_each_call(clock: FakeClock) -> None:
    """Failures in successive attempts of one call add up on the endpoint's breaker."""
    log: list[str] = []

    @retry(attempts=4, backoff=backoff.fixed(1.0), jitter="none")
    @failover(["a", "b"], breaker=CircuitBreaker("ep", failure_threshold=3, recovery_timeout=60))
    def query(*, host: str) -> None:
        log.append(host)
        raise ConnectionError(host)

    with pytest.raises(AllEndpointsFailed) as info:
        query()
    # Attempts 1-3 call both endpoints (both open at their third failure); attempt 4
    # finds both open and calls nothing.
    assert ["a", "b"] * 3 == log
    assert [CircuitOpenError, CircuitOpenError] == [type(e) for e in info.value.errors.values()]


def test_breaker_layer_sees_every_endpoint_call(clock: FakeClock) -> None:
    """The @circuit_breaker layer counts the calls to every endpoint."""
    layer = CircuitBreaker("layer", failure_threshold=3)
    log: list[str] = []

    @circuit_breaker(layer)
    @failover(["a", "b", "c", "d"], breaker=CircuitBreaker("ep", failure_threshold=99))
    def query(*, host: str) -> None:
        log.append(host)
        raise ConnectionError(host)

    with pytest.raises(AllEndpointsFailed) as info:
        query()
    assert ["a", "b", "c"] == log
    assert "open" == layer.state
    assert CircuitOpenError is type(info.value.errors["d"])


def test_breaker_layer_rejection_does_not_count_on_the_endpoint(clock: FakeClock) -> None:
    """A call the @circuit_breaker layer rejects is no verdict on the endpoint's breaker."""
    layer = CircuitBreaker("layer")
    layer.open()
    seen: list[Any] = []
    events.subscribe(seen.append)

    @circuit_breaker(layer)
    @failover(["a"], breaker=CircuitBreaker("ep", failure_threshold=1))
    def query(*, host: str) -> str:
        return host

    for _ in range(3):
        with pytest.raises(AllEndpointsFailed):
            query()
    layer.close()
    assert "a" == query()
    assert ["closed"] == [e.new for e in seen if isinstance(e, events.CircuitStateChanged)]


def test_open_breaker_under_retry_is_waited(clock: FakeClock) -> None:
    """CircuitOpenError under retry is waited out when retry_after fits the deadline."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    outcomes = iter([ConnectionError("down"), None])

    @retry(attempts=3, deadline=10, backoff=backoff.fixed(1.0), jitter="none")
    @circuit_breaker(breaker)
    def query() -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return "ok"

    assert "ok" == query()
    # Attempt 1 fails and trips the breaker; the backoff wait is 1 s; attempt 2 is
    # rejected with retry_after 4 s, waited exactly; attempt 3 is the trial.
    assert [1.0, 4.0] == clock.sleeps
    assert "closed" == breaker.state


def test_open_breaker_under_retry_async(clock: FakeClock) -> None:
    """An async call waits out an open breaker's retry_after too."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5)
    outcomes = iter([ConnectionError("down"), None])

    @circuit_breaker(breaker)
    @retry(attempts=3, deadline=10, backoff=backoff.fixed(1.0), jitter="none")
    async def query() -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return "ok"

    assert "ok" == asyncio.run(query())
    assert [1.0, 4.0] == clock.sleeps


@pytest.mark.parametrize(
    "limits", [{"deadline": 10.0}, {"retry_after_max": 20.0}], ids=["deadline", "retry_after_max"]
)
def test_open_breaker_beyond_the_limit_gives_up(clock: FakeClock, limits: dict[str, Any]) -> None:
    """When retry_after crosses the deadline or retry_after_max, retry gives up at once."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=30)
    seen: list[Any] = []
    events.subscribe(seen.append)
    calls: list[int] = []

    @retry(attempts=5, backoff=backoff.fixed(1.0), jitter="none", **limits)
    @circuit_breaker(breaker)
    def query() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(CircuitOpenError) as info:
        query()
    assert [1] == calls
    assert [1.0] == clock.sleeps
    assert "reason: deadline" in "".join(info.value.__notes__)
    gave_up = [e for e in seen if isinstance(e, events.GaveUp)]
    assert [("deadline", 2)] == [(e.reason, e.attempts) for e in gave_up]


def test_breaker_opened_by_hand_gives_up_under_retry(clock: FakeClock) -> None:
    """A breaker opened by hand (retry_after inf) ends a retrying call at once."""
    breaker = CircuitBreaker("db")
    breaker.open()

    @retry(attempts=5)
    @circuit_breaker(breaker)
    def query() -> None:
        raise AssertionError("not called")

    with pytest.raises(CircuitOpenError) as info:
        query()
    assert [] == clock.sleeps
    assert "reason: deadline" in "".join(info.value.__notes__)


def test_all_endpoints_open_under_retry_waits_the_smallest(clock: FakeClock) -> None:
    """When every endpoint is open, retry waits the soonest recovery, then sweeps again."""
    log: list[str] = []

    @retry(attempts=3, deadline=30, backoff=backoff.fixed(1.0), jitter="none")
    @failover(["a", "b"], breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=5))
    def query(*, host: str) -> str:
        log.append(host)
        if host == "b":
            clock.advance(2)  # a slow failure: b opens 2 s after a
        if len(log) <= 2:
            raise ConnectionError(host)
        return host

    assert "a" == query()
    # t=0: a fails and opens, t=2: b fails and opens; backoff 1 s -> t=3: both open,
    # a recovers in 2 s and b in 4 s -> wait 2 s; t=5: a's trial answers.
    assert ["a", "b", "a"] == log
    assert [1.0, 2.0] == clock.sleeps


def test_attempt_timeout_counts_on_the_breaker(clock: FakeClock) -> None:
    """A call cut by attempt_timeout is a transient failure the breaker counts."""
    breaker = CircuitBreaker("db", failure_threshold=2)

    @retry(attempts=2, attempt_timeout=0.02, backoff="none")
    @circuit_breaker(breaker)
    async def query() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        asyncio.run(query())
    assert "open" == breaker.state
