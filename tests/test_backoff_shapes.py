"""Backoff shapes the peers' users rely on: uncapped, floored, timedelta, additive jitter."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import retryx
from retryx import ConfigError, Policy, backoff, jitter
from retryx.testing import FaultSequence, fake_time, seed


def test_exponential_max_none_is_uncapped() -> None:
    """``max=None`` lets the delay grow without a cap."""
    b = backoff.exponential(initial=1.0, max=None)
    assert 2.0**40 == b.delay(41)
    assert math.inf == backoff.cap_of(b)


def test_exponential_max_none_overflow_is_inf() -> None:
    """An uncapped exponential past float range is an infinite delay, not an error."""
    assert math.inf == backoff.exponential(initial=1.0, multiplier=10.0, max=None).delay(400)


def test_incremental_max_none_is_uncapped() -> None:
    """``incremental(max=None)`` ramps without a cap."""
    assert 1001.0 == backoff.incremental(initial=1.0, step=1.0, max=None).delay(1001)


@pytest.mark.parametrize("make", [backoff.exponential, backoff.incremental])
def test_min_floors_every_delay(make: object) -> None:
    """``min=`` floors each backoff delay."""
    b = make(initial=0.01, min=0.5)  # type: ignore[operator]
    assert 0.5 == b.delay(1)
    assert b.delay(2) >= 0.5


def test_min_above_max_is_a_config_error() -> None:
    """A floor above the cap cannot be honoured: ``ConfigError`` naming ``min``."""
    with pytest.raises(ConfigError, match="min must be <= max"):
        backoff.exponential(max=1.0, min=2.0)


def test_timedelta_is_accepted_for_every_duration() -> None:
    """``datetime.timedelta`` works wherever seconds do."""
    b = backoff.exponential(
        initial=timedelta(milliseconds=100), max=timedelta(seconds=2), min=timedelta(0)
    )
    assert backoff.exponential(initial=0.1, max=2.0) == b
    assert backoff.fixed(2.0) == backoff.fixed(timedelta(seconds=2))
    assert backoff.schedule([1.0, 2.0]) == backoff.schedule([timedelta(seconds=1), 2.0])
    assert jitter.additive(0.5) == jitter.additive(timedelta(milliseconds=500))
    assert 1.5 == Policy(deadline=timedelta(seconds=1.5)).deadline


def test_reprs_say_uncapped_and_floor() -> None:
    """The repr shows ``max=None`` and a non-zero floor."""
    assert "backoff.exponential(initial=0.1, multiplier=2.0, max=None, min=0.2)" == repr(
        backoff.exponential(max=None, min=0.2)
    )


def test_additive_jitter_adds_up_to_max() -> None:
    """``jitter.additive(m)`` waits ``d + uniform(0, m)`` (stamina's shape)."""
    flaky = retryx.retry(attempts=4, backoff=backoff.fixed(1.0), jitter=jitter.additive(0.5))(
        FaultSequence(ConnectionError(), ConnectionError(), ConnectionError(), "ok")
    )
    with seed(7), fake_time() as clock:
        assert "ok" == flaky()
    assert 3 == len(clock.sleeps)
    assert all(1.0 <= s <= 1.5 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


@pytest.mark.parametrize("bad", [-1, math.inf, math.nan, "1", True])
def test_additive_jitter_rejects_bad_max(bad: object) -> None:
    """A negative, non-finite or non-number ``max`` is a ``ConfigError``."""
    with pytest.raises(ConfigError, match=r"jitter\.additive: max"):
        jitter.additive(bad)  # type: ignore[arg-type]


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 10),
    floor=st.floats(0, 5),
    n=st.integers(1, 2000),
)
def test_uncapped_floored_exponential_stays_in_bounds(
    initial: float, multiplier: float, floor: float, n: int
) -> None:
    """With ``max=None`` and ``min``, every delay is ``>= min`` and never NaN."""
    d = backoff.exponential(initial=initial, multiplier=multiplier, max=None, min=floor).delay(n)
    assert d >= floor
    assert not math.isnan(d)


def test_config_tables_take_min(tmp_path: Path) -> None:
    """A policy file may set ``min`` on exponential and incremental backoffs."""
    path = tmp_path / "retryx.toml"
    path.write_text(
        "[policies.p]\nbackoff = { kind = 'exponential', initial = 0.01, max = 5, min = 0.5 }\n"
    )
    retryx.configure(path)
    try:
        from retryx import _config

        assert backoff.exponential(initial=0.01, max=5, min=0.5) == (
            _config.snapshot().policy("p").backoff
        )
    finally:
        retryx.configure()
