"""What ``retryx config check`` prints about a configuration: one line per policy and breaker."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._classify import classify
from ._config_values import table_key

if TYPE_CHECKING:
    from ._config import Snapshot
    from ._policy import Policy

__all__ = ["describe_breaker", "describe_policy", "report"]


def report(snap: Snapshot, problems: list[str]) -> list[str]:
    """The report lines of ``snap``: its source, then one line per policy and breaker."""
    lines = [f"configuration: {snap.source}"]
    for name, policy in snap.policies.items():
        lines.append(f"policy {table_key(name)}: {describe_policy(name, policy)}")
    for name, settings in snap.breakers.items():
        lines.append(f"breaker {table_key(name)}: {describe_breaker(settings)}")
    if snap.faults:
        lines.append(f"faults: {len(snap.faults)} rule(s) in [faults]")
    if not snap.policies and not snap.breakers and not snap.faults and not problems:
        lines.append("no policies or breakers defined")
    return lines


def _seconds(value: float | None) -> str:
    """A duration as the report shows it: ``1.5s``, ``none`` or ``inf``."""
    if value is None:
        return "none"
    return f"{value:g}s" if math.isfinite(value) else str(value)


def describe_policy(table_name: str, p: Policy) -> str:
    """The fields of ``p`` a file can set, as ``key=value`` (``name`` if not the table's)."""
    retry_on = "default (classify)" if p.retry_on is classify else repr(p.retry_on)
    parts = [
        f"attempts={p.attempts}",
        f"backoff={p.backoff!r}",
        f"jitter={p.jitter!r}",
        f"deadline={_seconds(p.deadline)}",
        f"attempt_timeout={_seconds(p.attempt_timeout)}",
        f"retry_on={retry_on}",
        f"retry_after_max={_seconds(p.retry_after_max)}",
        f"idempotent={str(p.idempotent).lower()}",
        f"nested={p.nested}",
    ]
    if p.name != table_name:
        parts.append(f"name={p.name!r}")
    return ", ".join(parts)


def describe_breaker(settings: Mapping[str, Any]) -> str:
    """The settings a ``[breakers.NAME]`` table gave, as ``key=value`` pairs."""
    if not settings:
        return "all defaults"
    shown = []
    for key, value in settings.items():
        if key == "counts":
            value = "(" + ", ".join(t.__qualname__ for t in value) + ")"
        shown.append(f"{key}={value}")
    return ", ".join(shown)
