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

from typing import Any

from ._metrics import COUNTERS, HISTOGRAMS, Exporter

__all__ = ["instrument", "uninstrument"]

_exporter = Exporter()


class _OTelSink:
    """The instruments of one meter provider."""

    def __init__(self, meter_provider: Any) -> None:
        from opentelemetry import metrics

        from . import __version__

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("retryx", __version__)
        self.counters = {
            name: meter.create_counter(name, unit=unit, description=text)
            for name, (unit, text, _) in COUNTERS.items()
        }
        self.histograms = {
            name: meter.create_histogram(name, unit=unit, description=text)
            for name, (unit, text, _) in HISTOGRAMS.items()
        }

    def add(self, instrument: str, value: float, attrs: dict[str, str]) -> None:
        self.counters[instrument].add(value, attrs)

    def record(self, instrument: str, value: float, attrs: dict[str, str]) -> None:
        self.histograms[instrument].record(value, attrs)


def instrument(meter_provider: Any = None) -> None:
    """Start recording retryx metrics (idempotent: a second call does nothing).

    Args:
        meter_provider: an OpenTelemetry ``MeterProvider``; default: the global one.
    """
    _exporter.start(lambda: _OTelSink(meter_provider))


def uninstrument() -> None:
    """Stop recording retryx metrics (harmless when not instrumented)."""
    _exporter.stop()
