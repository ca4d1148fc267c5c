"""Prometheus metrics for retryx (extra ``retryx[prometheus]``).

``instrument(registry=None)`` records the same instruments as ``retryx.otel``
through ``prometheus_client``, named the Prometheus way (dots become
underscores, counters end in ``_total``, the duration in ``_seconds``):

- counters ``retryx_calls_total``, ``retryx_attempts_total``,
  ``retryx_retries_total``, ``retryx_give_ups_total``,
  ``retryx_breaker_transitions_total``;
- histogram ``retryx_call_duration_seconds``;
- labels ``name``, ``cause``, ``reason``, ``breaker``, ``state``, ``error_type``
  (the ``retryx.`` prefix dropped; a label an event does not carry is ``""``).

Nothing is imported or paid until ``instrument()`` is called; ``uninstrument()``
stops recording and unregisters the metrics from the registry.
"""

from __future__ import annotations

from typing import Any

from ._metrics import COUNTERS, HISTOGRAMS, Exporter

__all__ = ["instrument", "metric_name", "uninstrument"]

_exporter = Exporter()


def metric_name(instrument: str) -> str:
    """The Prometheus family name of a retryx instrument (``retryx.calls`` -> ``retryx_calls``)."""
    return instrument.replace(".", "_")


def _label(attr: str) -> str:
    return attr.removeprefix("retryx.").replace(".", "_")


class _PrometheusSink:
    def __init__(self, registry: Any) -> None:
        import prometheus_client

        if registry is None:
            registry = prometheus_client.REGISTRY
        self.registry = registry
        self.labels: dict[str, tuple[str, ...]] = {}
        self.metrics: dict[str, Any] = {}
        for name, (_, text, attrs) in COUNTERS.items():
            self.labels[name] = attrs
            self.metrics[name] = prometheus_client.Counter(
                metric_name(name), text, [_label(a) for a in attrs], registry=registry
            )
        for name, (_, text, attrs) in HISTOGRAMS.items():
            self.labels[name] = attrs
            self.metrics[name] = prometheus_client.Histogram(
                metric_name(name) + "_seconds", text, [_label(a) for a in attrs], registry=registry
            )

    def _child(self, instrument: str, attrs: dict[str, str]) -> Any:
        values = [str(attrs.get(a, "")) for a in self.labels[instrument]]
        return self.metrics[instrument].labels(*values)

    def add(self, instrument: str, value: float, attrs: dict[str, str]) -> None:
        self._child(instrument, attrs).inc(value)

    def record(self, instrument: str, value: float, attrs: dict[str, str]) -> None:
        self._child(instrument, attrs).observe(value)

    def close(self) -> None:
        for metric in self.metrics.values():
            self.registry.unregister(metric)


def instrument(registry: Any = None) -> None:
    """Start recording retryx metrics into ``registry`` (default: the global one).

    Idempotent: a second call while instrumented does nothing.
    """
    _exporter.start(lambda: _PrometheusSink(registry))


def uninstrument() -> None:
    """Stop recording and unregister retryx's metrics (harmless when not instrumented)."""
    sink = _exporter.active
    _exporter.stop()
    if isinstance(sink, _PrometheusSink):
        sink.close()
