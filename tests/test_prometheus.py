"""Prometheus metrics: the same instruments as OpenTelemetry, in a real registry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

import retryx
from retryx import prometheus
from retryx.testing import FaultSequence, fake_time

prometheus_client = pytest.importorskip("prometheus_client")


@pytest.fixture
def registry() -> Iterator[object]:
    """A fresh registry, instrumented for the test."""
    reg = prometheus_client.CollectorRegistry()
    prometheus.instrument(reg)
    try:
        yield reg
    finally:
        prometheus.uninstrument()


def value(registry: object, family: str, /, **labels: str) -> float | None:
    """One sample's value from the registry."""
    return registry.get_sample_value(family, labels)  # type: ignore[attr-defined,no-any-return]


def test_retried_and_failed_calls_are_counted(registry: object) -> None:
    """A call retried twice then successful and a call that gives up are both recorded."""
    seq = FaultSequence(ConnectionError(), TimeoutError(), "ok")
    flaky = retryx.retry(attempts=3, backoff="none", name="flaky")(seq)

    @retryx.retry(attempts=2, backoff="none", name="broken")
    def broken() -> None:
        raise ConnectionRefusedError("down")

    with fake_time():
        assert "ok" == flaky()
        with pytest.raises(ConnectionRefusedError):
            broken()

    assert 1 == value(registry, "retryx_calls_total", name="flaky", error_type="")
    assert 3 == value(registry, "retryx_attempts_total", name="flaky", error_type="")
    assert 1 == value(
        registry, "retryx_calls_total", name="broken", error_type="ConnectionRefusedError"
    )
    assert 2 == value(
        registry, "retryx_attempts_total", name="broken", error_type="ConnectionRefusedError"
    )
    assert 1 == value(registry, "retryx_retries_total", name="flaky", cause="timeout")
    assert 1 == value(
        registry,
        "retryx_give_ups_total",
        name="broken",
        reason="attempts",
        cause="connection",
        error_type="ConnectionRefusedError",
    )
    assert 1 == value(registry, "retryx_call_duration_seconds_count", name="flaky", error_type="")


def test_breaker_transitions_are_counted(registry: object) -> None:
    """Opening and closing a breaker counts transitions by breaker and new state."""
    breaker = retryx.CircuitBreaker("prom-db", failure_threshold=1)
    breaker.open()
    breaker.close()
    total = "retryx_breaker_transitions_total"
    assert 1 == value(registry, total, breaker="prom-db", state="open")
    assert 1 == value(registry, total, breaker="prom-db", state="closed")


def test_exposition_names_every_family(registry: object) -> None:
    """The text exposition carries every retryx family, with HELP lines."""
    text = prometheus_client.generate_latest(registry).decode()  # type: ignore[arg-type]
    for family in (
        "retryx_calls_total",
        "retryx_attempts_total",
        "retryx_retries_total",
        "retryx_give_ups_total",
        "retryx_breaker_transitions_total",
        "retryx_call_duration_seconds",
    ):
        assert f"# HELP {family.removesuffix('_total')}" in text


def test_uninstrument_unregisters_and_stops() -> None:
    """After ``uninstrument()`` nothing is recorded and the families are gone."""
    reg = prometheus_client.CollectorRegistry()
    prometheus.instrument(reg)
    prometheus.instrument(reg)  # idempotent
    ok = retryx.retry(name="prom-ok")(lambda: 1)
    ok()
    assert 1 == value(reg, "retryx_calls_total", name="prom-ok", error_type="")
    prometheus.uninstrument()
    prometheus.uninstrument()  # harmless
    ok()
    assert value(reg, "retryx_calls_total", name="prom-ok", error_type="") is None
    prometheus.instrument(reg)  # can start again: the families were unregistered
    prometheus.uninstrument()


def test_import_retryx_does_not_import_prometheus_client() -> None:
    """``import retryx`` leaves prometheus_client unimported (the extra is lazy)."""
    code = "import sys, retryx, retryx.prometheus; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()
