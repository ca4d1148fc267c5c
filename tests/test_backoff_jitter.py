"""Backoff formulas and jitter bounds: exact values, errors, and properties (hypothesis)."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retryx import ConfigError, backoff, jitter, retry, testing
from retryx.backoff import cap_of
from retryx.testing import FakeClock, FaultSequence

# --- exact formulas ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (backoff.exponential(), [0.1, 0.2, 0.4, 0.8, 1.6, 3.2]),
        (backoff.exponential(initial=1, multiplier=3, max=20), [1, 3, 9, 20, 20, 20]),
        (backoff.exponential(initial=0.5, multiplier=1), [0.5] * 6),
        (backoff.incremental(), [1, 2, 3, 4, 5, 6]),
        (backoff.incremental(initial=0.5, step=2, max=5), [0.5, 2.5, 4.5, 5, 5, 5]),
        (backoff.fixed(), [1.0] * 6),
        (backoff.fixed(2.5), [2.5] * 6),
        (backoff.immediate(), [0, 0.1, 0.2, 0.4, 0.8, 1.6]),
        (backoff.immediate(then=backoff.fixed(3)), [0, 3, 3, 3, 3, 3]),
        (backoff.none(), [0] * 6),
        (backoff.schedule([0.5, 1, 4]), [0.5, 1, 4, 4, 4, 4]),
        (backoff.schedule([2]), [2] * 6),
    ],
    ids=repr,
)
def test_delay_formulas(strategy: backoff.Backoff, expected: list[float]) -> None:
    """Each backoff returns the contract's formula for retries 1..6."""
    assert pytest.approx(expected) == [strategy.delay(n) for n in range(1, 7)]


def test_exponential_formula_exactly() -> None:
    """``exponential``: ``min(max, initial * multiplier**(n-1))`` to the last bit."""
    b = backoff.exponential(initial=0.3, multiplier=1.7, max=25.0)
    assert [min(25.0, 0.3 * 1.7 ** (n - 1)) for n in range(1, 20)] == [
        b.delay(n) for n in range(1, 20)
    ]


def test_exponential_never_overflows() -> None:
    """A huge retry number gives the cap, not an ``OverflowError``."""
    assert 30.0 == backoff.exponential().delay(100_000)


def test_defaults_of_each_kind() -> None:
    """Default settings are the contract's."""
    assert (0.1, 2.0, 30.0) == _fields(backoff.exponential())
    assert (1.0, 1.0, 30.0) == _fields(backoff.incremental())
    assert 1.0 == backoff.fixed().delay(1)
    assert backoff.exponential() == backoff.immediate().then  # type: ignore[attr-defined]


def _fields(b: backoff.Backoff) -> tuple[Any, ...]:
    second = "multiplier" if hasattr(b, "multiplier") else "step"
    return (b.initial, getattr(b, second), b.max)  # type: ignore[attr-defined]


ALL_KINDS = [
    backoff.exponential(),
    backoff.incremental(),
    backoff.fixed(),
    backoff.immediate(),
    backoff.none(),
    backoff.schedule([1, 2]),
]


@pytest.mark.parametrize("strategy", ALL_KINDS, ids=repr)
@pytest.mark.parametrize("n", [0, -1])
def test_delay_below_one_is_value_error(strategy: backoff.Backoff, n: int) -> None:
    """``delay(n)`` for ``n < 1`` raises ``ValueError``."""
    with pytest.raises(ValueError, match="n >= 1"):
        strategy.delay(n)


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (lambda: backoff.schedule([]), "empty"),
        (lambda: backoff.schedule([1, -1]), "-1"),
        (lambda: backoff.schedule("12"), "'12'"),
        (lambda: backoff.schedule([1, math.nan]), "nan"),
        (lambda: backoff.exponential(multiplier=0.5), "multiplier"),
        (lambda: backoff.exponential(initial=-0.1), "initial"),
        (lambda: backoff.exponential(max=-1), "max"),
        (lambda: backoff.exponential(initial=math.inf), "initial"),
        (lambda: backoff.exponential(initial="1"), "initial"),
        (lambda: backoff.incremental(step=-1), "step"),
        (lambda: backoff.incremental(initial=-1), "initial"),
        (lambda: backoff.fixed(-1), "delay"),
        (lambda: backoff.fixed(math.nan), "delay"),
        (lambda: backoff.immediate(then=42), "then"),  # type: ignore[arg-type]
    ],
    ids=[
        "schedule-empty",
        "schedule-negative",
        "schedule-str",
        "schedule-nan",
        "multiplier<1",
        "initial<0",
        "max<0",
        "initial-inf",
        "initial-str",
        "step<0",
        "incremental-initial<0",
        "fixed<0",
        "fixed-nan",
        "immediate-then",
    ],
)
def test_bad_backoff_arguments_are_config_errors(make: Any, shown: str) -> None:
    """Invalid backoff arguments raise ``ConfigError`` naming what is wrong."""
    with pytest.raises(ConfigError, match=shown):
        make()


