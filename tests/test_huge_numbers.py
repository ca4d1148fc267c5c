"""Huge, infinite and NaN numbers: every constructor and the loader answer with a
``ConfigError`` naming the field, or accept the value; never another exception."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retryx import (
    CircuitBreaker,
    ConfigError,
    Policy,
    RetryBudget,
    backoff,
    configure,
    jitter,
    testing,
)
from retryx.testing import servers  # noqa: F401 - testing.servers for the table

NUMBERS = st.one_of(
    st.sampled_from([10**400, -(10**400), 2**63, 2**64 + 1, math.inf, -math.inf, math.nan]),
    st.integers(min_value=2**53),
    st.integers(max_value=-(2**53)),
    st.floats(allow_nan=True, allow_infinity=True),
)

# constructor name -> (field name in the message, how to build with that field).
CONSTRUCTORS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "Policy.attempts": ("attempts", lambda v: Policy(attempts=v)),
    "Policy.deadline": ("deadline", lambda v: Policy(deadline=v)),
    "Policy.attempt_timeout": ("attempt_timeout", lambda v: Policy(attempt_timeout=v)),
    "Policy.retry_after_max": ("retry_after_max", lambda v: Policy(retry_after_max=v)),
    "exponential.initial": ("initial", lambda v: backoff.exponential(initial=v)),
    "exponential.multiplier": ("multiplier", lambda v: backoff.exponential(multiplier=v)),
    "exponential.max": ("max", lambda v: backoff.exponential(max=v)),
    "incremental.initial": ("initial", lambda v: backoff.incremental(initial=v)),
    "incremental.step": ("step", lambda v: backoff.incremental(step=v)),
    "incremental.max": ("max", lambda v: backoff.incremental(max=v)),
    "fixed.delay": ("delay", lambda v: backoff.fixed(v)),
    "schedule.delays": ("delays", lambda v: backoff.schedule([1.0, v])),
    "exponential.min": ("min", lambda v: backoff.exponential(min=v, max=None)),
    "incremental.min": ("min", lambda v: backoff.incremental(min=v, max=None)),
    "jitter.proportional": ("proportional", lambda v: jitter.proportional(v)),
    "jitter.additive": ("max", lambda v: jitter.additive(v)),
    "CircuitBreaker.failure_threshold": (
        "failure_threshold",
        lambda v: CircuitBreaker("b", failure_threshold=v),
    ),
    "CircuitBreaker.failure_rate": ("failure_rate", lambda v: CircuitBreaker("b", failure_rate=v)),
    "CircuitBreaker.window": ("window", lambda v: CircuitBreaker("b", window=v)),
    "CircuitBreaker.window+rate": (
        "window",
        lambda v: CircuitBreaker("b", window=v, failure_rate=0.5),
    ),
    "CircuitBreaker.minimum_calls": (
        "minimum_calls",
        lambda v: CircuitBreaker("b", minimum_calls=v),
    ),
    "CircuitBreaker.recovery_timeout": (
        "recovery_timeout",
        lambda v: CircuitBreaker("b", recovery_timeout=v),
    ),
    "CircuitBreaker.half_open_max_calls": (
        "half_open_max_calls",
        lambda v: CircuitBreaker("b", half_open_max_calls=v),
    ),
    "CircuitBreaker.success_threshold": (
        "success_threshold",
        lambda v: CircuitBreaker("b", success_threshold=v),
    ),
    "RetryBudget.max_tokens": ("max_tokens", lambda v: RetryBudget(max_tokens=v)),
    "RetryBudget.token_ratio": ("token_ratio", lambda v: RetryBudget(token_ratio=v)),
    "inject_faults.rate": ("rate", lambda v: testing.inject_faults(v, ConnectionError)),
    "inject_faults.latency": (
        "latency",
        lambda v: testing.inject_faults(0.5, ConnectionError, latency=v),
    ),
    "servers.slow": ("delay", lambda v: testing.servers.slow(v)),
}


@pytest.mark.parametrize("constructor", list(CONSTRUCTORS))
@settings(max_examples=40, deadline=None)
@given(value=NUMBERS)
def test_every_constructor_answers_a_huge_or_odd_number_with_a_config_error(
    constructor: str, value: Any
) -> None:
    """A number out of range is a ConfigError naming the field; an accepted one is usable."""
    field, make = CONSTRUCTORS[constructor]
    try:
        made = make(value)
    except ConfigError as error:
        message = str(error)
    else:
        repr(made)  # an accepted value is a usable one
        return
    assert field in message


@settings(max_examples=15, deadline=None)
@given(value=st.sampled_from([10**400, -(10**400), 2**64]), key=st.sampled_from(range(9)))
def test_the_loader_answers_a_huge_int_with_a_config_error_naming_the_key(
    value: int, key: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A huge int anywhere in a configuration file is a ConfigError naming file, table, key."""
    table, name, line = [
        ("policies.p", "attempts", f"attempts = {value}"),
        ("policies.p", "deadline", f"deadline = {value}"),
        ("policies.p", "retry_after_max", f"retry_after_max = {value}"),
        ("policies.p", "backoff", f'backoff = {{ kind = "fixed", delay = {value} }}'),
        ("policies.p", "backoff", f'backoff = {{ kind = "exponential", max = {value} }}'),
        ("breakers.b", "window", f"window = {value}"),
        ("breakers.b", "recovery_timeout", f"recovery_timeout = {value}"),
        ("breakers.b", "failure_threshold", f"failure_threshold = {value}"),
        ("breakers.b", "success_threshold", f"success_threshold = {value}"),
    ][key]
    path = tmp_path_factory.mktemp("config") / "retryx.toml"
    path.write_text(f"[{table}]\n{line}\n")
    message = ""
    try:
        configure(path)
    except ConfigError as error:
        message = str(error)
    finally:
        configure(_empty(tmp_path_factory))
    if message:
        assert (True, True) == (str(path) in message, name in message), message


