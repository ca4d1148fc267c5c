"""Backoff strategies: the delay before retry *n*, before jitter.

Each constructor returns an immutable value with ``delay(n)`` (``n >= 1``) and
``cap``, the largest delay it can produce (used by decorrelated jitter and by
``retryx explain``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from ._errors import ConfigError, to_float
from ._frozen import Frozen

__all__ = [
    "Backoff",
    "exponential",
    "fixed",
    "immediate",
    "incremental",
    "none",
    "schedule",
]


@runtime_checkable
class Backoff(Protocol):
    """A backoff strategy: ``delay(n)`` seconds before retry ``n`` (n = 1, 2, ...)."""

    def delay(self, n: int) -> float:
        """Seconds to wait before retry ``n`` (``n >= 1``), before jitter.

        Raises:
            ValueError: when ``n < 1``.
        """
        ...


def _bad_n(n: int) -> ValueError:
    # Called only when n < 1: the check itself stays inline (delay() runs on every retry).
    return ValueError(f"backoff delay(n) needs n >= 1, got {n}")


def _check_delay(kind: str, name: str, value: float | timedelta) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"backoff.{kind}: {name} must be a number, got {value!r}")
    value = to_float(f"backoff.{kind}: {name}", value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"backoff.{kind}: {name} must be >= 0 and finite, got {value!r}")
    return float(value)


def _check_max(kind: str, value: float | timedelta | None) -> float:
    """``max=None`` means uncapped (``inf``); anything else is a finite delay."""
    return math.inf if value is None else _check_delay(kind, "max", value)


def _check_min(kind: str, value: float | timedelta, cap: float) -> float:
    floor = _check_delay(kind, "min", value)
    if floor > cap:
        raise ConfigError(f"backoff.{kind}: min must be <= max, got min={floor!r}, max={cap!r}")
    return floor


def _max_repr(cap: float) -> str:
    return "None" if cap == math.inf else repr(cap)


def _bounds(b: _Exponential | _Incremental) -> dict[str, Any]:
    """``max`` and ``min`` as the constructors take them (an uncapped ``max`` is ``None``)."""
    return {"max": None if b.max == math.inf else b.max, "min": b.min}


class _Exponential(Frozen):
    __slots__ = ("initial", "max", "min", "multiplier")
    kind = "exponential"
    initial: float
    multiplier: float
    max: float
    min: float

    def __init__(
        self,
        initial: float | timedelta = 0.1,
        multiplier: float = 2.0,
        max: float | timedelta | None = 30.0,
        min: float | timedelta = 0.0,
    ) -> None:
        self._set("initial", _check_delay("exponential", "initial", initial))
        m = _check_delay("exponential", "multiplier", multiplier)
        if m < 1:
            raise ConfigError(f"backoff.exponential: multiplier must be >= 1, got {m!r}")
        self._set("multiplier", m)
        self._set("max", _check_max("exponential", max))
        self._set("min", _check_min("exponential", min, self.max))

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        try:
            d = self.initial * self.multiplier ** (n - 1)
        except OverflowError:
            return self.max
        return self.min if d < self.min else (self.max if d > self.max else d)

    @property
    def cap(self) -> float:
        return self.max

    def arguments(self) -> dict[str, Any]:
        return {"initial": self.initial, "multiplier": self.multiplier, **_bounds(self)}

    def __repr__(self) -> str:
        floor = f", min={self.min}" if self.min else ""
        return (
            f"backoff.exponential(initial={self.initial}, multiplier={self.multiplier}, "
            f"max={_max_repr(self.max)}{floor})"
        )


class _Incremental(Frozen):
    __slots__ = ("initial", "max", "min", "step")
    kind = "incremental"
    initial: float
    step: float
    max: float
    min: float

    def __init__(
        self,
        initial: float | timedelta = 1.0,
        step: float | timedelta = 1.0,
        max: float | timedelta | None = 30.0,
        min: float | timedelta = 0.0,
    ) -> None:
        self._set("initial", _check_delay("incremental", "initial", initial))
        self._set("step", _check_delay("incremental", "step", step))
        self._set("max", _check_max("incremental", max))
        self._set("min", _check_min("incremental", min, self.max))

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        d = self.initial + self.step * (n - 1)
        return self.min if d < self.min else (self.max if d > self.max else d)

    @property
    def cap(self) -> float:
        return self.max

    def arguments(self) -> dict[str, Any]:
        return {"initial": self.initial, "step": self.step, **_bounds(self)}

    def __repr__(self) -> str:
        floor = f", min={self.min}" if self.min else ""
        return (
            f"backoff.incremental(initial={self.initial}, step={self.step}, "
            f"max={_max_repr(self.max)}{floor})"
        )


class _Fixed(Frozen):
    __slots__ = ("delay_s",)
    kind = "fixed"
    delay_s: float

    def __init__(self, delay_s: float | timedelta = 1.0) -> None:
        self._set("delay_s", _check_delay("fixed", "delay", delay_s))

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        return self.delay_s

    @property
    def cap(self) -> float:
        return self.delay_s

    def arguments(self) -> dict[str, Any]:
        return {"delay": self.delay_s}

    def __repr__(self) -> str:
        return f"backoff.fixed(delay={self.delay_s})"


class _Immediate(Frozen):
    __slots__ = ("then",)
    kind = "immediate"
    then: Backoff

    def __init__(self, then: Backoff | None = None) -> None:
        then = _Exponential() if then is None else then
        if not isinstance(then, Backoff):
            raise ConfigError(f"backoff.immediate: then must be a Backoff, got {then!r}")
        self._set("then", then)

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        return 0.0 if n == 1 else self.then.delay(n - 1)

    @property
    def cap(self) -> float:
        return cap_of(self.then)

    def arguments(self) -> dict[str, Any]:
        return {"then": self.then}

    def __repr__(self) -> str:
        return f"backoff.immediate(then={self.then!r})"


class _NoBackoff(Frozen):
    __slots__ = ()
    kind = "none"

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        return 0.0

    @property
    def cap(self) -> float:
        return 0.0

    def arguments(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "backoff.none()"


class _Schedule(Frozen):
    __slots__ = ("delays",)
    kind = "schedule"
    delays: tuple[float, ...]

    def __init__(self, delays: Sequence[float | timedelta]) -> None:
        if isinstance(delays, str | bytes) or not isinstance(delays, Sequence):
            raise ConfigError(f"backoff.schedule: delays must be a sequence, got {delays!r}")
        if not delays:
            raise ConfigError("backoff.schedule: delays must not be empty, got []")
        self._set("delays", tuple(_check_delay("schedule", "delays", d) for d in delays))

    def delay(self, n: int) -> float:
        if n < 1:
            raise _bad_n(n)
        return self.delays[min(n, len(self.delays)) - 1]

    @property
    def cap(self) -> float:
        return max(self.delays)

    def arguments(self) -> dict[str, Any]:
        return {"delays": list(self.delays)}

    def __repr__(self) -> str:
        return f"backoff.schedule({list(self.delays)!r})"


def exponential(
    initial: float | timedelta = 0.1,
    multiplier: float = 2.0,
    max: float | timedelta | None = 30.0,
    *,
    min: float | timedelta = 0.0,
) -> Backoff:
    """``min(max, initial * multiplier**(n-1))``: the usual choice for remote calls.

    ``max=None`` leaves it uncapped (bound it with a deadline); ``min`` floors
    every delay. Durations are seconds or ``datetime.timedelta``.
    """
    return _Exponential(initial=initial, multiplier=multiplier, max=max, min=min)


def incremental(
    initial: float | timedelta = 1.0,
    step: float | timedelta = 1.0,
    max: float | timedelta | None = 30.0,
    *,
    min: float | timedelta = 0.0,
) -> Backoff:
    """``min(max, initial + step*(n-1))``: a linear ramp.

    ``max=None`` leaves it uncapped; ``min`` floors every delay.
    """
    return _Incremental(initial=initial, step=step, max=max, min=min)


def fixed(delay: float | timedelta = 1.0) -> Backoff:
    """The same ``delay`` before every retry."""
    return _Fixed(delay_s=delay)


def immediate(then: Backoff | None = None) -> Backoff:
    """One immediate retry (0 s), then ``then.delay(n-1)`` (default: exponential)."""
    return _Immediate(then=_Exponential() if then is None else then)


def none() -> Backoff:
    """Always 0 s: retry at once (think twice: this hammers a struggling peer)."""
    return _NONE


def schedule(delays: Sequence[float | timedelta]) -> Backoff:
    """Explicit delays for retries 1, 2, ...; the last one repeats."""
    return _Schedule(delays)


_NONE = _NoBackoff()

# The backoff kinds, by the name the configuration and the command line give them. A
# kind's options are its constructor's parameters (``parameters``): the keys of its
# inline table in a configuration file and its ``--options`` on the command line.
KINDS: Mapping[str, Callable[..., Backoff]] = MappingProxyType(
    {
        "exponential": exponential,
        "incremental": incremental,
        "fixed": fixed,
        "immediate": immediate,
        "none": none,
        "schedule": schedule,
    }
)


def parameters(kind: str) -> tuple[str, ...]:
    """The names of the parameters of backoff ``kind``'s constructor, in order."""
    return tuple(inspect.signature(KINDS[kind]).parameters)


