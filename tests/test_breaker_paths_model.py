"""The breaker model, run through every path a guarded call can take.

The breaker's closed path is inlined in several places: the drivers of
``@circuit_breaker`` (exact parameters, ``*args, **kwargs``, the ``wrapt`` proxy of
classmethods, staticmethods and callable objects; sync and async), the
``with`` / ``async with`` blocks, and the failover sweeps (each endpoint through
its own breaker, alone or around the ``@circuit_breaker`` layer's, swept or pinned
by the caller); under ``@retry`` the later attempts go through the breaker's own call;
a (async) generator function's iteration is booked as one call.
A state machine sends random calls down random paths, holds async
calls and ``with`` blocks open at their body (driven by hand: ``send``, ``throw``,
``close``, no event loop) and checks every breaker against the model after each
step. The breaker ``B`` is shared by every path, so the paths' bookings interleave.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
from collections.abc import Callable, Generator
from typing import Any

import pytest
import wrapt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from retryx import (
    AllEndpointsFailed,
    CircuitBreaker,
    breakers,
    circuit_breaker,
    events,
    failover,
)
from retryx.testing import fake_time
from tests._breaker_model import Model, counts, raise_for
from tests._breaker_paths import (
    HOSTS,
    HeldBlock,
    Hold,
    Script,
    breaker_of,
    described,
    elsewhere,
    make_functions,
    outcome_of,
)

# What the body does: return, raise a transient fault, a permanent one, one the counts
# classifier cannot judge (it raises, or answers nonsense), or let a real inner
# breaker's refusal (CircuitOpenError) out: no verdict on the breakers around it.
# (Transient faults and successes drawn more often: they move the breakers.)
OUTCOMES = st.sampled_from(
    ["success", "transient", "success", "transient", "permanent", "raises", "nonsense", "refused"]
)
# A first attempt under @retry may also raise Again, which only the retry policy retries.
FIRST = st.one_of(st.just("again"), OUTCOMES)
VERDICTS = ("success", "transient", "permanent")
# The BreakerCall each verdict tells (a call cut short without a verdict tells none).
TOLD = {"success": "success", "transient": "failure", "permanent": "ignored", "again": "ignored"}
RAISED = {
    "transient": ("ConnectionError",),
    "permanent": ("Permanent",),
    "raises": ("RuntimeError",),  # counts raised: the caller gets its error
    "nonsense": ("TypeError",),  # counts answered no Fault
}
PINS = st.sampled_from([None, None, *HOSTS])  # the caller pins the endpoint, or not
STEPS = st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0, 10.0])
MAX_HELD = 4

SYNC_PATHS = (
    "exact",
    "general",
    "method",
    "classmethod",
    "staticmethod",
    "object",
    "with",
    "retry",
    "generator",  # (iterated to its end: the breaker books the whole iteration)
)
ASYNC_PATHS = tuple(f"async {path}" for path in SYNC_PATHS)
# Failover functions: (path, its template's index, stacked on @circuit_breaker(B)).
FAILOVER_PATHS = {
    "failover": (0, False),
    "failover stacked": (1, True),
    "async failover": (2, False),
    "async failover stacked": (3, True),
}
PATHS = (*SYNC_PATHS, *ASYNC_PATHS, *FAILOVER_PATHS)
HOLDABLE = ("with (held)", *(path for path in PATHS if path.startswith("async")))

_machines = itertools.count()


class Flight:
    """The model of one call in flight: the endpoints (hops) it may reach, each through
    its breakers (outermost first), and where it is now."""

    def __init__(
        self, hops: list[tuple[str | None, list[str]]], sweep: bool, retry: bool = False
    ) -> None:
        self.hops = hops
        self.sweep = sweep  # a transient fault or a refusal moves on to the next hop
        self.retry = retry  # Again moves on to the next hop (attempt)
        self.at = 0
        self.tickets: list[Any] = []
        self.errors: dict[str | None, tuple[Any, ...]] = {}
        self.ran: list[str | None] = []

    def admit(self, machine: PathsMachine) -> tuple[Any, ...] | None:
        """Admit the call at its next hop: ``None`` when its body runs, else its end."""
        now = machine.now()
        while self.at < len(self.hops):
            hop, names = self.hops[self.at]
            machine.touched.add(names[0])  # (an endpoint's breaker is made when reached)
            tickets: list[Any] = []
            refusal = None
            for name in names:
                allowed, ticket = machine.models[name].admit(now)
                if not allowed:
                    machine.tell(name, "rejected")
                    refusal = ("CircuitOpenError", name, ticket)
                    break
                tickets.append(ticket)
            if refusal is None:
                self.tickets = tickets
                self.ran.append(hop)
                return None
            for name, ticket in zip(names, tickets, strict=False):
                machine.models[name].cancel(ticket)  # an inner refusal: no verdict
            if not self.sweep:
                return refusal
            self.errors[hop] = refusal
            self.at += 1
        return ("AllEndpointsFailed", tuple(self.errors.items()))

    def finish(self, machine: PathsMachine, outcome: str) -> tuple[Any, ...] | None:
        """The body at the current hop ended with ``outcome``: book it, move on."""
        hop, names = self.hops[self.at]
        now = machine.now()
        for name, ticket in zip(names, self.tickets, strict=True):
            if outcome in TOLD:
                machine.tell(name, TOLD[outcome])
            if outcome == "again":
                machine.models[name].finish(ticket, "permanent", now)
            elif outcome in VERDICTS:
                machine.models[name].finish(ticket, outcome, now)
                if outcome == "transient":
                    machine.last[name] = "down"  # kept even when the ticket is stale
            else:
                machine.models[name].cancel(ticket)
        self.tickets = []
        if outcome == "success":
            return ("returned", f"served by {hop}")
        if outcome == "again":
            self.at += 1
            return self.admit(machine)
        error = machine.refused if outcome == "refused" else RAISED[outcome]
        if self.sweep and outcome in ("transient", "refused"):
            self.errors[hop] = error
            self.at += 1
            return self.admit(machine)
        return error

    def cancel(self, machine: PathsMachine) -> None:
        """Cancelled (or closed) at the current hop: every slot goes back unjudged."""
        _, names = self.hops[self.at]
        for name, ticket in zip(names, self.tickets, strict=True):
            machine.models[name].cancel(ticket)
        self.tickets = []

    def view(self, end: tuple[Any, ...] | None) -> tuple[Any, ...]:
        return ("suspended", self.hops[self.at][0]) if end is None else end


class PathsMachine(RuleBasedStateMachine):
    """Calls down random paths, held calls, clock moves and manual control."""

    def __init__(self) -> None:
        super().__init__()
        self._time = fake_time()
        self.clock = self._time.__enter__()
        self.seen: list[Any] = []
        self._unsubscribe: Callable[[], None] | None = None
        # (the thing driven by hand, its context, its flight)
        self.held: list[tuple[Any, contextvars.Context, Flight]] = []
        self.models: dict[str, Model] = {}
        self.real: dict[str, CircuitBreaker] = {}
        self.touched: set[str] = set()
        self.last: dict[str, str | None] = {}
        # Per breaker, the events the model expects: ("changed", old, new), ("call", outcome).
        self.told: dict[str, list[tuple[str, ...]]] = {}
        self.changes_told: dict[str, int] = {}

    @initialize(
        listen=st.booleans(),
        settings_b=st.fixed_dictionaries(
            {
                "by_rate": st.booleans(),
                "threshold": st.integers(1, 3),
                "rate": st.sampled_from([0.5, 1.0]),
                "window": st.integers(1, 4),
                "extra": st.integers(0, 2),
                "timeout": st.sampled_from([0.0, 1.0, 5.0]),
                "max_trials": st.integers(1, 2),
                "to_close": st.integers(1, 2),
            }
        ),
        settings_t=st.fixed_dictionaries(
            {
                "by_rate": st.booleans(),
                "threshold": st.integers(1, 2),
                "rate": st.sampled_from([0.5, 1.0]),
                "window": st.integers(1, 3),
                "extra": st.integers(0, 2),
                "timeout": st.sampled_from([0.0, 1.0, 5.0]),
                "max_trials": st.integers(1, 2),
                "to_close": st.integers(1, 2),
            }
        ),
    )
    def make(self, listen: bool, settings_b: dict[str, Any], settings_t: dict[str, Any]) -> None:
        # Without a subscriber the closed path's "nothing to book" shortcut is taken;
        # with one, the events (state changes, BreakerCall) are checked against the model.
        if listen:
            self._unsubscribe = events.subscribe(self.seen.append)
        n = next(_machines)
        self.b = breaker_of(f"B-{n}", settings_b)
        self.templates = [breaker_of(f"t{i}-{n}", settings_t) for i in range(4)]
        self.elsewhere = elsewhere()
        self.refused = ("CircuitOpenError", self.elsewhere.name, float("inf"))
        self.functions = make_functions(self.b, self.templates, self.elsewhere)
        self.models[self.b.name] = Model(self.b)
        self.real[self.b.name] = self.b
        self.touched.add(self.b.name)
        for template in self.templates:
            for host in HOSTS:
                self.models[f"{template.name}@{host}"] = Model(template)

    def now(self) -> float:
        return self.clock.monotonic()

    def invoke(self, path: str, arg: Any, pin: str | None) -> Any:
        """Call down ``path``: its result, or the coroutine (``HeldBlock``) to drive."""
        if path == "with (held)":
            return HeldBlock(self.b, self.elsewhere)
        function = self.functions[path]
        return (
            function(arg, host=pin) if pin is not None and path in FAILOVER_PATHS else function(arg)
        )

    def flight(self, path: str, pin: str | None) -> Flight:
        if path.endswith("retry"):
            return Flight([(None, [self.b.name])] * 2, sweep=False, retry=True)
        if path not in FAILOVER_PATHS:
            return Flight([(None, [self.b.name])], sweep=False)
        index, stacked = FAILOVER_PATHS[path]
        template = self.templates[index].name
        layer = [self.b.name] if stacked else []
        hosts = HOSTS if pin is None else (pin,)
        return Flight([(h, [f"{template}@{h}", *layer]) for h in hosts], sweep=pin is None)

    def outcome(self, data: st.DataObject, flight: Flight) -> str:
        if flight.retry and flight.at == 0:
            return data.draw(FIRST)
        return data.draw(OUTCOMES)

    def step(
        self, held: Any, ctx: contextvars.Context, how: Callable[..., Any], *args: Any
    ) -> tuple[Any, ...]:
        """One step of a held call (``send`` / ``throw``), as the model describes it."""
        try:
            yielded = ctx.run(how, *args)
        except StopIteration as stop:
            return ("returned", stop.value)
        except BaseException as exc:
            return described(exc)
        assert isinstance(yielded, Hold)
        return ("suspended", yielded.hop)

    @rule(data=st.data(), path=st.sampled_from((*SYNC_PATHS, *ASYNC_PATHS)))
    def call(self, data: st.DataObject, path: str) -> None:
        self.run(data, path, None)

    @rule(data=st.data(), path=st.sampled_from(tuple(FAILOVER_PATHS)), pin=PINS)
    def call_failover(self, data: st.DataObject, path: str, pin: str | None) -> None:
        self.run(data, path, pin)

    def run(self, data: st.DataObject, path: str, pin: str | None) -> None:
        """One call down ``path``, to its end; each body's outcome drawn when it runs."""
        flight = self.flight(path, pin)
        end = flight.admit(self)
        if path.startswith("async"):
            held = self.invoke(path, None, pin)
            ctx = contextvars.copy_context()
            actual = self.step(held, ctx, held.send, None)
            try:
                while end is None:
                    assert flight.view(end) == actual
                    outcome = self.outcome(data, flight)  # (may end the example here)
                    end = flight.finish(self, outcome)
                    actual = self.step(held, ctx, held.send, outcome)
                assert end == actual
            finally:
                if actual[0] == "suspended":  # closed in its own context, not by the GC
                    ctx.run(held.close)
            return
        # The model runs first (the clock stands still), so each outcome can be drawn
        # knowing which breakers admitted the body; the real call then follows the script.
        outcomes = []
        while end is None:
            outcomes.append(self.outcome(data, flight))
            end = flight.finish(self, outcomes[-1])
        script = Script(list(outcomes), self.elsewhere)
        assert end == outcome_of(lambda: self.invoke(path, script, pin))
        assert flight.ran == script.hops

    @precondition(lambda self: len(self.held) < MAX_HELD)
    @rule(path=st.sampled_from(HOLDABLE), pin=PINS)
    def begin(self, path: str, pin: str | None) -> None:
        flight = self.flight("with" if path == "with (held)" else path, pin)
        end = flight.admit(self)
        held = self.invoke(path, None, pin)
        ctx = contextvars.copy_context()  # as a task or a thread of its own
        actual = self.step(held, ctx, held.send, None)
        assert flight.view(end) == actual
        if end is None:
            self.held.append((held, ctx, flight))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        held, ctx, flight = self.held[index]
        outcome = self.outcome(data, flight)
        end = flight.finish(self, outcome)
        assert flight.view(end) == self.step(held, ctx, held.send, outcome)
        if end is not None:
            del self.held[index]

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), how=st.sampled_from(["cancel", "close"]))
    def cancel(self, data: st.DataObject, how: str) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        held, ctx, flight = self.held.pop(index)
        flight.cancel(self)
        if how == "close":
            assert ctx.run(held.close) is None
        else:
            error = asyncio.CancelledError()
            assert ("CancelledError",) == self.step(held, ctx, held.throw, error)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: hasattr(self, "b"))
    @rule(data=st.data(), how=st.sampled_from(["open", "half_open", "close", "reset"]))
    def control(self, data: st.DataObject, how: str) -> None:
        name = data.draw(st.sampled_from(sorted(self.touched)))
        getattr(self.breaker(name), how)()
        mode = {"open": "forced", "close": "closed", "reset": "closed"}.get(how, how)
        self.models[name].enter(mode, self.now())
        if how == "reset":
            self.last[name] = None

    def tell(self, name: str, outcome: str | None = None) -> None:
        """Note the model's state changes of ``name`` so far, then ``outcome``'s call."""
        changes = self.models[name].changes
        told = self.told.setdefault(name, [])
        told.extend(("changed", old, new) for old, new in changes[self.changes_told.get(name, 0) :])
        self.changes_told[name] = len(changes)
        if outcome is not None:
            told.append(("call", outcome))

    def breaker(self, name: str) -> CircuitBreaker:
        """The real breaker ``name`` (an endpoint's, made on its first call: listed)."""
        found = self.real.get(name)
        if found is None:
            found = next(b for b in breakers() if b.name == name)
            self.real[name] = found
        return found

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "b"):
            return
        now = self.now()
        seen: dict[str, list[tuple[str, ...]]] = {}
        for event in self.seen:
            if isinstance(event, events.CircuitStateChanged):
                seen.setdefault(event.breaker, []).append(("changed", event.old, event.new))
            elif isinstance(event, events.BreakerCall):
                seen.setdefault(event.name, []).append(("call", event.outcome))
        for name, model in self.models.items():
            if name not in self.touched:
                assert ("closed", []) == (model.mode, model.changes)
                continue
            breaker = self.breaker(name)
            assert (name, model.state(now)) == (name, breaker.state)
            assert (name, model.retry_after(now)) == (name, breaker.retry_after)
            counted = model.failures if model.rate is None else sum(model.recent)
            assert (name, counted) == (name, breaker.failure_count)
            if model.rate is not None and model.mode == "closed":
                # The successes in the window count too. (Not while open: a late success
                # of a call admitted while closed may land there, and every state change
                # clears it before it counts.)
                assert (name, len(model.recent)) == (name, len(breaker._window))
            last = breaker.last_failure
            assert (name, self.last.get(name)) == (name, None if last is None else str(last))
            if self._unsubscribe is not None:  # its calls and state changes, in order
                self.tell(name)
                assert (name, self.told.get(name, [])) == (name, seen.get(name, []))
            assert 0 <= model.trials <= model.max_trials
            if model.mode == "half_open":  # every trial slot accounted for
                assert (name, model.trials) == (name, breaker._trials)

    def teardown(self) -> None:
        for held, ctx, _ in self.held:
            ctx.run(held.close)
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._time.__exit__(None, None, None)


PathsMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_every_path_matches_the_model = PathsMachine.TestCase
test_every_path_matches_the_model.__doc__ = (
    "Every breaker agrees with the model after every step, whatever path each call took."
)


def test_each_path_takes_the_form_it_is_named_after() -> None:
    """The machine's paths are the driver forms they stand for: exact parameters,
    ``*args, **kwargs``, and the wrapt proxy (classmethod, staticmethod, object)."""
    b = CircuitBreaker("forms")
    functions = make_functions(b, [b.copy(f"forms-t{i}") for i in range(4)], b)
    varargs = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
    for prefix in ("", "async "):
        for path in ("exact", "method"):
            driver = getattr(functions[prefix + path], "__func__", functions[prefix + path])
            assert driver.__code__ is not driver.__wrapped__.__code__  # a generated driver
            assert 0 == driver.__code__.co_flags & varargs, prefix + path
        driver = functions[prefix + "general"]
        assert driver.__code__ is not driver.__wrapped__.__code__
        assert varargs == driver.__code__.co_flags & varargs
        for path in ("classmethod", "staticmethod", "object"):
            assert isinstance(functions[prefix + path], wrapt.ObjectProxy), prefix + path


def stacked_pair(n: int) -> tuple[Callable[..., str], CircuitBreaker, CircuitBreaker]:
    """A function under ``@failover(["a"], breaker=...)`` and ``@circuit_breaker(layer)``
    after one transient fault: its endpoint's breaker and the layer's each count one."""
    template = CircuitBreaker(f"stacked-{n}", failure_threshold=3, counts=counts)
    layer = CircuitBreaker(f"layer-{n}", failure_threshold=3, counts=counts)

    @failover(["a"], breaker=template)
    @circuit_breaker(layer)
    def fetch(outcome: str, host: str) -> str:
        raise_for(outcome)
        return host

    with pytest.raises(AllEndpointsFailed):
        fetch("transient")
    endpoint = next(b for b in breakers() if b.name == f"stacked-{n}@a")
    assert (1, 1) == (endpoint.failure_count, layer.failure_count)
    return fetch, endpoint, layer


