"""OpenTelemetry metrics through the SDK's in-memory reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import retryx
from retryx import otel
from retryx.testing import FaultSequence, fake_time

sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """An SDK meter provider with an in-memory reader, instrumented for the test."""
    memory = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[memory])
    otel.instrument(provider)
    try:
        yield memory
    finally:
        otel.uninstrument()
        provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Metric name -> [(attributes, value)] from one collection."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)
                    found.setdefault(metric.name, []).append((dict(point.attributes), value))
    return found


def test_counters_and_histogram_for_retried_and_failed_calls(
    reader: InMemoryMetricReader,
) -> None:
    """A call retried twice then successful and a call that gives up are both recorded."""

    @retryx.retry(attempts=3, backoff="none")
    def flaky() -> str:
        return seq()

    seq = FaultSequence(ConnectionError(), TimeoutError(), "ok")

    @retryx.retry(attempts=2, backoff="none")
    def broken() -> None:
        raise ConnectionRefusedError("down")

    with fake_time():
        assert "ok" == flaky()
        with pytest.raises(ConnectionRefusedError):
            broken()

    got = points(reader)
    calls = {a["retryx.name"]: v for a, v in got["retryx.calls"]}
    assert {flaky.__qualname__: 1, broken.__qualname__: 1} == calls
    attempts = {a["retryx.name"]: v for a, v in got["retryx.attempts"]}
    assert {flaky.__qualname__: 3, broken.__qualname__: 2} == attempts
    retries = {(a["retryx.name"], a["retryx.cause"]): v for a, v in got["retryx.retries"]}
    assert 1 == retries[(flaky.__qualname__, "connection")]
    assert 1 == retries[(flaky.__qualname__, "timeout")]
    assert 1 == retries[(broken.__qualname__, "connection")]
    (give_up_attrs, give_ups), *_ = got["retryx.give_ups"]
    assert 1 == give_ups
    assert "attempts" == give_up_attrs["retryx.reason"]
    assert "connection" == give_up_attrs["retryx.cause"]
    assert "ConnectionRefusedError" == give_up_attrs["error.type"]
    durations = {a["retryx.name"]: v for a, v in got["retryx.call.duration"]}
    assert 1 == durations[flaky.__qualname__][0]


def test_breaker_transitions_are_counted(reader: InMemoryMetricReader) -> None:
    """Opening and closing a breaker counts transitions by breaker and new state."""
    breaker = retryx.CircuitBreaker("db", failure_threshold=1)
    breaker.open()
    breaker.close()
    got = points(reader)
    states = {
        (a["retryx.breaker"], a["retryx.state"]): v for a, v in got["retryx.breaker.transitions"]
    }
    assert {("db", "open"): 1, ("db", "closed"): 1} == states


def test_instrument_twice_is_harmless_and_uninstrument_stops() -> None:
    """A second instrument() records nothing twice; after uninstrument() nothing is recorded."""
    memory = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[memory])

    @retryx.retry
    def ok() -> int:
        return 1

    otel.instrument(provider)
    otel.instrument(provider)
    try:
        ok()
    finally:
        otel.uninstrument()
    otel.uninstrument()
    ok()
    got = points(memory)
    assert [({"retryx.name": ok.__qualname__}, 1)] == got["retryx.calls"]
    provider.shutdown()


def test_a_failing_call_without_retry_layer_is_counted(reader: InMemoryMetricReader) -> None:
    """A breaker-only callable that raises still counts as a call with its error type."""

    @retryx.circuit_breaker
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    got = points(reader)
    (attrs, value), *_ = got["retryx.calls"]
    assert 1 == value
    assert "KeyError" == attrs["error.type"]


def test_import_retryx_does_not_import_opentelemetry() -> None:
    """``import retryx`` leaves opentelemetry unimported (the extra is lazy)."""
    code = "import sys, retryx; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()
