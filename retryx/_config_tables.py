"""The tables of a configuration file built into policies, breaker settings and fault rules.

``build_tables`` turns ``[policies.NAME]`` into ``Policy`` objects and
``[breakers.NAME]`` into ``CircuitBreaker`` settings, ``build_faults`` the
``[faults]`` table into rules; each problem is reported under its key and the
rest is still built.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ._config_values import (
    Where,
    build_backoff,
    build_jitter,
    exceptions,
    is_int,
    is_number,
    join,
    show,
    table_key,
    unknown,
)
from ._errors import ConfigError
from ._policy import Policy

__all__ = ["BREAKER_DEFAULTS", "POLICY_KEYS", "build_faults", "build_tables"]

POLICY_KEYS = (
    "attempts",
    "backoff",
    "jitter",
    "deadline",
    "attempt_timeout",
    "retry_on",
    "retry_after_max",
    "idempotent",
    "nested",
    "name",
    "log",
    "retry_log_level",
    "give_up_log_level",
    "log_exc_info",
)
# Policy fields that take Python objects, so a file cannot express them.
_CODE_ONLY = {
    "retry_if_result": "a Python callable",
    "budget": "a RetryBudget object",
    "on_retry": "a Python callable",
    "on_give_up": "a Python callable",
    "on_success": "a Python callable",
}

BREAKER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "failure_threshold": 5,
        "failure_rate": None,
        "window": 20,
        "minimum_calls": 10,
        "recovery_timeout": 30.0,
        "half_open_max_calls": 1,
        "success_threshold": 1,
        "counts": "classify",
    }
)
_BREAKER_CODE_ONLY = {
    "store": "cannot be set in a configuration file (it takes a RedisStore object)",
    "name": "cannot be set: the breaker's name is the table's name",
}
_BREAKER_INTS = (
    "failure_threshold",
    "window",
    "minimum_calls",
    "half_open_max_calls",
    "success_threshold",
)


def build_tables(
    doc: dict[str, Any], file: str, root: str, problems: list[str]
) -> tuple[dict[str, Policy], dict[str, Mapping[str, Any]]]:
    policies: dict[str, Policy] = {}
    breakers: dict[str, Mapping[str, Any]] = {}
    top = Where(file, root, problems)
    for section, tables in doc.items():
        if section not in ("policies", "breakers"):
            top.bad(
                table_key(section),
                unknown("table or key", section, ("breakers", "faults", "policies")),
            )
            continue
        dotted = join(root, section)
        if not isinstance(tables, dict):
            top.bad(section, f"must hold tables like [{dotted}.NAME], got {show(tables)}")
            continue
        for name, table in tables.items():
            where = Where(file, join(dotted, table_key(name)), problems)
            if not isinstance(table, dict):
                Where(file, dotted, problems).bad(
                    table_key(name),
                    f"must be a table [{where.table}], got {show(table)}",
                )
                continue
            if section == "policies":
                policy = _build_policy(where, name, table)
                if policy is not None:
                    policies[name] = policy
            else:
                settings = _build_breaker(where, name, table)
                if settings is not None:
                    breakers[name] = MappingProxyType(settings)
    return policies, breakers


def build_faults(
    table: Any, file: str, root: str, problems: list[str]
) -> tuple[tuple[str, Callable[[BaseException], Any]], ...]:
    """The ``[faults]`` table: ``"module:Qualname" = "cause"`` rules, in file order."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        Where(file, root, problems).bad("faults", f"must be a table [faults], got {show(table)}")
        return ()
    from .faults import CAUSES, make_rule, normalise_kind

    where = Where(file, join(root, "faults"), problems)
    rules = []
    for key, value in table.items():
        try:
            kind = normalise_kind(key, field="kind")
            if not isinstance(kind, str):  # pragma: no cover - TOML keys are strings
                raise ConfigError(f"must be a 'module:Qualname' string, got {key!r}")
            if not isinstance(value, str):
                raise ConfigError(f"must be a cause name, got {show(value)}")
            if value not in CAUSES:
                raise ConfigError(f"must be one of {', '.join(CAUSES)}, got {value!r}")
            rules.append((kind, make_rule(value, field="cause")))
        except ConfigError as exc:
            where.bad(table_key(key), str(exc))
    return tuple(rules)  # asked in file order: the first line that matches wins


