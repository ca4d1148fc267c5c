"""Events: what happened inside retryx calls, for subscribers.

``subscribe(callback)`` registers a global callback receiving every event
record and returns a function that unsubscribes it. Records are frozen
dataclasses sharing field names across kinds. A subscriber that raises is
logged on the ``retryx`` logger and skipped; the call goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "BreakerCall",
    "CircuitStateChanged",
    "Deferred",
    "EndpointFailed",
    "Event",
    "GaveUp",
    "NestedRetry",
    "RetryScheduled",
    "RetryWaited",
    "Succeeded",
    "subscribe",
]

from ._bus import clear, emit, subscribe

for _function in (clear, emit, subscribe):
    _function.__module__ = __name__


if TYPE_CHECKING:
    from ._event_records import (
        BreakerCall,
        CircuitStateChanged,
        Deferred,
        EndpointFailed,
        Event,
        GaveUp,
        NestedRetry,
        RetryScheduled,
        RetryWaited,
        Succeeded,
    )

_RECORDS = frozenset(__all__) - {"subscribe"}  # served by __getattr__ below


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
