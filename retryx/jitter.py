"""Jitter: randomisation applied to each backoff delay, so clients spread out.

``none``, ``full``, ``equal`` and ``decorrelated`` are ready-made objects;
``proportional(f)`` and ``additive(max)`` build one. Each has ``apply(delay, previous, base, cap)``
returning the jittered delay and ``bounds(...)`` returning its (min, max), used
by ``retryx explain``. Randomness comes from retryx's one random source,
seedable with ``retryx.testing.seed``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from . import _clock
from ._errors import ConfigError, to_float
from ._frozen import Frozen

__all__ = ["Jitter", "additive", "decorrelated", "equal", "full", "none", "proportional"]


@runtime_checkable
class Jitter(Protocol):
    """A jitter strategy.

    ``apply`` gets the backoff delay ``delay``, the previous jittered delay
    ``previous`` (``base`` before the first retry), the backoff's first delay
    ``base`` and its largest delay ``cap``.
    """

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        """The jittered delay in seconds, drawn from retryx's random source."""
        ...

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        """The smallest and largest delay ``apply`` can return for these arguments."""
        ...


class _NoJitter(Frozen):
    __slots__ = ()

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        return delay

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (delay, delay)

    def __repr__(self) -> str:
        return "jitter.none"


class _FullJitter(Frozen):
    __slots__ = ()

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        return _clock.rng.uniform(0.0, delay)

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (0.0, delay)

    def __repr__(self) -> str:
        return "jitter.full"


class _EqualJitter(Frozen):
    __slots__ = ()

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        return delay / 2 + _clock.rng.uniform(0.0, delay / 2)

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (delay / 2, delay)

    def __repr__(self) -> str:
        return "jitter.equal"


class _DecorrelatedJitter(Frozen):
    __slots__ = ()

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        hi = max(base, previous * 3)
        return min(cap, _clock.rng.uniform(base, hi))

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (min(cap, base), min(cap, max(base, previous * 3)))

    def __repr__(self) -> str:
        return "jitter.decorrelated"


class _Proportional(Frozen):
    __slots__ = ("factor",)
    factor: float

    def __init__(self, factor: float) -> None:
        f = factor
        if isinstance(f, bool) or not isinstance(f, int | float) or not (0 < f <= 1):
            raise ConfigError(f"jitter.proportional: factor must be in (0, 1], got {f!r}")
        self._set("factor", float(f))

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        f = self.factor
        return delay * _clock.rng.uniform(1 - f, 1 + f)

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (delay * (1 - self.factor), delay * (1 + self.factor))

    def __repr__(self) -> str:
        return f"jitter.proportional({self.factor})"


class _Additive(Frozen):
    __slots__ = ("max",)
    max: float

    def __init__(self, max: float | timedelta) -> None:
        m = max.total_seconds() if isinstance(max, timedelta) else max
        if isinstance(m, bool) or not isinstance(m, int | float) or not (0 <= m < math.inf):
            raise ConfigError(f"jitter.additive: max must be >= 0 and finite, got {max!r}")
        self._set("max", to_float("jitter.additive: max", m))

    def apply(self, delay: float, previous: float, base: float, cap: float) -> float:
        return delay + _clock.rng.uniform(0.0, self.max)

    def bounds(self, delay: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return (delay, delay + self.max)

    def __repr__(self) -> str:
        return f"jitter.additive({self.max})"


none: Jitter = _NoJitter()
"""No jitter: the backoff delay as is."""
full: Jitter = _FullJitter()
"""Uniform in ``[0, d]``: the best spread (AWS's "full jitter")."""
equal: Jitter = _EqualJitter()
"""``d/2 + uniform(0, d/2)``: keeps at least half the delay."""
decorrelated: Jitter = _DecorrelatedJitter()
"""``min(cap, uniform(base, previous*3))``: grows from the last delay, not from n."""


def additive(max: float | timedelta) -> Jitter:
    """``d + uniform(0, max)``: stamina's shape (its ``wait_jitter``); seconds or ``timedelta``."""
    return _Additive(max)


def proportional(f: float) -> Jitter:
    """``d * uniform(1-f, 1+f)`` with ``0 < f <= 1``."""
    return _Proportional(f)


BY_NAME: dict[str, Jitter] = {
    "none": none,
    "full": full,
    "equal": equal,
    "decorrelated": decorrelated,
}

# Every jitter kind, by the name the configuration and the command line give it: the
# ready-made ones above and those built from options. A kind's options are its class's
# parameters (``parameters``): the keys of its inline table in a configuration file,
# ``--jitter-OPTION`` on the command line.
KINDS: Mapping[str, Callable[..., Jitter]] = MappingProxyType(
    {
        **{name: type(ready) for name, ready in BY_NAME.items()},
        "proportional": _Proportional,
        "additive": _Additive,
    }
)


def parameters(kind: str) -> tuple[str, ...]:
    """The names of the parameters jitter ``kind`` is built from, in order."""
    return tuple(inspect.signature(KINDS[kind]).parameters)


def required(kind: str) -> tuple[str, ...]:
    """The parameters jitter ``kind`` has no default for."""
    signature = inspect.signature(KINDS[kind])
    return tuple(n for n, p in signature.parameters.items() if p.default is p.empty)


def make(kind: str, **options: Any) -> Jitter:
    """Jitter ``kind`` built from ``options``: the ready-made object for a kind without any.

    Raises:
        ConfigError: for a bad option value.
    """
    if not options and kind in BY_NAME:
        return BY_NAME[kind]
    return KINDS[kind](**options)


def from_name(name: str, *, field: str = "jitter") -> Jitter:
    """The ready-made jitter object named by ``name``."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise ConfigError(f"{field}: unknown jitter {name!r} (known: {known})") from None