def required(kind: str) -> tuple[str, ...]:
    """The parameters backoff ``kind`` has no default for (``schedule``'s ``delays``)."""
    signature = inspect.signature(KINDS[kind])
    return tuple(n for n, p in signature.parameters.items() if p.default is p.empty)


# The kinds that have a default, for ``Policy(backoff="fixed")``: all but ``schedule``.
BY_NAME: Mapping[str, Callable[[], Backoff]] = MappingProxyType(
    {kind: make for kind, make in KINDS.items() if not required(kind)}
)


def arguments(b: Backoff) -> tuple[str, dict[str, Any]] | None:
    """The kind of a built-in backoff and the arguments that make it again with
    ``KINDS[kind](**arguments)``; ``None`` for any other backoff."""
    if not isinstance(
        b, _Exponential | _Incremental | _Fixed | _Immediate | _NoBackoff | _Schedule
    ):
        return None
    return b.kind, b.arguments()


def cap_of(b: Backoff) -> float:
    """The largest delay ``b`` can produce (``inf`` when a custom backoff does not say)."""
    cap = getattr(b, "cap", None)
    return math.inf if cap is None else float(cap)


def from_name(name: str, *, field: str = "backoff") -> Backoff:
    """The default backoff of a kind named by string."""
    try:
        return BY_NAME[name]()
    except KeyError:
        known = ", ".join(sorted(BY_NAME))
        raise ConfigError(f"{field}: unknown backoff {name!r} (known: {known})") from None