def _empty(factory: pytest.TempPathFactory) -> Path:
    path = factory.mktemp("empty") / "retryx.toml"
    path.write_text("")
    return path


def _config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retryx", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_check_prints_one_line_per_huge_int(tmp_path: Path) -> None:
    """``retryx config check`` reports each huge int in one line, without a traceback."""
    path = tmp_path / "retryx.toml"
    path.write_text(f"[breakers.db]\nwindow = {10**400}\n\n[policies.p]\ndeadline = {10**400}\n")
    done = _config_check(path)
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert (1, "", 2) == (done.returncode, done.stderr, len(errors))
    assert ["window", "deadline"] == [
        name for name in ("window", "deadline") if name in done.stdout
    ]


def test_config_check_reports_an_int_too_long_to_read(tmp_path: Path) -> None:
    """An int of more digits than Python converts is an error line, not a traceback."""
    path = tmp_path / "retryx.toml"
    path.write_text("[policies.p]\nattempts = 1" + "0" * 5000 + "\n")
    done = _config_check(path)
    assert (1, "") == (done.returncode, done.stderr)
    assert "invalid TOML" in done.stdout


def test_config_check_explains_policies_at_the_float_limits(tmp_path: Path) -> None:
    """Valid but extreme values (1e308 seconds) are explained, not crashed on."""
    path = tmp_path / "retryx.toml"
    path.write_text(
        "[policies.p]\nattempts = 3\nretry_after_max = 1e308\ndeadline = 1e308\n"
        'backoff = { kind = "exponential", initial = 1e-300, multiplier = 1e300, max = 1e308 }\n'
    )
    done = _config_check(path)
    assert (0, "") == (done.returncode, done.stderr)


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 10**5000, math.inf, math.nan],
    ids=["1e400", "-1e400", "1e5000", "inf", "nan"],
)
def test_the_replay_queue_and_redis_store_answer_a_huge_number_with_a_config_error(
    value: Any, tmp_path: Path
) -> None:
    """``ReplayQueue(claim_timeout=)`` and ``RedisStore(sync_interval=)`` refuse a number out
    of range with a ConfigError naming the field (a huge int was an OverflowError)."""
    from retryx.redis import RedisStore
    from retryx.replay import ReplayQueue

    with pytest.raises(ConfigError, match=r"ReplayQueue\.claim_timeout"):
        ReplayQueue(f"sqlite:///{tmp_path / 'q.db'}", claim_timeout=value)
    with pytest.raises(ConfigError, match=r"RedisStore\.sync_interval"):
        RedisStore("redis://127.0.0.1:1", sync_interval=value)
