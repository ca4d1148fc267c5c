"""The public surface: exactly the contract's names, exported classes named ``retryx.X``,
and an ``import retryx`` that stays light.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import retryx

ROOT = Path(__file__).resolve().parents[1]

CONTRACT_NAMES = {
    # decorators
    "retry",
    "failover",
    "circuit_breaker",
    "fallback",
    # value objects / shared objects
    "Policy",
    "CircuitBreaker",
    "RetryBudget",
    # fault classification
    "Fault",
    "classify",
    "Transient",
    "Permanent",
    # errors
    "RetryxError",
    "ConfigError",
    "CircuitOpenError",
    "AllEndpointsFailed",
    "NestedRetryError",
    # functions
    "describe",
    "stats",
    "configure",
    "current",
    "context",
    "carry",
    "attempts",  # version 2, section 17: retry blocks
    "set_active",
    "override",
    "breakers",  # section 17: every live breaker
    # failover: the default of the endpoint parameter
    "ENDPOINT",
    # modules
    "backoff",
    "jitter",
    "events",
    "testing",
    "sockets",
    "replay",
    "redis",
    "otel",
    "prometheus",
    "faults",  # version 2, section 14
}

MODULES = {
    *("backoff", "jitter", "events", "testing", "sockets", "replay", "faults"),
    *("redis", "otel", "prometheus"),
}
CLASSES = {
    "Policy",
    "CircuitBreaker",
    "RetryBudget",
    "Fault",
    "Transient",
    "Permanent",
    "RetryxError",
    "ConfigError",
    "CircuitOpenError",
    "AllEndpointsFailed",
    "NestedRetryError",
}


def test_all_is_exactly_the_contract_list() -> None:
    """``retryx.__all__`` holds exactly the names of the contract's section 1."""
    assert CONTRACT_NAMES == set(retryx.__all__)
    assert len(CONTRACT_NAMES) == len(retryx.__all__)


def test_all_is_sorted() -> None:
    """``__all__`` is one sorted list, as the style guide asks (ruff's isort-style order:
    constants, then classes, then the rest)."""

    def isort_style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert sorted(retryx.__all__, key=isort_style) == retryx.__all__


@pytest.mark.parametrize("name", sorted(CONTRACT_NAMES))
def test_every_name_is_importable(name: str) -> None:
    """Every contract name can be imported from ``retryx``."""
    assert hasattr(retryx, name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_names_are_retryx_submodules(name: str) -> None:
    """Each module name of the contract is a ``retryx`` submodule."""
    module = getattr(retryx, name)
    assert isinstance(module, types.ModuleType)
    assert f"retryx.{name}" == module.__name__


def test_star_import_gives_every_name() -> None:
    """``from retryx import *`` binds every contract name."""
    namespace: dict[str, object] = {}
    exec("from retryx import *", namespace)
    assert CONTRACT_NAMES <= set(namespace)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_exported_classes_report_module_retryx(name: str) -> None:
    """Exported classes say ``retryx.X`` in reprs and tracebacks."""
    cls = getattr(retryx, name)
    assert isinstance(cls, type)
    assert "retryx" == cls.__module__


def test_errors_form_one_tree() -> None:
    """retryx's own errors derive from ``RetryxError``; ``ConfigError`` is a ``ValueError``."""
    for name in ("ConfigError", "CircuitOpenError", "AllEndpointsFailed", "NestedRetryError"):
        assert issubclass(getattr(retryx, name), retryx.RetryxError)
    assert issubclass(retryx.ConfigError, ValueError)
    assert issubclass(retryx.AllEndpointsFailed, ExceptionGroup)
    assert not issubclass(retryx.Transient, retryx.RetryxError)
    assert not issubclass(retryx.Permanent, retryx.RetryxError)


def test_contract_constructors() -> None:
    """The error constructors users may call in tests take the contract's arguments."""
    assert ("db", 1.5) == (
        retryx.CircuitOpenError("db", 1.5).breaker,
        retryx.CircuitOpenError("db", 1.5).retry_after,
    )
    assert {"a": KeyError} == {
        k: type(v) for k, v in retryx.AllEndpointsFailed({"a": KeyError()}).errors.items()
    }
    nested = retryx.NestedRetryError("outer", "inner")
    assert ("outer", "inner") == (nested.outer, nested.inner)
    transient = retryx.Transient("busy", retry_after=2.0, unsent=True)
    assert (2.0, True) == (transient.retry_after, transient.unsent)


# The import check runs in a fresh interpreter. wrapt >= 2 imports asyncio itself, so
# the check records which module triggers each heavy import instead of only testing
# sys.modules: retryx must never be the one.
IMPORT_PROBE = r"""
import json, sys

HEAVY = ("asyncio", "redis", "opentelemetry", "httpx", "requests", "urllib3")
importers = {}

class Probe:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY and name == top:
            frame = sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if not module.startswith("importlib") and module != __name__:
                    break
                frame = frame.f_back
            importers.setdefault(top, []).append(frame.f_globals.get("__name__") if frame else None)
        return None

sys.meta_path.insert(0, Probe())
import retryx
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HEAVY)
lazy = [m for m in ("retryx._event_records",) if m in sys.modules]
print(json.dumps({"importers": importers, "loaded": loaded, "lazy": lazy}))
"""


def test_import_retryx_stays_light() -> None:
    """``import retryx`` never imports asyncio or an optional client (redis, httpx, ...) itself."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    report = json.loads(done.stdout)
    optional = ("redis", "opentelemetry", "httpx", "requests", "urllib3")
    assert [] == [m for m in report["loaded"] if m.partition(".")[0] in optional]
    by_retryx = {
        top: names
        for top, names in report["importers"].items()
        if any(str(n).startswith("retryx") for n in names)
    }
    assert {} == by_retryx
    if "asyncio" not in report["importers"]:
        assert [] == [m for m in report["loaded"] if m.startswith("asyncio")]
    assert [] == report["lazy"]  # the event records are defined on first use


def test_event_records_are_served_lazily_by_retryx_events() -> None:
    """``retryx.events`` serves its records on first lookup; they are the real classes."""
    from retryx import _event_records

    assert retryx.events.GaveUp is _event_records.GaveUp
    assert "retryx.events" == retryx.events.GaveUp.__module__
    assert set(retryx.events.__all__) <= set(dir(retryx.events))
    with pytest.raises(AttributeError):
        retryx.events.NoSuchRecord  # noqa: B018
