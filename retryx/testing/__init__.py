"""Tools for testing code that uses retryx: a fake clock, seeded jitter, scripted faults,
chaos injection and loopback fault servers.

``fake_time()`` swaps the one clock every retryx wait goes through, so tests never
sleep for real; the pytest plugin offers it as the ``retryx_clock`` fixture.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, overload

from .. import _clock
from .._errors import ConfigError
from .._switches import test_mode

if TYPE_CHECKING:
    from . import servers as servers
    from ._chaos import inject_faults as inject_faults

__all__ = [
    "FakeClock",
    "FaultSequence",
    "fake_time",
    "inject_faults",
    "seed",
    "servers",
    "test_mode",
]


class FakeClock:
    """A clock that moves only when retryx waits or the test calls ``advance``.

    ``sleeps`` lists every wait retryx decided, zero waits included. The monotonic
    clock starts at ``start``; the wall clock (``now()``, for HTTP-dates) at ``wall``,
    by default the real time in whole seconds, and both move together.
    """

    def __init__(self, start: float = 1000.0, wall: float | None = None) -> None:
        # The wall clock starts at the real time (whole seconds, like HTTP-dates), so a
        # real server's Retry-After date means what it says.
        wall = float(int(time.time())) if wall is None else float(wall)
        self._t = float(start)
        self._wall_offset = wall - float(start)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Seconds on the fake monotonic clock."""
        return self._t

    def now(self) -> float:
        """Fake wall time (epoch seconds), moving with the monotonic clock."""
        return self._t + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (breaker recovery timeouts, deadlines)."""
        if seconds < 0:
            raise ConfigError(f"FakeClock.advance: seconds must be >= 0, got {seconds!r}")
        self._t += seconds

    def sleep(self, delay: float) -> None:
        """Record the wait and move time, without sleeping."""
        self.sleeps.append(delay)
        self._t += delay

    async def async_sleep(self, delay: float) -> None:
        """Record the wait, move time, and yield to the event loop once (asyncio or trio)."""
        self.sleeps.append(delay)
        self._t += delay
        await _clock.library_sleep(0)

    def __repr__(self) -> str:
        return f"<FakeClock t={self._t:.3f} sleeps={len(self.sleeps)}>"


@contextmanager
def fake_time(start: float = 1000.0) -> Iterator[FakeClock]:
    """Drive every retryx wait and clock read from a ``FakeClock`` inside the block."""
    clock = FakeClock(start)
    saved = (_clock.monotonic, _clock.now, _clock.sleep, _clock.async_sleep, _clock.zero_wait)
    _clock.monotonic = clock.monotonic
    _clock.now = clock.now
    _clock.sleep = clock.sleep
    _clock.async_sleep = clock.async_sleep
    _clock.zero_wait = clock.sleeps.append
    try:
        yield clock
    finally:
        (
            _clock.monotonic,
            _clock.now,
            _clock.sleep,
            _clock.async_sleep,
            _clock.zero_wait,
        ) = saved


class seed:
    """Seed retryx's random source (jitter, random failover order, fault injection).

    Called plainly it sets the seed; used as a context manager it restores the
    previous random state on exit.
    """

    def __init__(self, n: int) -> None:
        self._saved = _clock.rng.getstate()
        _clock.rng.seed(n)

    def __enter__(self) -> random.Random:
        return _clock.rng

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _clock.rng.setstate(self._saved)


T = TypeVar("T")


class FaultSequence(Generic[T]):
    """A callable that produces each outcome in turn, then repeats the last one.

    Exception instances are raised, exception classes are instantiated and
    raised, other values are returned. Accepts any arguments; ``calls`` counts
    the calls and ``args`` records the arguments of each.

    Typed by the values it returns: ``FaultSequence[str](ConnectionError(), "ok")``
    returns ``str`` (without the subscript, mypy infers ``str`` and pyright
    ``ConnectionError | str``); only exceptions: it never returns (``Never``).
    """

    @overload
    def __init__(
        self: FaultSequence[Never], *outcomes: BaseException | type[BaseException]
    ) -> None: ...
    @overload
    def __init__(self, *outcomes: T | BaseException | type[BaseException]) -> None: ...
    def __init__(self, *outcomes: Any) -> None:
        if not outcomes:
            raise ConfigError("FaultSequence needs at least one outcome")
        self.outcomes = outcomes
        self.calls = 0
        self.args: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __call__(self, *args: object, **kwargs: object) -> T:
        index = min(self.calls, len(self.outcomes) - 1)
        self.calls += 1
        self.args.append((args, kwargs))
        outcome = self.outcomes[index]
        if isinstance(outcome, type) and issubclass(outcome, BaseException):
            raise outcome()
        if isinstance(outcome, BaseException):
            raise outcome
        value: T = outcome
        return value

    def __repr__(self) -> str:
        return f"<FaultSequence calls={self.calls} outcomes={len(self.outcomes)}>"


def __getattr__(name: str) -> Any:
    # Loaded on first use: the servers start threads and sockets only when asked.
    if name == "servers":
        import importlib

        return importlib.import_module(".servers", __name__)
    if name == "inject_faults":
        from ._chaos import inject_faults

        return inject_faults
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
