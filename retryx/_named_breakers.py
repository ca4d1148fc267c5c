"""The process-wide breakers of ``@circuit_breaker("name")``, built from ``[breakers.NAME]``."""

from __future__ import annotations

import threading

from ._breaker import CircuitBreaker

__all__ = ["named_breaker"]

_named: dict[str, tuple[int, CircuitBreaker]] = {}
_named_lock = threading.Lock()


def named_breaker(name: str) -> CircuitBreaker:
    """The process-wide breaker called ``name``, configured by ``[breakers.NAME]``."""
    from . import _config

    generation = _config.generation()
    entry = _named.get(name)
    if entry is not None and entry[0] == generation:
        return entry[1]
    with _named_lock:
        entry = _named.get(name)
        if entry is not None and entry[0] == _config.generation():
            return entry[1]  # made by another thread meanwhile
        snapshot = _config.snapshot()
        settings = snapshot.breaker(name)
        fresh = CircuitBreaker(name, **settings)
        if entry is None:
            breaker = fresh
        else:
            # configure() reloaded: take the new settings, keep the state.
            breaker = entry[1]
            breaker._take_settings(fresh)
        _named[name] = (snapshot.generation, breaker)
        return breaker


# --- the wrapper ---------------------------------------------------------------------------
