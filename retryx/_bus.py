"""The event bus behind ``retryx.events``: the subscribers and ``emit``.

Kept apart from ``retryx.events`` because that module serves its records lazily
through a module ``__getattr__``, and CPython does not specialise attribute
loads on such a module: the hot path's ``_bus._subscribers`` check stays a
cheap, specialised load here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["clear", "emit", "subscribe"]

logger = logging.getLogger("retryx")


# A tuple swapped as a whole on (un)subscribe: emitting iterates a snapshot with
# no lock, and the hot path tests its truthiness only.
_subscribers: tuple[Callable[[Any], object], ...] = ()
_subscribers_lock = threading.Lock()  # writers only: emit reads the tuple lock-free


def subscribe(callback: Callable[[Any], object]) -> Callable[[], None]:
    """Call ``callback(event)`` for every retryx event; returns the unsubscribe function."""
    global _subscribers
    if not callable(callback):
        from ._errors import ConfigError

        raise ConfigError(f"events.subscribe: callback must be callable, got {callback!r}")
    with _subscribers_lock:  # read-modify-write: a concurrent change must not be lost
        _subscribers = (*_subscribers, callback)

    def unsubscribe() -> None:
        global _subscribers
        with _subscribers_lock:
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
    with _subscribers_lock:
        _subscribers = ()