def test_backoffs_are_immutable_values() -> None:
    """Backoffs are frozen and compare by value."""
    b = backoff.exponential(initial=0.2)
    assert backoff.exponential(initial=0.2) == b
    assert hash(backoff.exponential(initial=0.2)) == hash(b)
    assert backoff.exponential(initial=0.3) != b
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.initial = 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("strategy", "text"),
    [
        (backoff.exponential(), "backoff.exponential(initial=0.1, multiplier=2.0, max=30.0)"),
        (backoff.incremental(), "backoff.incremental(initial=1.0, step=1.0, max=30.0)"),
        (backoff.fixed(2), "backoff.fixed(delay=2.0)"),
        (backoff.none(), "backoff.none()"),
        (backoff.schedule([1, 2]), "backoff.schedule([1.0, 2.0])"),
    ],
)
def test_backoff_repr(strategy: backoff.Backoff, text: str) -> None:
    """Each backoff's repr is the call that builds it."""
    assert text == repr(strategy)


@pytest.mark.parametrize(
    ("strategy", "cap"),
    [
        (backoff.exponential(max=7), 7.0),
        (backoff.incremental(max=9), 9.0),
        (backoff.fixed(3), 3.0),
        (backoff.schedule([1, 5, 2]), 5.0),
        (backoff.immediate(then=backoff.fixed(4)), 4.0),
        (backoff.none(), 0.0),
    ],
)
def test_cap_is_the_largest_delay(strategy: backoff.Backoff, cap: float) -> None:
    """``cap`` is the backoff's ``max`` (fixed: its delay, schedule: its largest delay)."""
    assert cap == cap_of(strategy)


# --- properties of backoffs ----------------------------------------------------------------

seconds = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)
retry_number = st.integers(min_value=1, max_value=10_000)


@st.composite
def backoffs(draw: st.DrawFn) -> backoff.Backoff:
    kind = draw(st.sampled_from(["exponential", "incremental", "fixed", "immediate", "schedule"]))
    if kind == "exponential":
        return backoff.exponential(
            initial=draw(seconds),
            multiplier=draw(st.floats(min_value=1, max_value=100)),
            max=draw(seconds),
        )
    if kind == "incremental":
        return backoff.incremental(initial=draw(seconds), step=draw(seconds), max=draw(seconds))
    if kind == "fixed":
        return backoff.fixed(draw(seconds))
    if kind == "schedule":
        return backoff.schedule(draw(st.lists(seconds, min_size=1, max_size=5)))
    return backoff.immediate(then=backoff.exponential(max=draw(seconds)))


@settings(max_examples=200, deadline=None)
@given(strategy=backoffs(), n=retry_number)
def test_delay_is_between_zero_and_the_cap(strategy: backoff.Backoff, n: int) -> None:
    """For every backoff and retry number, ``0 <= delay(n) <= cap``."""
    assert 0 <= strategy.delay(n) <= cap_of(strategy)


@settings(max_examples=100, deadline=None)
@given(
    initial=seconds,
    multiplier=st.floats(min_value=1, max_value=100),
    cap=seconds,
    n=retry_number,
)
def test_exponential_never_decreases(initial: float, multiplier: float, cap: float, n: int) -> None:
    """Exponential delays never shrink from one retry to the next."""
    b = backoff.exponential(initial=initial, multiplier=multiplier, max=cap)
    assert b.delay(n) <= b.delay(n + 1)


@settings(max_examples=100, deadline=None)
@given(initial=seconds, step=seconds, cap=seconds, n=retry_number)
def test_incremental_never_decreases(initial: float, step: float, cap: float, n: int) -> None:
    """Incremental delays never shrink from one retry to the next."""
    b = backoff.incremental(initial=initial, step=step, max=cap)
    assert b.delay(n) <= b.delay(n + 1)


