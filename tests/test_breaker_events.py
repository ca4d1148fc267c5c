"""BreakerCall events: one per call through a breaker, with its outcome, only while
someone subscribes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import retryx
from retryx import CircuitBreaker, CircuitOpenError, Permanent, circuit_breaker, events
from retryx.testing import FakeClock


@pytest.fixture
def recorded() -> Iterator[list[Any]]:
    """Every event emitted during the test."""
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    yield seen
    unsubscribe()


def calls(seen: list[Any]) -> list[tuple[str, str]]:
    """The (breaker, outcome) pairs of the BreakerCall events seen."""
    return [(e.name, e.outcome) for e in seen if isinstance(e, events.BreakerCall)]


def outcomes_of(fetch: Any, faults: list[Exception | None]) -> None:
    """Call ``fetch(fault)`` once per fault, swallowing what it raises."""
    for fault in faults:
        try:
            fetch(fault)
        except Exception:
            pass


FAULTS: list[Exception | None] = [None, ConnectionError("down"), Permanent("bad"), None]


# --- the four outcomes --------------------------------------------------------------------


@pytest.mark.parametrize("window", [False, True], ids=["consecutive", "failure_rate"])
def test_each_call_through_a_breaker_emits_its_outcome(
    clock: FakeClock, recorded: list[Any], window: bool
) -> None:
    """success, failure (transient), ignored (permanent) and rejected (open), in order."""
    settings: dict[str, Any] = (
        {"failure_rate": 1.0, "window": 2, "minimum_calls": 2} if window else {}
    )
    breaker = CircuitBreaker("db", **settings)

    @breaker
    def fetch(fault: Exception | None) -> str:
        if fault is not None:
            raise fault
        return "ok"

    outcomes_of(fetch, FAULTS)
    breaker.open()
    outcomes_of(fetch, [None])
    expected = ["success", "failure", "ignored", "success", "rejected"]
    assert [("db", outcome) for outcome in expected] == calls(recorded)


def test_async_calls_emit_the_same_outcomes(clock: FakeClock, recorded: list[Any]) -> None:
    """The async pipeline emits the same events as the sync one."""
    breaker = CircuitBreaker("db")

    @breaker
    async def fetch(fault: Exception | None) -> str:
        await asyncio.sleep(0)
        if fault is not None:
            raise fault
        return "ok"

    async def main() -> None:
        for fault in [*FAULTS, None]:
            if fault is None and len(calls(recorded)) == 4:
                breaker.open()
            try:
                await fetch(fault)
            except Exception:
                pass

    asyncio.run(main())
    expected = ["success", "failure", "ignored", "success", "rejected"]
    assert [("db", outcome) for outcome in expected] == calls(recorded)


def test_the_call_comes_before_the_state_change_it_causes(
    clock: FakeClock, recorded: list[Any]
) -> None:
    """The failure that trips the breaker is told before CircuitStateChanged."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    with pytest.raises(ConnectionError):
        circuit_breaker(breaker)(lambda: (_ for _ in ()).throw(ConnectionError("x")))()
    kinds = [type(e).__name__ for e in recorded if type(e).__name__ != "GaveUp"]
    assert ["BreakerCall", "CircuitStateChanged"] == kinds


def test_a_subscriber_told_of_a_failure_sees_it_as_last_failure(clock: FakeClock) -> None:
    """last_failure is set before BreakerCall("failure") is told."""
    breaker = CircuitBreaker("db")
    seen: list[str] = []

    def on_event(event: Any) -> None:
        if isinstance(event, events.BreakerCall) and event.outcome == "failure":
            seen.append(str(breaker.last_failure))

    unsubscribe = events.subscribe(on_event)
    try:
        with pytest.raises(ConnectionError), breaker:
            raise ConnectionError("now")
    finally:
        unsubscribe()
    assert ["now"] == seen


def test_a_half_open_trial_emits_its_outcome(clock: FakeClock, recorded: list[Any]) -> None:
    """A trial call's success is told like any other."""
    breaker = CircuitBreaker("db")
    breaker.half_open()
    assert "ok" == circuit_breaker(breaker)(lambda: "ok")()
    assert [("db", "success")] == calls(recorded)


