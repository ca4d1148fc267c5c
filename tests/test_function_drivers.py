"""Decorated plain functions run through drivers of their own (one per pipeline), with
the closed breaker's bookkeeping, result checks and stats inlined: each behaviour here
is checked through a decorated ``def`` and ``async def`` alike.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import retryx
from retryx import CircuitBreaker, CircuitOpenError, RetryBudget, circuit_breaker, fallback, retry
from retryx.testing import FakeClock


@pytest.fixture(params=["sync", "async"])
def wrap(request: pytest.FixtureRequest) -> Callable[..., Callable[..., Any]]:
    """``wrap(decorator, body)``: ``body`` decorated as a ``def`` or an ``async def``,
    returned as a plain callable (the async one runs on a fresh event loop each call).
    """

    def build(decorator: Callable[[Any], Any], body: Callable[..., Any]) -> Callable[..., Any]:
        if request.param == "sync":

            def target(*args: Any, **kwargs: Any) -> Any:
                return body(*args, **kwargs)

            decorated: Callable[..., Any] = decorator(target)
            return decorated

        async def atarget(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        adecorated = decorator(atarget)
        return lambda *args, **kwargs: asyncio.run(adecorated(*args, **kwargs))

    return build


def outcome(value: Any) -> Any:
    if isinstance(value, BaseException):
        raise value
    return value


def run(call: Callable[..., Any], *outcomes: Any) -> list[str]:
    """Call once per outcome; what each call did: ``ok``, the exception's name."""
    seen = []
    for value in outcomes:
        try:
            call(value)
            seen.append("ok")
        except Exception as exc:
            seen.append(type(exc).__name__)
    return seen


def test_a_success_ends_the_run_of_failures(clock: FakeClock, wrap: Any) -> None:
    """Through a decorated function, a success resets the consecutive-failure count."""
    breaker = CircuitBreaker("drivers-run", failure_threshold=3)
    call = wrap(circuit_breaker(breaker), outcome)
    down = ConnectionError("down")
    assert ["ConnectionError"] * 2 + ["ok"] == run(call, down, down, "ok")
    assert "closed" == breaker.state
    assert ["ConnectionError"] * 3 + ["CircuitOpenError"] == run(call, down, down, down, "ok")
    assert "open" == breaker.state


def test_a_failure_rate_window_counts_successes(clock: FakeClock, wrap: Any) -> None:
    """Through a decorated function, successes fill the failure-rate window too."""
    breaker = CircuitBreaker("drivers-rate", failure_rate=0.5, window=4, minimum_calls=4)
    call = wrap(circuit_breaker(breaker), outcome)
    down = ConnectionError("down")
    run(call, "ok", "ok", "ok", down)
    assert "closed" == breaker.state  # 1 failure in 4 calls
    run(call, down)
    assert "open" == breaker.state  # 2 in the last 4


def test_an_inner_refusal_is_no_verdict(clock: FakeClock, wrap: Any) -> None:
    """A ``CircuitOpenError`` raised by the function (an inner breaker refusing) does not
    count against the decorated function's own breaker.
    """
    inner = CircuitBreaker("drivers-inner")
    inner.open()
    outer = CircuitBreaker("drivers-outer", failure_threshold=2)

    def body() -> None:
        with inner:
            pass

    call = wrap(circuit_breaker(outer), body)
    for _ in range(3):
        with pytest.raises(CircuitOpenError) as info:
            call()
        assert "drivers-inner" == info.value.breaker
    assert "closed" == outer.state


def test_a_budget_is_refilled_by_first_attempt_successes(clock: FakeClock, wrap: Any) -> None:
    """Each first-attempt success gives ``token_ratio`` back to the policy's budget."""
    budget = RetryBudget(max_tokens=10, token_ratio=0.5)
    call = wrap(retry(attempts=2, backoff="none", budget=budget), outcome)
    run(call, ConnectionError("a"), ConnectionError("b"))  # 2 calls x 2 failed attempts
    assert 6.0 == budget.tokens
    run(call, "ok", "ok", "ok")
    assert 7.5 == budget.tokens


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stats_stay_exact_past_the_fold(clock: FakeClock, is_async: bool) -> None:
    """Hundreds of first-attempt successes, more than one batch, are all counted."""
    calls = 600
    decorated: Any
    if is_async:

        @retry(attempts=2, backoff="none")
        async def echo_async(n: int) -> int:
            return n

        async def many() -> None:
            for n in range(calls):
                await echo_async(n)

        asyncio.run(many())
        decorated = echo_async
    else:

        @retry(attempts=2, backoff="none")
        def echo(n: int) -> int:
            return n

        for n in range(calls):
            echo(n)
        decorated = echo
    counters = retryx.stats(decorated)
    assert (calls, calls, calls) == (counters.calls, counters.successes, counters.attempts)


def test_an_inner_refusal_under_failover_is_no_verdict_on_the_endpoints(
    clock: FakeClock, wrap: Any
) -> None:
    """Under failover, an inner breaker refusing inside the call moves the sweep on
    without counting against the endpoints' breakers or the @circuit_breaker layer."""
    inner = CircuitBreaker("drivers-sweep-inner")
    inner.open()
    layer = CircuitBreaker("drivers-sweep-layer", failure_threshold=1)
    template = CircuitBreaker("drivers-sweep", failure_threshold=1)

    def body(*, host: str) -> None:
        with inner:
            pass

    call = wrap(
        lambda f: retryx.failover(["a", "b"], breaker=template)(circuit_breaker(layer)(f)), body
    )
    for _ in range(2):  # threshold 1: a counted failure would open an endpoint's breaker
        with pytest.raises(retryx.AllEndpointsFailed) as info:
            call()
        errors = info.value.errors
        assert ["a", "b"] == list(errors)
        # Each endpoint was called and refused by the inner breaker, not by its own.
        assert {"drivers-sweep-inner"} == {e.breaker for e in errors.values()}  # type: ignore[attr-defined]
    assert "closed" == layer.state