# --- jitter --------------------------------------------------------------------------------


def test_ready_made_jitters_and_their_reprs() -> None:
    """``none``, ``full``, ``equal``, ``decorrelated`` are objects with readable reprs."""
    assert ["jitter.none", "jitter.full", "jitter.equal", "jitter.decorrelated"] == [
        repr(j) for j in (jitter.none, jitter.full, jitter.equal, jitter.decorrelated)
    ]
    assert "jitter.proportional(0.25)" == repr(jitter.proportional(0.25))


@pytest.mark.parametrize("factor", [0, -0.1, 1.5, math.nan, math.inf, "0.5", True])
def test_proportional_factor_must_be_in_zero_one(factor: Any) -> None:
    """``proportional(f)`` needs ``0 < f <= 1``: anything else is a ``ConfigError``."""
    with pytest.raises(ConfigError, match="factor"):
        jitter.proportional(factor)


def test_proportional_one_is_allowed() -> None:
    """``proportional(1)`` is the upper bound and valid."""
    assert (0.0, 4.0) == jitter.proportional(1).bounds(2.0, 2.0, 1.0, 10.0)


delays = st.floats(min_value=0, max_value=1e4, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(d=delays, n=st.integers(0, 2**32))
def test_full_jitter_bounds(d: float, n: int) -> None:
    """Full jitter is uniform in ``[0, d]``."""
    testing.seed(n)
    assert 0.0 <= jitter.full.apply(d, d, d, d) <= d


@settings(max_examples=200, deadline=None)
@given(d=delays, n=st.integers(0, 2**32))
def test_equal_jitter_bounds(d: float, n: int) -> None:
    """Equal jitter is ``d/2 + uniform(0, d/2)``: in ``[d/2, d]``."""
    testing.seed(n)
    assert d / 2 <= jitter.equal.apply(d, d, d, d) <= d


@settings(max_examples=200, deadline=None)
@given(d=delays, f=st.floats(min_value=0.001, max_value=1), n=st.integers(0, 2**32))
def test_proportional_jitter_bounds(d: float, f: float, n: int) -> None:
    """Proportional jitter is ``d * uniform(1-f, 1+f)``."""
    testing.seed(n)
    value = jitter.proportional(f).apply(d, d, d, d)
    assert d * (1 - f) * (1 - 1e-12) <= value <= d * (1 + f) * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0, max_value=100),
    extra=st.floats(min_value=0, max_value=100),
    previous_frac=st.floats(min_value=0, max_value=1),
    n=st.integers(0, 2**32),
)
def test_decorrelated_jitter_bounds(
    base: float, extra: float, previous_frac: float, n: int
) -> None:
    """Decorrelated jitter is ``uniform(base, previous*3)`` capped at the backoff's cap."""
    cap = base + extra
    previous = base + previous_frac * extra
    testing.seed(n)
    value = jitter.decorrelated.apply(0.0, previous, base, cap)
    assert base <= value <= min(cap, max(base, previous * 3))


@pytest.mark.parametrize("j", [jitter.none, jitter.full, jitter.equal, jitter.proportional(0.5)])
@settings(max_examples=50, deadline=None)
@given(d=delays, n=st.integers(0, 2**32))
def test_apply_stays_within_bounds(j: jitter.Jitter, d: float, n: int) -> None:
    """Every jitter's ``apply`` lies within its own ``bounds`` (what ``explain`` shows)."""
    testing.seed(n)
    lo, hi = j.bounds(d, d, d, d)
    assert lo * (1 - 1e-12) <= j.apply(d, d, d, d) <= hi * (1 + 1e-12)


# --- jitter inside a retrying call (seeded) ------------------------------------------------


def sleeps_of(clock: FakeClock, attempts: int, **fields: Any) -> list[float]:
    """The waits a call failing ``attempts`` times makes under ``fields``."""
    del clock.sleeps[:]
    fetch = retry(attempts=attempts, **fields)(FaultSequence(ConnectionError))
    with pytest.raises(ConnectionError):
        fetch()
    return list(clock.sleeps)


def test_full_jitter_in_a_call_uses_the_seeded_source(clock: FakeClock) -> None:
    """Under ``seed(n)`` the waits are ``uniform(0, delay(k))`` from ``random.Random(n)``."""
    b = backoff.exponential(initial=1.0, max=8.0)
    testing.seed(42)
    got = sleeps_of(clock, 6, backoff=b, jitter="full")
    rng = random.Random(42)
    assert [rng.uniform(0, b.delay(k)) for k in range(1, 6)] == got


