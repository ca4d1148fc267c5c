"""What a breaker tells about itself: failure_count, last_failure, opened_at, half_open()
and retryx.breakers()."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import retryx
from retryx import CircuitBreaker, CircuitOpenError, Permanent, circuit_breaker, events
from retryx.testing import FakeClock


class Refused(ConnectionError):
    """A transient fault with an attribute, as client exceptions carry."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} refused")
        self.host = host


class Payload:
    """Something the failing function holds in a local (weakly referenceable)."""


@pytest.fixture
def recorded() -> Iterator[list[Any]]:
    """Every event emitted during the test."""
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    yield seen
    unsubscribe()


def failing(breaker: CircuitBreaker, exc: Exception) -> Any:
    """A function through ``breaker`` that raises ``exc``."""

    @circuit_breaker(breaker)
    def fetch() -> None:
        raise exc

    return fetch


# --- failure_count ----------------------------------------------------------------------


def test_failure_count_is_the_run_of_consecutive_failures(clock: FakeClock) -> None:
    """failure_count counts consecutive counted failures; a success ends the run."""
    breaker = CircuitBreaker("db", failure_threshold=5)
    fetch = failing(breaker, ConnectionError("down"))
    for _ in range(3):
        with pytest.raises(ConnectionError):
            fetch()
    assert 3 == breaker.failure_count
    circuit_breaker(breaker)(lambda: None)()
    assert 0 == breaker.failure_count


def test_failure_count_with_a_failure_rate_is_the_failures_in_the_window(
    clock: FakeClock,
) -> None:
    """With failure_rate, failure_count is the number of failures in the window."""
    breaker = CircuitBreaker("db", failure_rate=0.9, window=4, minimum_calls=4)
    fetch = failing(breaker, ConnectionError("down"))
    succeed = circuit_breaker(breaker)(lambda: None)
    for step in (fetch, succeed, fetch, succeed, succeed):
        try:
            step()
        except ConnectionError:
            pass
    assert 1 == breaker.failure_count  # the window keeps the last 4 calls: f s s . s


def test_permanent_faults_are_not_counted(clock: FakeClock) -> None:
    """A fault counts calls permanent changes neither failure_count nor last_failure."""
    breaker = CircuitBreaker("db")
    with pytest.raises(Permanent):
        failing(breaker, Permanent("bad request"))()
    assert (0, None) == (breaker.failure_count, breaker.last_failure)


def test_opening_clears_the_count(clock: FakeClock) -> None:
    """The failure that opens the breaker starts a fresh count."""
    breaker = CircuitBreaker("db", failure_threshold=2)
    fetch = failing(breaker, ConnectionError("down"))
    for _ in range(2):
        with pytest.raises(ConnectionError):
            fetch()
    assert ("open", 0) == (breaker.state, breaker.failure_count)


# --- last_failure -----------------------------------------------------------------------


def test_last_failure_is_a_copy_of_the_counted_exception(clock: FakeClock) -> None:
    """last_failure has the exception's type, message and attributes, without traceback."""
    breaker = CircuitBreaker("db")
    assert breaker.last_failure is None
    with pytest.raises(Refused):
        failing(breaker, Refused("10.0.0.1"))()
    last = breaker.last_failure
    assert isinstance(last, Refused)
    assert ("10.0.0.1 refused", "10.0.0.1") == (str(last), last.host)
    assert (None, None, None) == (last.__traceback__, last.__cause__, last.__context__)


def test_last_failure_is_a_snapshot_of_the_notes(clock: FakeClock) -> None:
    """Notes added to the raised exception later do not show on last_failure."""
    breaker = CircuitBreaker("db")
    error = ConnectionError("down")
    error.add_note("first")
    with pytest.raises(ConnectionError):
        failing(breaker, error)()
    error.add_note("later")
    assert breaker.last_failure is not None
    assert ["first"] == breaker.last_failure.__notes__


def test_last_failure_is_the_latest_and_survives_closing(clock: FakeClock) -> None:
    """The latest counted failure is kept through open and close; reset() clears it."""
    breaker = CircuitBreaker("db", failure_threshold=2, recovery_timeout=1.0)
    with pytest.raises(ConnectionError):
        failing(breaker, ConnectionError("first"))()
    with pytest.raises(TimeoutError):
        failing(breaker, TimeoutError("second"))()
    clock.advance(1.0)
    assert "ok" == circuit_breaker(breaker)(lambda: "ok")()
    assert "closed" == breaker.state
    assert ("TimeoutError", "second") == (
        type(breaker.last_failure).__name__,
        str(breaker.last_failure),
    )
    breaker.reset()
    assert breaker.last_failure is None


def test_last_failure_keeps_no_frame_of_the_failed_call_alive(clock: FakeClock) -> None:
    """The failed call's locals are freed by reference counting although it is kept."""
    gc.collect()
    gc.disable()
    try:
        refs: list[weakref.ref[Payload]] = []
        breaker = CircuitBreaker("db")

        @circuit_breaker(breaker)
        def fetch() -> None:
            payload = Payload()
            refs.append(weakref.ref(payload))
            raise ConnectionError("down")

        with pytest.raises(ConnectionError):
            fetch()
        assert breaker.last_failure is not None
        assert [None] == [ref() for ref in refs]
    finally:
        gc.enable()


