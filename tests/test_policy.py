"""``Policy``: validation (every ``ConfigError`` path), normalisation, equality, presets."""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Any

import pytest

from retryx import ConfigError, Policy, RetryBudget, backoff, classify, jitter


def _predicate(exc: BaseException) -> bool:
    return isinstance(exc, OSError)


# --- validation ----------------------------------------------------------------------------

BAD_VALUES: list[tuple[str, Any, str]] = [
    ("attempts", 0, "0"),
    ("attempts", -1, "-1"),
    ("attempts", 2.5, "2.5"),
    ("attempts", "3", "'3'"),
    ("attempts", True, "True"),
    ("backoff", "expo", "'expo'"),
    ("backoff", 42, "42"),
    ("backoff", backoff.exponential, "exponential"),
    ("jitter", "fuzzy", "'fuzzy'"),
    ("jitter", "proportional", "'proportional'"),
    ("jitter", 0.5, "0.5"),
    ("deadline", 0, "0"),
    ("deadline", -1.0, "-1.0"),
    ("deadline", math.nan, "nan"),
    ("deadline", "30", "'30'"),
    ("deadline", datetime.timedelta(0), "timedelta"),
    ("attempt_timeout", 0, "0"),
    ("attempt_timeout", -0.5, "-0.5"),
    ("attempt_timeout", math.nan, "nan"),
    ("attempt_timeout", "1", "'1'"),
    ("retry_on", 42, "42"),
    ("retry_on", (), "()"),
    ("retry_on", (ValueError, 42), "42"),
    ("retry_on", "NoSuchError", "'NoSuchError'"),
    ("retry_on", "os:no_such_name", "'os:no_such_name'"),
    ("retry_on", "os:getcwd", "'os:getcwd'"),
    ("retry_on", "no_such_module_xyz:Error", "'no_such_module_xyz:Error'"),
    ("retry_if_result", 5, "5"),
    ("retry_after_max", -1, "-1"),
    ("retry_after_max", math.nan, "nan"),
    ("retry_after_max", "60", "'60'"),
    ("retry_after_max", None, "None"),
    ("budget", 5, "5"),
    ("budget", "payments", "'payments'"),
    ("idempotent", 1, "1"),
    ("idempotent", "yes", "'yes'"),
    ("nested", "maybe", "'maybe'"),
    ("nested", None, "None"),
    ("name", "", "''"),
    ("name", 42, "42"),
]


@pytest.mark.parametrize(
    ("field", "value", "shown"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES]
)
def test_bad_value_raises_config_error_naming_field_and_value(
    field: str, value: Any, shown: str
) -> None:
    """Every invalid value raises ``ConfigError`` whose message names the field and the value."""
    with pytest.raises(ConfigError) as info:
        Policy(**{field: value})
    message = str(info.value)
    assert f"Policy.{field}" in message
    assert shown in message


def test_config_error_is_a_value_error() -> None:
    """``ConfigError`` is a ``ValueError``, so generic handlers catch it."""
    with pytest.raises(ValueError, match="attempts"):
        Policy(attempts=0)


def test_message_for_attempts_reads_well() -> None:
    """The ``attempts`` message is the one the style guide shows."""
    with pytest.raises(ConfigError) as info:
        Policy(attempts=0)
    assert "Policy.attempts must be >= 1, got 0" == str(info.value)


def test_unknown_field_raises_config_error() -> None:
    """An unknown keyword (a typo) raises ``ConfigError`` naming it."""
    with pytest.raises(ConfigError, match="atempts"):
        Policy(atempts=3)  # type: ignore[call-arg]


def test_positional_arguments_are_refused() -> None:
    """``Policy`` takes keyword arguments only."""
    with pytest.raises(ConfigError, match="keyword"):
        Policy(3)  # type: ignore[misc]


def test_backoff_and_jitter_constructor_errors_are_config_errors() -> None:
    """Bad backoff and jitter arguments fail when built, before any ``Policy``."""
    with pytest.raises(ConfigError, match="multiplier"):
        backoff.exponential(multiplier=0.5)
    with pytest.raises(ConfigError, match="factor"):
        jitter.proportional(0)


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("none", jitter.none),
        ("full", jitter.full),
        ("equal", jitter.equal),
        ("decorrelated", jitter.decorrelated),
    ],
)
def test_jitter_names_become_the_ready_made_objects(name: str, expected: jitter.Jitter) -> None:
    """``Policy(jitter="full").jitter is jitter.full``, and so on for every name."""
    assert expected is Policy(jitter=name).jitter


def test_jitter_none_value_means_no_jitter() -> None:
    """``jitter=None`` is normalised to ``jitter.none``."""
    assert jitter.none is Policy(jitter=None).jitter


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("exponential", backoff.exponential()),
        ("incremental", backoff.incremental()),
        ("fixed", backoff.fixed()),
        ("immediate", backoff.immediate()),
        ("none", backoff.none()),
    ],
)
def test_backoff_names_become_the_defaults(name: str, expected: backoff.Backoff) -> None:
    """A backoff name is normalised to that kind with its default settings."""
    assert expected == Policy(backoff=name).backoff


def test_defaults() -> None:
    """The defaults are the contract's: 3 attempts, exponential backoff, full jitter, classify."""
    p = Policy()
    assert 3 == p.attempts
    assert backoff.exponential() == p.backoff
    assert jitter.full is p.jitter
    assert None is p.deadline
    assert None is p.attempt_timeout
    assert classify is p.retry_on
    assert None is p.retry_if_result
    assert 60.0 == p.retry_after_max
    assert None is p.budget
    assert True is p.idempotent
    assert "defer" == p.nested
    assert None is p.name


