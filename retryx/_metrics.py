"""What retryx measures, in one place: events -> instrument updates.

``retryx.otel`` and ``retryx.prometheus`` differ only in where the numbers go
(a ``Sink``); which instrument each event updates, with which attributes, is
decided here once.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from . import _bus, events
from ._classify import classify

__all__ = ["COUNTERS", "HISTOGRAMS", "Exporter", "Sink"]

# name -> (unit, description, attribute names); attribute names are the OTel ones.
COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "retryx.calls": ("{call}", "Calls through retryx pipelines", ("retryx.name", "error.type")),
    "retryx.attempts": ("{attempt}", "Attempts, the first included", ("retryx.name", "error.type")),
    "retryx.retries": ("{retry}", "Retries scheduled, by cause", ("retryx.name", "retryx.cause")),
    "retryx.give_ups": (
        "{call}",
        "Calls given up, by reason and cause",
        ("retryx.name", "retryx.reason", "retryx.cause", "error.type"),
    ),
    "retryx.breaker.transitions": (
        "{transition}",
        "Circuit breaker state changes, by new state",
        ("retryx.breaker", "retryx.state"),
    ),
}
HISTOGRAMS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "retryx.call.duration": (
        "s",
        "Duration of whole calls, waits included",
        ("retryx.name", "error.type"),
    ),
}


class Sink(Protocol):
    """Where measurements go: ``add`` to a counter, ``record`` into a histogram."""

    def add(self, instrument: str, value: float, attrs: dict[str, str]) -> None: ...

    def record(self, instrument: str, value: float, attrs: dict[str, str]) -> None: ...


def error_type(exc: BaseException | None) -> str:
    """OpenTelemetry's ``error.type``: the exception's qualified name (``result``: none)."""
    if exc is None:
        return "result"
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def on_event(sink: Sink, event: Any) -> None:
    """Update ``sink`` for one retryx event."""
    if isinstance(event, events.Succeeded):
        attrs = {"retryx.name": event.name}
        sink.add("retryx.calls", 1, attrs)
        sink.add("retryx.attempts", event.attempts, attrs)
        sink.record("retryx.call.duration", event.elapsed, attrs)
    elif isinstance(event, events.RetryScheduled):
        sink.add("retryx.retries", 1, {"retryx.name": event.name, "retryx.cause": event.cause})
    elif isinstance(event, events.GaveUp):
        exc = event.exception
        cause = "result" if exc is None else classify(exc).cause
        attrs = {
            "retryx.name": event.name,
            "retryx.reason": event.reason,
            "retryx.cause": cause,
            "error.type": error_type(exc),
        }
        sink.add("retryx.give_ups", 1, attrs)
    elif isinstance(event, events.CircuitStateChanged):
        attrs = {"retryx.breaker": event.breaker, "retryx.state": event.new}
        sink.add("retryx.breaker.transitions", 1, attrs)


def on_failure(sink: Sink, name: str, attempts: int, elapsed: float, exc: BaseException) -> None:
    """Update ``sink`` for a call that ended in an exception."""
    attrs = {"retryx.name": name, "error.type": error_type(exc)}
    sink.add("retryx.calls", 1, attrs)
    sink.add("retryx.attempts", attempts, attrs)
    sink.record("retryx.call.duration", elapsed, attrs)


class Exporter:
    """One active sink at a time, subscribed to events and to failed calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active: Sink | None = None
        self._unsubscribe: Any = None
        self._hook: Any = None

    def start(self, make_sink: Any) -> bool:
        """Subscribe the sink ``make_sink()`` builds; ``False`` when one is already active."""
        with self._lock:
            if self.active is not None:
                return False
            sink: Sink = make_sink()

            def hook(name: str, attempts: int, elapsed: float, exc: BaseException) -> None:
                on_failure(sink, name, attempts, elapsed, exc)

            self._unsubscribe = events.subscribe(lambda event: on_event(sink, event))
            self._hook = hook
            _bus._failure_hooks = (*_bus._failure_hooks, hook)
            self.active = sink
            return True

    def stop(self) -> None:
        """Unsubscribe the active sink (harmless when none is)."""
        with self._lock:
            if self.active is None:
                return
            self._unsubscribe()
            hook = self._hook
            _bus._failure_hooks = tuple(h for h in _bus._failure_hooks if h is not hook)
            self.active = None
