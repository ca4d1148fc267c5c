"""A stateful hypothesis test: a CircuitBreaker checked against a simple model after every step."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from retryx import CircuitBreaker, CircuitOpenError, events
from retryx.testing import fake_time
from tests._breaker_model import Model, Unjudgeable, counts, raise_for

# "unjudged": the counts classifier raises or answers nonsense (no verdict, slot back).
OUTCOMES = st.sampled_from(["success", "transient", "permanent", "raises", "nonsense"])
STEPS = st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0, 10.0])
MAX_HELD = 4


class BreakerMachine(RuleBasedStateMachine):
    """Random calls, held trials, clock moves and manual control against the model."""

    def __init__(self) -> None:
        super().__init__()
        self._time = fake_time()
        self.clock = self._time.__enter__()
        self.seen: list[Any] = []
        self._unsubscribe = events.subscribe(self.seen.append)
        self.held: list[tuple[Any, Any]] = []  # (breaker token, model ticket)

    @initialize(
        by_rate=st.booleans(),
        threshold=st.integers(1, 4),
        rate=st.sampled_from([0.25, 0.5, 1.0]),
        window=st.integers(1, 6),
        extra=st.integers(0, 3),
        timeout=st.sampled_from([0.0, 1.0, 5.0]),
        max_trials=st.integers(1, 3),
        to_close=st.integers(1, 3),
    )
    def make(
        self,
        by_rate: bool,
        threshold: int,
        rate: float,
        window: int,
        extra: int,
        timeout: float,
        max_trials: int,
        to_close: int,
    ) -> None:
        minimum = max(1, window - extra)
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=threshold,
            failure_rate=rate if by_rate else None,
            window=window + (0 if by_rate else extra),
            minimum_calls=minimum,
            recovery_timeout=timeout,
            half_open_max_calls=max_trials,
            success_threshold=to_close,
            counts=counts,
        )
        self.model = Model(self.breaker)

    def now(self) -> float:
        return self.clock.monotonic()

    def admit(self) -> tuple[bool, Any, Any]:
        """Ask both; they must agree. Returns (admitted, token, ticket)."""
        allowed, ticket = self.model.admit(self.now())
        try:
            token = self.breaker._acquire()
        except CircuitOpenError as exc:
            rejected = exc
        else:
            assert allowed, "breaker admitted a call the model rejects"
            return True, token, ticket
        assert not allowed, "breaker rejected a call the model admits"
        assert (ticket, "model") == (rejected.retry_after, rejected.breaker)
        return False, None, None

    def finish(self, token: Any, ticket: Any, outcome: str) -> None:
        try:
            raise_for(outcome)
        except Unjudgeable as exc:
            try:
                self.breaker._on_failure(token, exc)
            except (RuntimeError, TypeError):
                self.model.cancel(ticket)  # no verdict: the slot goes back
                return
            raise AssertionError("the classifier's failure was swallowed") from None
        except Exception as exc:
            self.breaker._on_failure(token, exc)
        else:
            self.breaker._on_success(token)
        self.model.finish(ticket, outcome, self.now())

    @rule(outcome=OUTCOMES)
    def call(self, outcome: str) -> None:
        admitted, token, ticket = self.admit()
        if admitted:
            self.finish(token, ticket, outcome)

    @precondition(lambda self: len(self.held) < MAX_HELD)
    @rule()
    def begin(self) -> None:
        admitted, token, ticket = self.admit()
        if admitted:
            self.held.append((token, ticket))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), outcome=OUTCOMES)
    def end(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        token, ticket = self.held.pop(index)
        self.finish(token, ticket, outcome)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        token, ticket = self.held.pop(index)
        self.breaker._release(token)
        self.model.cancel(ticket)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def open(self) -> None:
        self.breaker.open()
        self.model.enter("forced", self.now())

    @rule()
    def half_open(self) -> None:
        self.breaker.half_open()
        self.model.enter("half_open", self.now())

    @rule(how=st.sampled_from(["close", "reset"]))
    def close(self, how: str) -> None:
        getattr(self.breaker, how)()
        self.model.enter("closed", self.now())

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "model"):
            return
        now = self.now()
        assert self.model.state(now) == self.breaker.state
        assert self.model.retry_after(now) == self.breaker.retry_after
        changes = [
            (e.old, e.new)
            for e in self.seen
            if isinstance(e, events.CircuitStateChanged) and e.breaker == "model"
        ]
        assert self.model.changes == changes
        assert 0 <= self.model.trials <= self.model.max_trials
        counted = self.model.failures if self.model.rate is None else sum(self.model.recent)
        assert counted == self.breaker.failure_count
        if self.model.mode == "half_open":  # every trial slot accounted for
            assert self.model.trials == self.breaker._trials

    def teardown(self) -> None:
        self._unsubscribe()
        self._time.__exit__(None, None, None)


BreakerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_breaker_matches_the_model = BreakerMachine.TestCase
test_breaker_matches_the_model.__doc__ = "The breaker agrees with the model after every step."