def test_seconds_accept_ints_and_timedeltas() -> None:
    """Durations accept ints, floats and ``timedelta``s, stored as float seconds."""
    p = Policy(deadline=datetime.timedelta(seconds=90), attempt_timeout=2, retry_after_max=5)
    assert 90.0 == p.deadline
    assert isinstance(p.deadline, float)
    assert 2.0 == p.attempt_timeout
    assert 5.0 == p.retry_after_max


def test_infinite_durations_mean_none() -> None:
    """An infinite deadline or attempt timeout is the same as none."""
    assert None is Policy(deadline=math.inf).deadline
    assert None is Policy(attempt_timeout=math.inf).attempt_timeout
    assert Policy() == Policy(deadline=math.inf)


def test_retry_on_shapes_normalise_to_the_same_value() -> None:
    """A type, a one-type tuple, a list and a name give equal policies."""
    policies = {
        Policy(retry_on=OSError),
        Policy(retry_on=(OSError,)),
        Policy(retry_on=[OSError]),
        Policy(retry_on="OSError"),
    }
    assert 1 == len(policies)


# --- equality, hashing, immutability -------------------------------------------------------


def test_policies_compare_and_hash_by_value() -> None:
    """Two policies built from equal values are equal and hash alike."""
    a = Policy(attempts=5, backoff=backoff.fixed(2), jitter="equal", deadline=10, name="p")
    b = Policy(attempts=5, backoff=backoff.fixed(2.0), jitter=jitter.equal, deadline=10.0, name="p")
    assert a == b
    assert hash(a) == hash(b)
    assert a != a.replace(attempts=6)
    assert 2 == len({a, b, a.replace(name="q")})


def test_policies_with_a_budget_compare_by_budget_identity() -> None:
    """A ``RetryBudget`` is shared state: policies are equal only with the same budget object."""
    budget = RetryBudget()
    assert Policy(budget=budget) == Policy(budget=budget)
    assert Policy(budget=budget) != Policy(budget=RetryBudget())


def test_policies_with_predicates_compare_by_predicate() -> None:
    """Predicates compare by identity: the same function gives equal policies."""
    assert Policy(retry_on=_predicate) == Policy(retry_on=_predicate)
    assert Policy(retry_on=_predicate) != Policy(retry_on=lambda e: True)


def test_policy_is_frozen() -> None:
    """Assigning a field raises: a policy is shareable across threads without copying."""
    p = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.attempts = 5  # type: ignore[misc]


def test_policy_module_and_repr() -> None:
    """``Policy`` reports itself as ``retryx.Policy`` and shows its fields."""
    assert "retryx" == Policy.__module__
    assert repr(Policy(attempts=4)).startswith("Policy(attempts=4, backoff=backoff.exponential(")
    assert "jitter=jitter.full" in repr(Policy())


# --- replace -------------------------------------------------------------------------------


def test_replace_returns_a_validated_copy() -> None:
    """``replace`` returns a new policy with the changes, normalised; the original is unchanged."""
    p = Policy(attempts=3)
    q = p.replace(attempts=7, jitter="equal")
    assert 7 == q.attempts
    assert jitter.equal is q.jitter
    assert 3 == p.attempts
    assert jitter.full is p.jitter


def test_replace_validates_values() -> None:
    """A bad value in ``replace`` raises ``ConfigError`` naming the field."""
    with pytest.raises(ConfigError, match=r"Policy\.deadline.*-5"):
        Policy().replace(deadline=-5)


def test_replace_unknown_field() -> None:
    """An unknown field in ``replace`` raises ``ConfigError`` naming it."""
    with pytest.raises(ConfigError, match="atempts"):
        Policy().replace(atempts=3)


# --- presets -------------------------------------------------------------------------------


def test_interactive_preset_values() -> None:
    """``interactive()``: 3 attempts, exponential 0.1 s doubling to 1 s, full jitter, 5 s limit."""
    assert (
        Policy(
            attempts=3,
            backoff=backoff.exponential(initial=0.1, multiplier=2.0, max=1.0),
            jitter="full",
            deadline=5.0,
        )
        == Policy.interactive()
    )


def test_background_preset_values() -> None:
    """``background()``: 10 attempts, exponential 1 s doubling to 60 s, full jitter, 600 s limit."""
    assert (
        Policy(
            attempts=10,
            backoff=backoff.exponential(initial=1.0, multiplier=2.0, max=60.0),
            jitter="full",
            deadline=600.0,
        )
        == Policy.background()
    )


def test_presets_suit_their_use() -> None:
    """Interactive is shorter than background in attempts, delays and deadline."""
    fast, slow = Policy.interactive(), Policy.background()
    assert fast.attempts < slow.attempts
    assert fast.deadline is not None
    assert slow.deadline is not None
    assert fast.deadline < slow.deadline
    assert fast.backoff.delay(1) < slow.backoff.delay(1)  # type: ignore[union-attr]


def test_presets_accept_changes() -> None:
    """Presets take field changes, validated like ``replace``."""
    assert 2 == Policy.interactive(attempts=2).attempts
    assert "bg" == Policy.background(name="bg").name
    with pytest.raises(ConfigError, match="attempts"):
        Policy.interactive(attempts=0)