# --- the exact-parameters form ---------------------------------------------------------


def test_every_parameter_kind_passes_through(clock: FakeClock) -> None:
    """Positional-only, positional-or-keyword (by position or keyword), defaults and
    keyword-only parameters reach the function as given."""
    shared: list[int] = []

    @retry(attempts=2, backoff="none")
    def kinds(a: int, /, b: int, c: int = 3, *, d: int, e: list[int] = shared) -> tuple[Any, ...]:
        return (a, b, c, d, e)

    assert (1, 2, 3, 4, shared) == kinds(1, 2, d=4)
    assert (1, 2, 5, 4, shared) == kinds(1, b=2, c=5, d=4)
    assert kinds(1, 2, d=4)[4] is shared  # the very default object
    assert "a" in kinds.__code__.co_varnames  # the exact form was taken
    assert kinds.__wrapped__.__defaults__ == kinds.__defaults__  # type: ignore[attr-defined]


def test_a_wrong_call_fails_like_the_function_itself(clock: FakeClock) -> None:
    """Calling with wrong arguments raises the function's own ``TypeError`` before any
    attempt: nothing is retried, logged or counted."""

    @retry(attempts=3, backoff="none")
    def fetch(user_id: int, *, timeout: float = 5.0) -> int:
        return user_id

    with pytest.raises(TypeError, match=r"fetch\(\) missing 1 required positional argument"):
        fetch()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"fetch\(\) got an unexpected keyword argument 'retries'"):
        fetch(1, retries=2)  # type: ignore[call-arg]
    assert 0 == retryx.stats(fetch).calls


@pytest.mark.parametrize(
    "name", ["policy", "result", "head", "wrapped", "args", "guard", "exc", "_rx_head", "_rx_"]
)
def test_any_parameter_name_gets_the_exact_form(clock: FakeClock, name: str) -> None:
    """A parameter named like one of the driver's own variables (or starting with its
    prefix) still gets the exact form: the driver's names carry a prefix no parameter
    of the function starts with. Exercised on the happy path, a retry and the breaker's
    closed path."""
    namespace: dict[str, Any] = {"calls": []}
    exec(
        f"def echo({name}, *, other=1):\n"
        "    calls.append(other)\n"
        "    if len(calls) == 1:\n"
        "        raise ConnectionError('down')\n"
        f"    return ({name}, other)",
        namespace,
    )
    breaker = retryx.CircuitBreaker("echo")
    echo = retry(attempts=2, backoff="none")(circuit_breaker(breaker)(namespace["echo"]))
    assert name in echo.__code__.co_varnames  # the exact form was taken
    assert ("x", 1) == echo("x")
    assert ("x", 2) == echo(**{name: "x", "other": 2})
    assert [1, 1, 2] == namespace["calls"]
    assert 0 == breaker.failure_count  # the success after the failure ended the run


def test_star_args_functions_keep_the_general_form(clock: FakeClock) -> None:
    """``*args``/``**kwargs`` are passed through as they came."""

    @retry(attempts=2, backoff="none")
    def gather(*parts: str, **labels: str) -> tuple[Any, ...]:
        return (parts, labels)

    assert (("a", "b"), {"x": "1"}) == gather("a", "b", x="1")


def test_a_fallback_handler_gets_the_arguments_as_passed(clock: FakeClock) -> None:
    """Under ``@fallback`` the handler sees positional and keyword arguments as the
    caller wrote them (so that pipeline keeps the general form)."""
    seen: list[tuple[Any, ...]] = []

    @fallback(lambda exc, *args, **kwargs: seen.append((args, kwargs)))
    @retry(attempts=1)
    def fetch(user_id: int, timeout: float = 5.0) -> None:
        raise ConnectionError("down")

    fetch(7, timeout=1.0)
    fetch(user_id=8)
    assert [((7,), {"timeout": 1.0}), ((), {"user_id": 8})] == seen


def test_exact_coroutine_functions(clock: FakeClock) -> None:
    """Coroutine functions get the exact form too, keyword-only parameters included."""
    calls: list[int] = []

    @retry(attempts=3, backoff="none")
    async def fetch(user_id: int, *, flaky: bool = True) -> int:
        calls.append(user_id)
        if flaky and len(calls) < 2:
            raise ConnectionError("down")
        return user_id

    assert inspect.iscoroutinefunction(fetch)
    assert 5 == asyncio.run(fetch(5))
    assert 6 == asyncio.run(fetch(user_id=6, flaky=False))
    assert [5, 5, 6] == calls


def test_driver_frames_show_their_lines() -> None:
    """Tracebacks through a generated driver show its source lines."""
    import traceback

    @retry(attempts=1)
    def fail() -> None:
        raise ValueError("bad")

    try:
        fail()
    except ValueError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    driver = [f for f in frames if f.filename.startswith("<retryx driver")]
    assert driver
    assert all(f.line for f in driver)


def test_shapes_beyond_the_cap_get_the_general_form(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a bounded number of compiled shapes, new ones take the general form."""
    from retryx import _drivers

    monkeypatch.setattr(_drivers, "_MAX_SHAPES", 0)

    @retry(attempts=2, backoff="none")
    def never_seen_before_shape(zeta: int, *, omega: int = 1) -> int:
        return zeta + omega

    assert "_rx_args" in never_seen_before_shape.__code__.co_varnames
    assert 3 == never_seen_before_shape(1, omega=2)
