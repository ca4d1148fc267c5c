"""Events: what happened inside retryx calls, for subscribers.

``subscribe(callback)`` registers a global callback receiving every event
record and returns a function that unsubscribes it. Records are frozen
dataclasses sharing field names across kinds. A subscriber that raises is
logged on the ``retryx`` logger and skipped; the call goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = [
    "CircuitStateChanged",
    "Deferred",
    "EndpointFailed",
    "Event",
    "GaveUp",
    "NestedRetry",
    "RetryScheduled",
    "Succeeded",
    "subscribe",
]

logger = logging.getLogger("retryx")


if TYPE_CHECKING:
    from ._event_records import (
        CircuitStateChanged,
        Deferred,
        EndpointFailed,
        Event,
        GaveUp,
        NestedRetry,
        RetryScheduled,
        Succeeded,
    )

_RECORDS = frozenset(
    {
        "CircuitStateChanged",
        "Deferred",
        "EndpointFailed",
        "Event",
        "GaveUp",
        "NestedRetry",
        "RetryScheduled",
        "Succeeded",
    }
)


def __getattr__(name: str) -> Any:
    # The records are defined on first use (see _event_records), then cached here.
    if name in _RECORDS:
        from . import _event_records

        value = getattr(_event_records, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RECORDS})


# A tuple swapped as a whole on (un)subscribe: emitting iterates a snapshot with
# no lock, and the hot path tests its truthiness only.
_subscribers: tuple[Callable[[Any], object], ...] = ()


def subscribe(callback: Callable[[Any], object]) -> Callable[[], None]:
    """Call ``callback(event)`` for every retryx event; returns the unsubscribe function."""
    global _subscribers
    if not callable(callback):
        from ._errors import ConfigError

        raise ConfigError(f"events.subscribe: callback must be callable, got {callback!r}")
    _subscribers = (*_subscribers, callback)

    def unsubscribe() -> None:
        global _subscribers
        subs = list(_subscribers)
        if callback in subs:
            subs.remove(callback)
            _subscribers = tuple(subs)

    return unsubscribe


# Internal observers of calls that ended in an exception (no public event says
# that for callables without a retry layer): ``hook(name, attempts, elapsed, exc)``.
# Used by ``retryx.otel``; checked only on the failure path.
_failure_hooks: tuple[Callable[[str, int, float, BaseException], None], ...] = ()


def emit(event: Any) -> None:
    """Deliver ``event`` to every subscriber; one that raises is logged and skipped."""
    for callback in _subscribers:
        try:
            callback(event)
        except Exception:
            logger.exception("retryx: event subscriber %r raised; skipped", callback)


def clear() -> None:
    """Drop every subscriber (for tests)."""
    global _subscribers
    _subscribers = ()
