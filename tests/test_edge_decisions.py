"""Decisions the contract left open, pinned (see docs/decisions.md)."""

from __future__ import annotations

import pytest

import retryx
from retryx import AllEndpointsFailed, NestedRetryError
from retryx._failover import MAX_ENDPOINT_BREAKERS as _MAX_ENDPOINT_BREAKERS
from retryx._wrapper import find as _find
from retryx.testing import FakeClock


def test_retry_on_types_judge_a_failover_sweep_by_its_endpoints(clock: FakeClock) -> None:
    """With retry_on=ConnectionError, a sweep where every endpoint refused is retried."""
    calls: list[str] = []

    @retryx.retry(attempts=3, retry_on=ConnectionError, backoff="none")
    @retryx.failover(["a", "b"], breaker=retryx.CircuitBreaker("t", failure_threshold=10))
    def query(*, host: str) -> str:
        calls.append(host)
        if len(calls) < 5:
            raise ConnectionRefusedError(host)
        return host

    assert "a" == query()
    assert ["a", "b", "a", "b", "a"] == calls


def test_retry_on_types_make_unlisted_faults_stop_the_sweep(clock: FakeClock) -> None:
    """A fault retry_on does not list is permanent: the sweep stops and nothing is retried."""
    calls: list[str] = []

    @retryx.retry(attempts=3, retry_on=KeyError, backoff="none")
    @retryx.failover(["a", "b"])
    def query(*, host: str) -> str:
        calls.append(host)
        raise ConnectionRefusedError(host)

    with pytest.raises(ConnectionRefusedError) as info:
        query()
    assert ["a"] == calls
    assert any("reason: permanent" in note for note in info.value.__notes__)


def test_a_predicate_sees_the_sweep_then_its_endpoints(clock: FakeClock) -> None:
    """A predicate that says False for the group is asked about each endpoint's fault."""
    seen: list[type[BaseException]] = []

    def transient(exc: BaseException) -> bool:
        seen.append(type(exc))
        return isinstance(exc, TimeoutError)

    @retryx.retry(attempts=2, retry_on=transient, backoff="none")
    @retryx.failover(["a"])
    def query(*, host: str) -> str:
        raise TimeoutError(host)

    with pytest.raises(AllEndpointsFailed):
        query()
    # The endpoint's breaker (which judges with the policy's retry_on) asks about the
    # endpoint's fault, once for the sweep too (a fault is judged once per call),
    # then retry about the group and, since the predicate says False for it, about
    # its members.
    assert [TimeoutError, AllEndpointsFailed, TimeoutError] == seen[:3]


def test_nested_raise_is_booked_and_reaches_the_inner_fallback(clock: FakeClock) -> None:
    """nested="raise" counts a failed call in the inner stats and its @fallback answers."""

    @retryx.fallback(lambda exc: type(exc).__name__)
    @retryx.retry(attempts=3, nested="raise")
    def inner() -> str:
        raise AssertionError("never called")

    @retryx.retry(attempts=2)
    def outer() -> str:
        return inner()

    assert "NestedRetryError" == outer()
    s = retryx.stats(inner)
    assert (1, 1, 0) == (s.calls, s.failures, s.gave_up)


def test_nested_raise_without_fallback_raises_before_calling(clock: FakeClock) -> None:
    """Without a fallback the NestedRetryError reaches the outer layer, which gives up."""
    called: list[int] = []

    @retryx.retry(attempts=3, nested="raise")
    def inner() -> None:
        called.append(1)

    @retryx.retry(attempts=3)
    def outer() -> None:
        inner()

    with pytest.raises(NestedRetryError):
        outer()
    assert [] == called


def test_endpoint_breakers_are_bounded_for_a_hosts_callable(clock: FakeClock) -> None:
    """A hosts callable naming new endpoints forever keeps a bounded set of breakers."""
    counter = iter(range(10**6))

    @retryx.failover(lambda: [f"h{next(counter)}"])
    def call(*, host: str) -> str:
        return host

    for _ in range(_MAX_ENDPOINT_BREAKERS + 50):
        call()
    runner = _find(call)
    assert runner is not None
    assert _MAX_ENDPOINT_BREAKERS == len(runner.failover._breakers)
    # no forgotten breaker kept:
    assert set(runner.failover._routes) <= set(runner.failover._breakers)
    for endpoint, (breaker, _) in runner.failover._routes.items():
        assert runner.failover._breakers[endpoint] is breaker


def test_an_inner_breaker_refusing_is_no_verdict_for_an_outer_context_manager(
    clock: FakeClock,
) -> None:
    """``with outer: with inner:`` where inner is open leaves outer's counts untouched."""
    outer = retryx.CircuitBreaker("outer", failure_threshold=1)
    inner = retryx.CircuitBreaker("inner", failure_threshold=1)
    inner.open()
    for _ in range(3):
        with pytest.raises(retryx.CircuitOpenError), outer, inner:
            pass
    assert "closed" == outer.state


def test_every_event_class_says_it_lives_in_retryx_events() -> None:
    """Event records show ``retryx.events.X`` in reprs and tracebacks."""
    from retryx import events

    for cls in (
        events.RetryScheduled,
        events.GaveUp,
        events.Succeeded,
        events.CircuitStateChanged,
        events.EndpointFailed,
        events.NestedRetry,
        events.Deferred,
    ):
        assert "retryx.events" == cls.__module__


def test_retry_after_is_read_from_headers_on_an_http_exception_itself() -> None:
    """An exception carrying ``status`` and ``headers`` (aiohttp style) gives its hint."""

    class ClientResponseError(Exception):
        def __init__(self) -> None:
            super().__init__("503")
            self.status = 503
            self.headers = {"Retry-After": "7"}

    fault = retryx.classify(ClientResponseError())
    assert (True, "throttled", 7.0) == (fault.transient, fault.cause, fault.retry_after)


def test_a_retried_builtin_in_a_class_body_does_not_bind() -> None:
    """``retry(len)`` stored on a class stays a plain callable, like ``len`` itself."""

    class Box:
        size = retryx.retry(len)

    assert 3 == Box().size("abc")
    assert 2 == Box.size([1, 2])