# A fault the layer's counts cannot judge leaves the layer as the classifier's own
# error (RuntimeError / TypeError); whichever breaker is half-open, the endpoint's
# breaker must not judge that error (it once did on the nested path, _call_with: it
# found it permanent and booked a success, so a classifier bug closed it).
@pytest.mark.parametrize(
    "not_closed",
    [
        None,
        "layer",
        "endpoint",
    ],
)
@pytest.mark.parametrize("outcome", ["raises", "nonsense"])
def test_an_unjudged_fault_under_a_layer_breaker_leaves_the_endpoint_breaker_alone(
    clock: Any, not_closed: str | None, outcome: str
) -> None:
    """A fault the counts classifier cannot judge is no verdict on the endpoint's breaker
    either, whichever of the two breakers is half-open."""
    fetch, endpoint, layer = stacked_pair(next(_machines))
    if not_closed is not None:
        (layer if not_closed == "layer" else endpoint).half_open()
    expected = (endpoint.state, endpoint.failure_count, endpoint._trials)
    with pytest.raises((RuntimeError, TypeError)):
        fetch(outcome)
    assert expected == (endpoint.state, endpoint.failure_count, endpoint._trials)


# The same breaker's ``with`` blocks open in one context (generators read in turn) can
# leave out of order; each must book its own admission (``__exit__`` once booked the
# token of the last block entered, so a block admitted while closed that failed after
# a trial block was entered reopened the breaker as if the trial had failed).
def test_blocks_of_one_breaker_left_out_of_order_each_book_their_own_admission(
    clock: Any,
) -> None:
    """Two ``with`` blocks of one breaker, open in turn in one context, each book their
    own admission: the one admitted while closed has no say once the breaker is not."""
    b = CircuitBreaker("out of order", failure_threshold=1, recovery_timeout=5.0)

    def block(outcome: str) -> Generator[None, None, None]:
        with b:
            yield
            raise_for(outcome)

    closed_call = block("transient")
    next(closed_call)  # admitted while closed
    b.half_open()
    trial = block("success")
    next(trial)  # the trial
    with pytest.raises(ConnectionError):
        next(closed_call)
    assert ("half_open", 1) == (b.state, b._trials)
    with pytest.raises(StopIteration):
        next(trial)
    assert "closed" == b.state