def test_equal_jitter_in_a_call(clock: FakeClock) -> None:
    """Equal jitter waits ``delay/2 + uniform(0, delay/2)``."""
    b = backoff.exponential(initial=1.0, max=8.0)
    testing.seed(3)
    got = sleeps_of(clock, 5, backoff=b, jitter="equal")
    rng = random.Random(3)
    assert [b.delay(k) / 2 + rng.uniform(0, b.delay(k) / 2) for k in range(1, 5)] == got


def test_decorrelated_jitter_follows_the_contract(clock: FakeClock) -> None:
    """Decorrelated waits ``min(cap, uniform(base, previous*3))``, starting at base = delay(1)."""
    b = backoff.exponential(initial=0.5, multiplier=2.0, max=10.0)
    testing.seed(11)
    got = sleeps_of(clock, 10, backoff=b, jitter="decorrelated")
    rng = random.Random(11)
    previous, expected = 0.5, []
    for _ in range(9):
        previous = min(10.0, rng.uniform(0.5, previous * 3))
        expected.append(previous)
    assert expected == got


def test_decorrelated_with_fixed_backoff_is_capped_at_its_delay(clock: FakeClock) -> None:
    """With ``fixed(d)`` the cap is ``d``, so decorrelated waits are exactly ``d``."""
    assert [2.0] * 5 == sleeps_of(clock, 6, backoff=backoff.fixed(2), jitter="decorrelated")


def test_decorrelated_with_schedule_is_capped_at_its_largest_delay(clock: FakeClock) -> None:
    """With ``schedule`` the cap is its largest delay and the base its first."""
    got = sleeps_of(clock, 20, backoff=backoff.schedule([1, 5, 2]), jitter="decorrelated")
    assert all(1.0 <= d <= 5.0 for d in got)


def test_proportional_jitter_in_a_call(clock: FakeClock) -> None:
    """Proportional jitter waits ``delay * uniform(1-f, 1+f)``."""
    testing.seed(8)
    got = sleeps_of(clock, 4, backoff=backoff.fixed(10), jitter=jitter.proportional(0.2))
    rng = random.Random(8)
    assert [10 * rng.uniform(0.8, 1.2) for _ in range(3)] == got


def test_same_seed_same_waits(clock: FakeClock) -> None:
    """The same seed gives the same jittered waits; another seed gives others."""
    testing.seed(5)
    first = sleeps_of(clock, 6)
    testing.seed(5)
    second = sleeps_of(clock, 6)
    testing.seed(6)
    third = sleeps_of(clock, 6)
    assert first == second
    assert first != third


def test_no_jitter_waits_the_backoff_exactly(clock: FakeClock) -> None:
    """``jitter="none"`` waits exactly the backoff delays."""
    b = backoff.incremental(initial=1, step=2, max=6)
    assert [1.0, 3.0, 5.0, 6.0] == sleeps_of(clock, 5, backoff=b, jitter="none")


@pytest.mark.parametrize(
    "value",
    [
        backoff.exponential(initial=0.2, max=5),
        backoff.incremental(step=2),
        backoff.fixed(3),
        backoff.immediate(backoff.fixed(1)),
        backoff.none(),
        backoff.schedule([1, 2]),
        jitter.full,
        jitter.proportional(0.5),
    ],
)
def test_strategies_are_immutable_values_that_survive_pickling(value: Any) -> None:
    """Strategies refuse changes, compare by value and pickle to an equal value."""
    import pickle

    assert value == pickle.loads(pickle.dumps(value))
    assert hash(value) == hash(pickle.loads(pickle.dumps(value)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.anything = 1
    slots = type(value).__slots__
    if slots:
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(value, slots[0])


def test_a_classifier_shows_its_fields_in_its_repr() -> None:
    """The default repr of a frozen value names its class and fields."""
    from retryx._classifiers import PredicateClassifier
    from retryx._frozen import Frozen

    class Pair(Frozen):
        __slots__ = ("a", "b")

        def __init__(self, a: int, b: int) -> None:
            self._set("a", a)
            self._set("b", b)

    assert "Pair(a=1, b=2)" == repr(Pair(1, 2))
    assert Pair(1, 2) != (1, 2)
    assert "len" == repr(PredicateClassifier(len))