def test_an_exception_that_cannot_be_copied_leaves_its_text(clock: FakeClock) -> None:
    """A type whose constructor refuses its own args is kept as a plain Exception's text."""

    class Picky(Exception):
        def __new__(cls, *args: Any) -> Picky:
            if len(args) != 2:
                raise TypeError("two arguments please")
            return super().__new__(cls, *args)

        def __init__(self, host: str, port: int) -> None:
            super().__init__(f"{host}:{port} refused")

    breaker = CircuitBreaker("db", counts=Picky)
    with pytest.raises(Picky):
        failing(breaker, Picky("db", 5432))()
    assert Exception is type(breaker.last_failure)
    assert str(breaker.last_failure).endswith(".Picky: db:5432 refused")


# --- opened_at --------------------------------------------------------------------------


def test_opened_at_is_the_wall_clock_time_of_the_last_opening(clock: FakeClock) -> None:
    """opened_at is None until it opens, then the wall time of the last opening."""
    breaker = CircuitBreaker("db", failure_threshold=1, recovery_timeout=5.0)
    assert breaker.opened_at is None
    with pytest.raises(ConnectionError):
        failing(breaker, ConnectionError("down"))()
    first = clock.now()
    assert first == breaker.opened_at
    clock.advance(5.0)
    with pytest.raises(ConnectionError):
        failing(breaker, ConnectionError("down"))()  # the trial fails: opened again
    assert first + 5.0 == breaker.opened_at
    breaker.close()
    assert first + 5.0 == breaker.opened_at  # when it *last* opened
    breaker.reset()
    assert breaker.opened_at is None


def test_opening_by_hand_sets_opened_at(clock: FakeClock) -> None:
    """open() records the time too."""
    breaker = CircuitBreaker("db")
    breaker.open()
    assert clock.now() == breaker.opened_at


# --- half_open() ------------------------------------------------------------------------


def test_half_open_by_hand_admits_trials_then_closes(clock: FakeClock, recorded: list[Any]) -> None:
    """half_open() moves an open breaker to half-open before its recovery time."""
    breaker = CircuitBreaker("db", recovery_timeout=60.0, half_open_max_calls=1)
    breaker.open()
    breaker.half_open()
    assert "half_open" == breaker.state
    assert events.CircuitStateChanged("db", "open", "half_open") == recorded[-1]
    token = breaker._acquire()
    with pytest.raises(CircuitOpenError) as info:
        breaker._acquire()  # one trial slot
    assert 0.0 == info.value.retry_after
    breaker._on_success(token)
    assert "closed" == breaker.state


def test_a_failed_trial_after_half_open_opens_it_again(clock: FakeClock) -> None:
    """A failure in the half-open state set by hand re-opens with a recovery timeout."""
    breaker = CircuitBreaker("db", recovery_timeout=10.0)
    breaker.half_open()
    with pytest.raises(ConnectionError):
        failing(breaker, ConnectionError("down"))()
    assert ("open", 10.0) == (breaker.state, breaker.retry_after)


def test_half_open_by_hand_under_asyncio(clock: FakeClock) -> None:
    """An async call through a breaker made half-open by hand is its trial."""
    breaker = CircuitBreaker("db")
    breaker.open()
    breaker.half_open()

    @circuit_breaker(breaker)
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert ("ok", "closed") == (asyncio.run(fetch()), breaker.state)


# --- retryx.breakers() ------------------------------------------------------------------


def test_breakers_lists_every_live_breaker_by_name() -> None:
    """retryx.breakers() lists breakers made by hand, by decorators and by name."""
    by_hand = CircuitBreaker("zz-by-hand")

    @circuit_breaker(name="zz-decorated")
    def fetch() -> None: ...

    @circuit_breaker("zz-configured")
    def other() -> None: ...

    other()  # a named breaker is resolved at its first call
    names = [b.name for b in retryx.breakers() if b.name.startswith("zz-")]
    assert ["zz-by-hand", "zz-configured", "zz-decorated"] == names
    assert by_hand in retryx.breakers()


def test_breakers_forgets_a_breaker_nobody_holds() -> None:
    """A breaker that is gone is not listed (held weakly)."""
    breaker = CircuitBreaker("zz-gone")
    assert breaker in retryx.breakers()
    del breaker
    gc.collect()
    assert [] == [b for b in retryx.breakers() if b.name == "zz-gone"]


def test_breakers_of_the_same_name_are_all_listed_oldest_first() -> None:
    """Two distinct breakers with one name are both listed, in creation order."""
    first, second = CircuitBreaker("zz-twin"), CircuitBreaker("zz-twin")
    assert [first, second] == [b for b in retryx.breakers() if b.name == "zz-twin"]