def test_async_blocks_of_one_breaker_left_out_of_order_each_book_their_own_admission(
    clock: Any,
) -> None:
    """``async with`` blocks of one breaker, in coroutines resumed in turn in one context,
    each book their own admission too."""
    b = CircuitBreaker("async out of order", failure_threshold=1, recovery_timeout=5.0)

    class Pause:
        def __await__(self) -> Generator[None, None, None]:
            yield

    async def block(outcome: str) -> None:
        async with b:
            await Pause()
            raise_for(outcome)

    closed_call = block("transient")
    closed_call.send(None)  # admitted while closed
    b.half_open()
    trial = block("success")
    trial.send(None)  # the trial
    with pytest.raises(ConnectionError):
        closed_call.send(None)
    assert ("half_open", 1) == (b.state, b._trials)
    with pytest.raises(StopIteration):
        trial.send(None)
    assert "closed" == b.state


def test_a_block_left_by_hand_from_another_frame_books_the_innermost(clock: Any) -> None:
    """``__exit__`` called from another frame than ``__enter__`` (by hand) books this
    breaker's innermost block, as ``with`` blocks nest."""
    b = CircuitBreaker("by hand", failure_threshold=1)

    def enter() -> None:
        b.__enter__()

    enter()
    b.__exit__(ConnectionError, ConnectionError("down"), None)
    assert "open" == b.state
