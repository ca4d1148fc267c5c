"""Events: what happened inside retryx calls, for subscribers.

``subscribe(callback)`` registers a global callback receiving every event
record and returns a function that unsubscribes it. Records are frozen
dataclasses sharing field names across kinds. A subscriber that raises is
logged on the ``retryx`` logger and skipped; the call goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeAlias

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


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """Attempt ``attempt`` failed with a transient fault; retrying after ``delay`` s.

    ``exception`` is ``None`` when the attempt returned a result that
    ``retry_if_result`` asked to retry (``cause`` is then ``"result"``).
    """

    name: str
    attempt: int
    delay: float
    exception: BaseException | None
    cause: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The call failed for good; ``reason`` is attempts, deadline, budget or permanent.

    ``exception`` is ``None`` when the last attempt returned a result that
    ``retry_if_result`` still matched: that result is returned to the caller.
    """

    name: str
    attempts: int
    elapsed: float
    exception: BaseException | None
    reason: str


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The call succeeded after ``attempts`` attempts."""

    name: str
    attempts: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class CircuitStateChanged:
    """Breaker ``breaker`` moved from ``old`` to ``new`` (closed, open, half_open)."""

    breaker: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class EndpointFailed:
    """Endpoint ``endpoint`` of a failover sweep failed (or was skipped by its breaker)."""

    name: str
    endpoint: Hashable
    exception: BaseException


@dataclass(frozen=True, slots=True)
class NestedRetry:
    """A retrying call ``inner`` started inside ``outer`` and deferred its retries."""

    outer: str
    inner: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The call was stored in a replay queue instead of failing."""

    name: str
    call_id: str
    exception: BaseException
    queue: Any


Event: TypeAlias = (
    RetryScheduled
    | GaveUp
    | Succeeded
    | CircuitStateChanged
    | EndpointFailed
    | NestedRetry
    | Deferred
)
"""Any event record a subscriber can receive; tell them apart with ``isinstance``."""

for _cls in (
    RetryScheduled,
    GaveUp,
    Succeeded,
    CircuitStateChanged,
    EndpointFailed,
    NestedRetry,
    Deferred,
):
    _cls.__module__ = "retryx.events"

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