def _build_policy(where: Where, name: str, table: dict[str, Any]) -> Policy | None:
    fields: dict[str, Any] = {"name": name}
    ok = True
    for key, value in table.items():
        converted = _policy_value(where, key, value)
        if converted is None:
            ok = False
            continue
        try:
            # One field at a time, so each bad value is reported under its own key.
            Policy(**{key: converted})
        except ConfigError as exc:
            where.bad(key, str(exc))
            ok = False
            continue
        fields[key] = converted
    if not ok:
        return None
    try:
        return Policy(**fields)
    except ConfigError as exc:  # a rule between fields: no single key to blame
        where.bad(None, str(exc))
        return None


def _policy_value(where: Where, key: str, value: Any) -> Any:
    """``value`` converted for ``Policy(key=...)``, or ``None`` after reporting a problem."""
    if key in _CODE_ONLY:
        where.bad(key, f"cannot be set in a configuration file (it takes {_CODE_ONLY[key]})")
        return None
    if key not in POLICY_KEYS:
        where.bad(key, unknown("key", key, POLICY_KEYS))
        return None
    if key == "backoff":
        return build_backoff(where, key, value)
    if key == "jitter":
        return build_jitter(where, key, value)
    if key == "retry_on":
        return exceptions(where, key, value)
    if key == "attempts":
        ok, what = is_int(value), "an integer"
    elif key in ("deadline", "attempt_timeout", "retry_after_max"):
        ok, what = is_number(value), "a number of seconds"
    elif key in ("idempotent", "log_exc_info"):
        ok, what = isinstance(value, bool), "true or false"
    elif key == "log":  # a logger name, or false for no log lines
        ok, what = isinstance(value, str | bool), "a logger name, true or false"
    elif key in ("retry_log_level", "give_up_log_level"):
        ok, what = isinstance(value, str) or is_int(value), "a level name or number"
    else:  # nested, name
        ok, what = isinstance(value, str), "a string"
    if not ok:
        where.bad(key, f"Policy.{key} must be {what}, got {show(value)}")
        return None
    return value


def _build_breaker(where: Where, name: str, table: dict[str, Any]) -> dict[str, Any] | None:
    settings: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        if key in _BREAKER_CODE_ONLY:
            where.bad(key, _BREAKER_CODE_ONLY[key])
            ok = False
            continue
        if key not in BREAKER_DEFAULTS:
            where.bad(key, unknown("key", key, tuple(BREAKER_DEFAULTS)))
            ok = False
            continue
        problem: str | None = None
        if key == "counts":
            types = exceptions(where, key, value)
            if types is None:
                ok = False
                continue
            value = types
        elif key in _BREAKER_INTS:
            if not is_int(value):
                problem = f"must be an integer, got {show(value)}"
            elif value < 1:
                problem = f"must be >= 1, got {value!r}"
        elif key == "failure_rate":
            if not is_number(value):
                problem = f"must be a number, got {show(value)}"
            elif not 0 < value <= 1:
                problem = f"must be in (0, 1], got {value!r}"
        elif not is_number(value):  # recovery_timeout
            problem = f"must be a number of seconds, got {show(value)}"
        elif not 0 <= value < math.inf:  # (math.isfinite overflows on a huge int)
            problem = f"must be >= 0 seconds and finite, got {value!r}"
        if problem is not None:
            where.bad(key, f"CircuitBreaker.{key} {problem}")
            ok = False
            continue
        settings[key] = value
    if not ok:
        return None
    if "failure_rate" in settings:
        window = settings.get("window", BREAKER_DEFAULTS["window"])
        minimum = settings.get("minimum_calls", BREAKER_DEFAULTS["minimum_calls"])
        if window < minimum:
            where.bad(
                "minimum_calls" if "minimum_calls" in settings else "window",
                f"CircuitBreaker.window ({window}) must be >= minimum_calls ({minimum}) "
                "when failure_rate is set",
            )
            return None
    return settings if _breaker_accepts(where, name, settings) else None


def _breaker_accepts(where: Where, name: str, settings: dict[str, Any]) -> bool:
    """Let ``CircuitBreaker`` apply its own rules too, when it is available."""
    try:
        # Imported by name and lazily: the breaker module may import this one.
        module = importlib.import_module(f"{__package__}._breaker")
    except ImportError:
        return True
    try:
        module.CircuitBreaker(name, **settings)
    except (ConfigError, TypeError) as exc:
        text = str(exc)
        key = next((k for k in settings if k in text), None)
        where.bad(key, text)
        return False
    return True
