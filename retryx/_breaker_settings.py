"""The breaker's settings: their names (one list) and the checks of their values."""

from __future__ import annotations

import math
from typing import Any

from ._errors import MAX_INT, ConfigError, shown, to_float

__all__ = ["SETTINGS", "count", "rate", "seconds"]


def count(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as a count (an int >= ``minimum``), else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an int >= {minimum}, got {value!r}")
    if value > MAX_INT:
        raise ConfigError(f"{owner}.{name} must be <= 2**63-1, got {shown(value)}")
    return value


# The breaker's settings, in one place: copy(), a configure() reload (which replaces
# them and keeps the state) and @circuit_breaker(**settings)'s check all read it.
SETTINGS = (
    "failure_threshold",
    "failure_rate",
    "window",
    "minimum_calls",
    "recovery_timeout",
    "half_open_max_calls",
    "success_threshold",
    "counts",
)


def rate(owner: str, value: Any) -> float | None:
    """``failure_rate``: ``None``, or a number in (0, 1], else ``ConfigError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigError(f"{owner}.failure_rate must be in (0, 1], got {value!r}")
    return float(value)


def seconds(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite number of seconds >= 0, else ``ConfigError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value >= 0 and math.isfinite(to_float(f"{owner}.{name}", value)))
    ):
        raise ConfigError(f"{owner}.{name} must be >= 0 seconds, got {value!r}")
    return float(value)
