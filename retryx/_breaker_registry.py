"""Every live ``CircuitBreaker`` of this process (``retryx.breakers()``)."""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker

__all__ = ["breakers", "register"]

# Every live breaker, by creation number (``breakers()``): weak, so a breaker goes
# when its last user does; creation order is kept for breakers of the same name.
_live: weakref.WeakValueDictionary[int, CircuitBreaker] = weakref.WeakValueDictionary()
_live_numbers = itertools.count()
_live_lock = threading.Lock()


def breakers() -> list[CircuitBreaker]:
    """Every live ``CircuitBreaker`` of this process, sorted by name.

    All of them: those made by hand, by ``@circuit_breaker`` (bare or with settings),
    the process-wide ones of ``@circuit_breaker("name")``, and failover's endpoint
    breakers. Held weakly: a breaker nobody uses any more is not listed. Breakers with
    the same name (and no shared store) are distinct and all listed, oldest first.
    """
    with _live_lock:
        found = list(_live.values())
    return sorted(found, key=lambda breaker: breaker.name)


def register(breaker: CircuitBreaker) -> None:
    """List ``breaker`` (a new one) among the live breakers."""
    with _live_lock:
        _live[next(_live_numbers)] = breaker
