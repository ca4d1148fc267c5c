"""Backoff strategies: the delay before retry *n*, before jitter.

Each constructor returns an immutable value with ``delay(n)`` (``n >= 1``) and
``cap``, the largest delay it can produce (used by decorrelated jitter and by
``retryx explain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ._errors import ConfigError

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


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"backoff delay(n) needs n >= 1, got {n}")


def _check_delay(kind: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"backoff.{kind}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"backoff.{kind}: {name} must be >= 0 and finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Exponential:
    initial: float = 0.1
    multiplier: float = 2.0
    max: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", _check_delay("exponential", "initial", self.initial))
        object.__setattr__(self, "max", _check_delay("exponential", "max", self.max))
        m = _check_delay("exponential", "multiplier", self.multiplier)
        if m < 1:
            raise ConfigError(f"backoff.exponential: multiplier must be >= 1, got {m!r}")
        object.__setattr__(self, "multiplier", m)

    def delay(self, n: int) -> float:
        _check_n(n)
        try:
            return min(self.max, self.initial * self.multiplier ** (n - 1))
        except OverflowError:
            return self.max

    @property
    def cap(self) -> float:
        return self.max

    def __repr__(self) -> str:
        return (
            f"backoff.exponential(initial={self.initial}, multiplier={self.multiplier}, "
            f"max={self.max})"
        )


@dataclass(frozen=True, slots=True)
class _Incremental:
    initial: float = 1.0
    step: float = 1.0
    max: float = 30.0

    def __post_init__(self) -> None:
        for name in ("initial", "step", "max"):
            object.__setattr__(self, name, _check_delay("incremental", name, getattr(self, name)))

    def delay(self, n: int) -> float:
        _check_n(n)
        return min(self.max, self.initial + self.step * (n - 1))

    @property
    def cap(self) -> float:
        return self.max

    def __repr__(self) -> str:
        return f"backoff.incremental(initial={self.initial}, step={self.step}, max={self.max})"


@dataclass(frozen=True, slots=True)
class _Fixed:
    delay_s: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay_s", _check_delay("fixed", "delay", self.delay_s))

    def delay(self, n: int) -> float:
        _check_n(n)
        return self.delay_s

    @property
    def cap(self) -> float:
        return self.delay_s

    def __repr__(self) -> str:
        return f"backoff.fixed(delay={self.delay_s})"


@dataclass(frozen=True, slots=True)
class _Immediate:
    then: Backoff = field(default_factory=lambda: _Exponential())

    def __post_init__(self) -> None:
        if not isinstance(self.then, Backoff):
            raise ConfigError(f"backoff.immediate: then must be a Backoff, got {self.then!r}")

    def delay(self, n: int) -> float:
        _check_n(n)
        return 0.0 if n == 1 else self.then.delay(n - 1)

    @property
    def cap(self) -> float:
        return cap_of(self.then)

    def __repr__(self) -> str:
        return f"backoff.immediate(then={self.then!r})"


@dataclass(frozen=True, slots=True)
class _NoBackoff:
    def delay(self, n: int) -> float:
        _check_n(n)
        return 0.0

    @property
    def cap(self) -> float:
        return 0.0

    def __repr__(self) -> str:
        return "backoff.none()"


@dataclass(frozen=True, slots=True)
class _Schedule:
    delays: tuple[float, ...]

    def __post_init__(self) -> None:
        if isinstance(self.delays, str | bytes) or not isinstance(self.delays, Sequence):
            raise ConfigError(f"backoff.schedule: delays must be a sequence, got {self.delays!r}")
        if not self.delays:
            raise ConfigError("backoff.schedule: delays must not be empty, got []")
        object.__setattr__(
            self, "delays", tuple(_check_delay("schedule", "delays", d) for d in self.delays)
        )

    def delay(self, n: int) -> float:
        _check_n(n)
        return self.delays[min(n, len(self.delays)) - 1]

    @property
    def cap(self) -> float:
        return max(self.delays)

    def __repr__(self) -> str:
        return f"backoff.schedule({list(self.delays)!r})"


def exponential(initial: float = 0.1, multiplier: float = 2.0, max: float = 30.0) -> Backoff:
    """``min(max, initial * multiplier**(n-1))``: the usual choice for remote calls."""
    return _Exponential(initial=initial, multiplier=multiplier, max=max)


def incremental(initial: float = 1.0, step: float = 1.0, max: float = 30.0) -> Backoff:
    """``min(max, initial + step*(n-1))``: a linear ramp."""
    return _Incremental(initial=initial, step=step, max=max)


def fixed(delay: float = 1.0) -> Backoff:
    """The same ``delay`` before every retry."""
    return _Fixed(delay_s=delay)


def immediate(then: Backoff | None = None) -> Backoff:
    """One immediate retry (0 s), then ``then.delay(n-1)`` (default: exponential)."""
    return _Immediate(then=_Exponential() if then is None else then)


def none() -> Backoff:
    """Always 0 s: retry at once (think twice: this hammers a struggling peer)."""
    return _NONE


def schedule(delays: Sequence[float]) -> Backoff:
    """Explicit delays for retries 1, 2, ...; the last one repeats."""
    return _Schedule(delays=delays)  # type: ignore[arg-type]


_NONE = _NoBackoff()

BY_NAME: dict[str, Callable[[], Backoff]] = {
    "exponential": exponential,
    "incremental": incremental,
    "fixed": fixed,
    "immediate": immediate,
    "none": none,
}


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
