"""OpenTelemetry metrics for retryx (extra ``retryx[otel]``).

``instrument()`` subscribes to retryx events and records them through
``opentelemetry-api``; ``uninstrument()`` stops. Nothing is imported or paid
until ``instrument()`` is called.

Instruments:

- counters ``retryx.calls``, ``retryx.attempts``, ``retryx.retries``,
  ``retryx.give_ups``, ``retryx.breaker.transitions``;
- histogram ``retryx.call.duration`` in seconds;
- attributes ``retryx.name``, ``retryx.cause``, ``retryx.reason``,
  ``retryx.breaker``, ``retryx.state``, and OpenTelemetry's semantic
  convention ``error.type`` (the exception's qualified name) on failures.
"""

from __future__ import annotations

import threading
from typing import Any

from . import _bus, events
from ._classify import classify

__all__ = ["instrument", "uninstrument"]

_lock = threading.Lock()
_active: _Instruments | None = None


def _error_type(exc: BaseException | None) -> str:
    if exc is None:
        return "result"
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


class _Instruments:
    def __init__(self, meter_provider: Any) -> None:
        from opentelemetry import metrics

        from . import __version__

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("retryx", __version__)
        self.calls = meter.create_counter(
            "retryx.calls", unit="{call}", description="Calls through retryx pipelines"
        )
        self.attempts = meter.create_counter(
            "retryx.attempts", unit="{attempt}", description="Attempts, the first included"
        )
        self.retries = meter.create_counter(
            "retryx.retries", unit="{retry}", description="Retries scheduled, by cause"
        )
        self.give_ups = meter.create_counter(
            "retryx.give_ups", unit="{call}", description="Calls given up, by reason and cause"
        )
        self.transitions = meter.create_counter(
            "retryx.breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes, by new state",
        )
        self.duration = meter.create_histogram(
            "retryx.call.duration", unit="s", description="Duration of whole calls, waits included"
        )
        self.unsubscribe = events.subscribe(self.on_event)

    def on_event(self, event: Any) -> None:
        if isinstance(event, events.Succeeded):
            attrs = {"retryx.name": event.name}
            self.calls.add(1, attrs)
            self.attempts.add(event.attempts, attrs)
            self.duration.record(event.elapsed, attrs)
        elif isinstance(event, events.RetryScheduled):
            self.retries.add(1, {"retryx.name": event.name, "retryx.cause": event.cause})
        elif isinstance(event, events.GaveUp):
            exc = event.exception
            cause = "result" if exc is None else classify(exc).cause
            self.give_ups.add(
                1,
                {
                    "retryx.name": event.name,
                    "retryx.reason": event.reason,
                    "retryx.cause": cause,
                    "error.type": _error_type(exc),
                },
            )
        elif isinstance(event, events.CircuitStateChanged):
            self.transitions.add(1, {"retryx.breaker": event.breaker, "retryx.state": event.new})

    def on_failure(self, name: str, attempts: int, elapsed: float, exc: BaseException) -> None:
        attrs = {"retryx.name": name, "error.type": _error_type(exc)}
        self.calls.add(1, attrs)
        self.attempts.add(attempts, attrs)
        self.duration.record(elapsed, attrs)


def instrument(meter_provider: Any = None) -> None:
    """Start recording retryx metrics (idempotent: a second call does nothing).

    Args:
        meter_provider: an OpenTelemetry ``MeterProvider``; default: the global one.
    """
    global _active
    with _lock:
        if _active is not None:
            return
        active = _Instruments(meter_provider)
        _bus._failure_hooks = (*_bus._failure_hooks, active.on_failure)
        _active = active


def uninstrument() -> None:
    """Stop recording retryx metrics (harmless when not instrumented)."""
    global _active
    with _lock:
        active = _active
        if active is None:
            return
        active.unsubscribe()
        _bus._failure_hooks = tuple(h for h in _bus._failure_hooks if h != active.on_failure)
        _active = None