# --- every way through a breaker ----------------------------------------------------------


def test_the_context_manager_emits_outcomes(clock: FakeClock, recorded: list[Any]) -> None:
    """with breaker: blocks emit success, failure and rejected."""
    breaker = CircuitBreaker("db", failure_threshold=1)
    with breaker:
        pass
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("down")
    with pytest.raises(CircuitOpenError), breaker:
        pass
    assert [("db", "success"), ("db", "failure"), ("db", "rejected")] == calls(recorded)


def test_a_named_breaker_emits_outcomes(clock: FakeClock, recorded: list[Any]) -> None:
    """@circuit_breaker("name") calls go through the same events."""

    @circuit_breaker("events-named")
    def fetch() -> str:
        return "ok"

    fetch()
    fetch()
    assert [("events-named", "success")] * 2 == calls(recorded)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_failover_emits_for_the_endpoint_and_the_layer_breaker(
    clock: FakeClock, recorded: list[Any], is_async: bool
) -> None:
    """A failover sweep tells each endpoint breaker's outcome and the layer's."""
    layer = CircuitBreaker("layer", failure_threshold=10)

    def body(host: str = "a") -> str:
        if host == "a":
            raise ConnectionError("a is down")
        return host

    async def abody(host: str = "a") -> str:
        return body(host)

    guarded = circuit_breaker(layer)(abody if is_async else body)
    fetch = retryx.failover(["a", "b"], breaker=CircuitBreaker("ep"))(guarded)
    result = asyncio.run(fetch()) if is_async else fetch()
    assert "b" == result
    expected = [("layer", "failure"), ("ep@a", "failure")]
    expected += [("layer", "success"), ("ep@b", "success")]
    assert expected == calls(recorded)


def test_a_rejected_endpoint_is_told(clock: FakeClock, recorded: list[Any]) -> None:
    """An endpoint skipped by its open breaker is a rejected call."""
    template = CircuitBreaker("skip")
    fetch = retryx.failover(["a", "b"], breaker=template)(lambda host="a": host)
    assert "a" == fetch()  # the endpoint breakers are made on first use
    (first,) = [b for b in retryx.breakers() if b.name == "skip@a"]
    first.open()
    recorded.clear()
    assert "b" == fetch()
    assert [("skip@a", "rejected"), ("skip@b", "success")] == calls(recorded)


def test_generators_emit_outcomes(clock: FakeClock, recorded: list[Any]) -> None:
    """A guarded generator emits its iteration's outcome; closing early emits nothing."""
    breaker = CircuitBreaker("db")

    @breaker
    def rows(fault: Exception | None) -> Iterator[int]:
        yield 1
        if fault is not None:
            raise fault

    assert [1] == list(rows(None))
    with pytest.raises(ConnectionError):
        list(rows(ConnectionError("reset")))
    early = rows(None)
    next(early)
    early.close()
    assert [("db", "success"), ("db", "failure")] == calls(recorded)


def test_async_generators_emit_outcomes(clock: FakeClock, recorded: list[Any]) -> None:
    """A guarded async generator emits its iteration's outcome."""
    breaker = CircuitBreaker("db")

    @breaker
    async def rows() -> AsyncIterator[int]:
        yield 1
        raise Permanent("bad")

    async def main() -> None:
        with pytest.raises(Permanent):
            async for _ in rows():
                pass

    asyncio.run(main())
    assert [("db", "ignored")] == calls(recorded)


# --- nobody listening ---------------------------------------------------------------------


def test_no_event_is_made_without_subscribers(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a subscriber, no call path builds a BreakerCall."""

    def refuse(self: CircuitBreaker, outcome: str) -> None:
        raise AssertionError(f"BreakerCall built for {outcome} with nobody listening")

    monkeypatch.setattr(CircuitBreaker, "_tell", refuse)
    breaker = CircuitBreaker("db", failure_threshold=2)

    @breaker
    def fetch(fault: Exception | None) -> str:
        if fault is not None:
            raise fault
        return "ok"

    outcomes_of(fetch, [*FAULTS, ConnectionError("1"), ConnectionError("2"), None])
    assert "open" == breaker.state
    with pytest.raises(CircuitOpenError), breaker:
        pass
