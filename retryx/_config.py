"""Named policies and breakers read from TOML configuration, with atomic reload.

Sources, first found wins: the path given to ``configure``, ``$RETRYX_CONFIG``,
the ``[tool.retryx]`` table of ``./pyproject.toml``, then built-in defaults (no
names at all). A load parses and validates everything into an immutable
``Snapshot`` before one module-level reference is swapped, so readers never see
a half-applied configuration and never take a lock.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

from . import _clients
from . import backoff as _backoff
from . import jitter as _jitter
from ._classify import classify, import_exception
from ._errors import ConfigError
from ._policy import Policy

__all__ = [
    "ENV_VAR",
    "Snapshot",
    "breaker_settings",
    "check",
    "configure",
    "generation",
    "load",
    "policies_of",
    "reset_for_tests",
    "resolve_policy",
    "scan",
    "snapshot",
]

ENV_VAR = "RETRYX_CONFIG"
DEFAULTS = "built-in defaults"

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

# kind -> (constructor, keys of its inline table); the keys are the constructors'
# own parameter names, so a table maps straight onto a call.
_BACKOFFS: dict[str, tuple[Callable[..., _backoff.Backoff], tuple[str, ...]]] = {
    "exponential": (_backoff.exponential, ("initial", "multiplier", "max", "min")),
    "incremental": (_backoff.incremental, ("initial", "step", "max", "min")),
    "fixed": (_backoff.fixed, ("delay",)),
    "immediate": (_backoff.immediate, ("then",)),
    "none": (_backoff.none, ()),
    "schedule": (_backoff.schedule, ("delays",)),
}
_JITTERS = (*_jitter.BY_NAME, "proportional")


class Snapshot:
    """One loaded configuration: validated, immutable, swapped in whole on reload.

    ``policies`` maps names to ready ``Policy`` objects, ``breakers`` maps names
    to the keyword settings of ``CircuitBreaker``; ``source`` says where they
    came from; ``generation`` grows by one at each successful ``configure``.
    (A plain slotted class: a dataclass costs a millisecond of ``import retryx``.)
    """

    __slots__ = ("breakers", "faults", "generation", "policies", "source")

    def __init__(
        self,
        source: str,
        policies: Mapping[str, Policy],
        breakers: Mapping[str, Mapping[str, Any]],
        generation: int = 0,
        faults: tuple[tuple[str, Callable[[BaseException], Any]], ...] = (),
    ) -> None:
        self.source = source
        self.policies = policies
        self.breakers = breakers
        self.generation = generation
        self.faults = faults  # the [faults] table: ("module:Qualname", rule) pairs

    def policy(self, name: str) -> Policy:
        """The policy named ``name``.

        Raises:
            ConfigError: for an unknown name, listing the known ones.
        """
        if not isinstance(name, str):
            raise ConfigError(f"a policy name must be a str, got {name!r}")
        found = self.policies.get(name)
        if found is not None:
            return found
        known = ", ".join(sorted(self.policies)) or "none"
        where = self.source
        if where == DEFAULTS:
            where = f"{DEFAULTS}: no configuration file found (${ENV_VAR}, ./pyproject.toml)"
        raise ConfigError(f"unknown policy {name!r} (from {where}); known policies: {known}")

    def breaker(self, name: str) -> dict[str, Any]:
        """The settings of ``[breakers.NAME]`` as a fresh dict (empty: all defaults)."""
        return dict(self.breakers.get(name, {}))


_lock = threading.RLock()  # re-entrant: a retry_on module imported at load may itself resolve
_current: Snapshot | None = None
_generation = 0  # never reset, so a decorator never mistakes a new snapshot for its old one


def configure(path: str | os.PathLike[str] | None = None) -> None:
    """Load (or reload) named policies and breakers, replacing the current ones atomically.

    Without ``path``: ``$RETRYX_CONFIG``, else ``[tool.retryx]`` in
    ``./pyproject.toml``, else built-in defaults (no names). Calls already
    running keep the policy they started with; the next lookup sees the new one.

    Raises:
        ConfigError: listing every problem found; the previous configuration
            then stays in force.
    """
    _install(path, only_if_unset=False)


def snapshot() -> Snapshot:
    """The configuration in force, loading it (as ``configure()`` would) on first use."""
    snap = _current
    if snap is None:
        snap = _install(None, only_if_unset=True)
    return snap


def generation() -> int:
    """A number that changes at each successful (re)load; compare it to re-resolve cheaply.

    Read it before resolving (or use ``snapshot().generation`` with
    ``snapshot().policy(name)``) so a reload in between is never missed.
    """
    return snapshot().generation


def resolve_policy(name: str) -> Policy:
    """The named policy of the configuration in force.

    Raises:
        ConfigError: for an unknown name (listing the known ones) or a bad file.
    """
    return snapshot().policy(name)


def breaker_settings(name: str) -> dict[str, Any]:
    """The validated ``CircuitBreaker`` keyword settings of ``[breakers.NAME]``.

    An empty dict when there is no such table: the breaker uses the defaults.
    """
    return snapshot().breaker(name)


def reset_for_tests() -> None:
    """Forget the loaded configuration; the next lookup loads it again."""
    global _current
    with _lock:
        _current = None
    _clients.config_changed()


def load(path: str | os.PathLike[str] | None = None) -> Snapshot:
    """Parse and validate a configuration without installing it.

    Raises:
        ConfigError: with every problem found, one per line.
    """
    snap, problems = scan(path)
    if problems:
        raise ConfigError("\n".join(problems))
    return snap


def scan(path: str | os.PathLike[str] | None = None) -> tuple[Snapshot, list[str]]:
    """Everything valid in a configuration, plus every problem found in it.

    Never raises for a bad file and never changes the configuration in force.
    """
    source = _locate(path)
    problems: list[str] = []
    doc = _read(source, problems)
    if doc is None:
        return Snapshot(source.label, _frozen({}), _frozen({})), problems
    root = ""
    if source.pyproject:
        root = "tool.retryx"
        tool = doc.get("tool")
        doc = tool.get("retryx") if isinstance(tool, dict) else None
        if doc is None:
            label = f"{DEFAULTS} ({source.label} has no [tool.retryx] table)"
            return Snapshot(label, _frozen({}), _frozen({})), problems
        if not isinstance(doc, dict):
            _Where(source.label, "tool", problems).bad(
                "retryx", f"must be a table [tool.retryx], got {_show(doc)}"
            )
            return Snapshot(source.label, _frozen({}), _frozen({})), problems
    faults = _build_faults(doc.pop("faults", None), source.label, root, problems)
    policies, breakers = _build(doc, source.label, root, problems)
    return Snapshot(source.label, _frozen(policies), _frozen(breakers), 0, faults), problems


def check(path: str | None = None) -> tuple[list[str], list[str]]:
    """Validate a configuration for ``retryx config check [FILE]``.

    Returns the report lines (source, then one line per policy and breaker
    found) and every problem found. Without ``path`` it checks what
    ``configure()`` would load. The configuration in force is not changed.
    """
    snap, problems = scan(path)
    report = [f"configuration: {snap.source}"]
    for name, policy in snap.policies.items():
        report.append(f"policy {_table_key(name)}: {_describe_policy(name, policy)}")
    for name, settings in snap.breakers.items():
        report.append(f"breaker {_table_key(name)}: {_describe_breaker(settings)}")
    if snap.faults:
        report.append(f"faults: {len(snap.faults)} rule(s) in [faults]")
    if not snap.policies and not snap.breakers and not snap.faults and not problems:
        report.append("no policies or breakers defined")
    return report, problems


def policies_of(path: str | os.PathLike[str] | None = None) -> Mapping[str, Policy]:
    """The valid policies of a configuration (for ``retryx config check``'s schedules)."""
    return scan(path)[0].policies


# --- installing -------------------------------------------------------------------


def _install(path: str | os.PathLike[str] | None, *, only_if_unset: bool) -> Snapshot:
    global _current, _generation
    with _lock:
        if only_if_unset and _current is not None:
            return _current  # another thread loaded it while we waited
        snap = load(path)  # raises before anything is swapped
        _generation += 1
        snap = Snapshot(snap.source, snap.policies, snap.breakers, _generation, snap.faults)
        _current = snap  # the one swap readers can observe
    _clients.config_changed()  # the next fault reads the new [faults] table
    return snap


class _Source:
    __slots__ = ("label", "origin", "path", "pyproject")

    def __init__(self, path: Path | None, label: str, pyproject: bool, origin: str = "") -> None:
        self.path = path
        self.label = label  # how messages name the file: as the user gave it
        self.pyproject = pyproject  # read [tool.retryx] instead of the top level
        self.origin = origin  # said when the file is missing, e.g. "(from $RETRYX_CONFIG)"


def _locate(path: str | os.PathLike[str] | None) -> _Source:
    from pathlib import Path

    if path is not None:
        p = Path(path)
        return _Source(p, os.fspath(path), p.name == "pyproject.toml")
    env = os.environ.get(ENV_VAR)
    if env:  # an empty variable counts as unset, as shells make that easy to produce
        p = Path(env)
        return _Source(p, env, p.name == "pyproject.toml", f" (from ${ENV_VAR})")
    pyproject = Path("pyproject.toml")
    if pyproject.is_file():
        return _Source(pyproject, "pyproject.toml", True)
    return _Source(None, DEFAULTS, False)


def _read(source: _Source, problems: list[str]) -> dict[str, Any] | None:
    if source.path is None:
        return None
    label = source.label
    try:
        data = source.path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{label}: configuration file not found{source.origin}")
        return None
    except OSError as exc:
        problems.append(f"{label}: cannot read configuration file{source.origin}: {exc}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{label}: not UTF-8 text: {exc}")
        return None
    import tomllib  # loaded when a file is read, not at ``import retryx``

    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an int of more than 4300 digits
        problems.append(f"{label}: invalid TOML: {exc}")  # tomllib's text gives line and column
        return None


# --- validating -------------------------------------------------------------------


class _Where:
    """Formats problems as ``FILE: [TABLE] KEY: message`` and collects them."""

    __slots__ = ("file", "problems", "table")

    def __init__(self, file: str, table: str, problems: list[str]) -> None:
        self.file = file
        self.table = table
        self.problems = problems

    def bad(self, key: str | None, message: str) -> None:
        parts = [f"{self.file}:"]
        if self.table:
            parts.append(f"[{self.table}]")
        if key is not None:
            parts.append(f"{key}:")
        parts.append(message)
        self.problems.append(" ".join(parts))


def _build(
    doc: dict[str, Any], file: str, root: str, problems: list[str]
) -> tuple[dict[str, Policy], dict[str, Mapping[str, Any]]]:
    policies: dict[str, Policy] = {}
    breakers: dict[str, Mapping[str, Any]] = {}
    top = _Where(file, root, problems)
    for section, tables in doc.items():
        if section not in ("policies", "breakers"):
            top.bad(
                _table_key(section),
                _unknown("table or key", section, ("breakers", "faults", "policies")),
            )
            continue
        dotted = _join(root, section)
        if not isinstance(tables, dict):
            top.bad(section, f"must hold tables like [{dotted}.NAME], got {_show(tables)}")
            continue
        for name, table in tables.items():
            where = _Where(file, _join(dotted, _table_key(name)), problems)
            if not isinstance(table, dict):
                _Where(file, dotted, problems).bad(
                    _table_key(name),
                    f"must be a table [{where.table}], got {_show(table)}",
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


def _build_faults(
    table: Any, file: str, root: str, problems: list[str]
) -> tuple[tuple[str, Callable[[BaseException], Any]], ...]:
    """The ``[faults]`` table: ``"module:Qualname" = "cause"`` rules, in file order."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        _Where(file, root, problems).bad("faults", f"must be a table [faults], got {_show(table)}")
        return ()
    from .faults import CAUSES, make_rule, normalise_kind

    where = _Where(file, _join(root, "faults"), problems)
    rules = []
    for key, value in table.items():
        try:
            kind = normalise_kind(key, field="kind")
            if not isinstance(kind, str):  # pragma: no cover - TOML keys are strings
                raise ConfigError(f"must be a 'module:Qualname' string, got {key!r}")
            if not isinstance(value, str):
                raise ConfigError(f"must be a cause name, got {_show(value)}")
            if value not in CAUSES:
                raise ConfigError(f"must be one of {', '.join(CAUSES)}, got {value!r}")
            rules.append((kind, make_rule(value, field="cause")))
        except ConfigError as exc:
            where.bad(_table_key(key), str(exc))
    return tuple(rules)  # asked in file order: the first line that matches wins


def _build_policy(where: _Where, name: str, table: dict[str, Any]) -> Policy | None:
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


def _policy_value(where: _Where, key: str, value: Any) -> Any:
    """``value`` converted for ``Policy(key=...)``, or ``None`` after reporting a problem."""
    if key in _CODE_ONLY:
        where.bad(key, f"cannot be set in a configuration file (it takes {_CODE_ONLY[key]})")
        return None
    if key not in POLICY_KEYS:
        where.bad(key, _unknown("key", key, POLICY_KEYS))
        return None
    if key == "backoff":
        return _build_backoff(where, key, value)
    if key == "jitter":
        return _build_jitter(where, key, value)
    if key == "retry_on":
        return _exceptions(where, key, value)
    if key == "attempts":
        ok, what = _is_int(value), "an integer"
    elif key in ("deadline", "attempt_timeout", "retry_after_max"):
        ok, what = _is_number(value), "a number of seconds"
    elif key in ("idempotent", "log_exc_info"):
        ok, what = isinstance(value, bool), "true or false"
    elif key == "log":  # a logger name, or false for no log lines
        ok, what = isinstance(value, str | bool), "a logger name, true or false"
    elif key in ("retry_log_level", "give_up_log_level"):
        ok, what = isinstance(value, str) or _is_int(value), "a level name or number"
    else:  # nested, name
        ok, what = isinstance(value, str), "a string"
    if not ok:
        where.bad(key, f"Policy.{key} must be {what}, got {_show(value)}")
        return None
    return value


def _build_backoff(where: _Where, key: str, value: Any) -> _backoff.Backoff | None:
    kinds = ", ".join(sorted(_BACKOFFS))
    if isinstance(value, str):
        if value == "schedule":
            where.bad(key, 'backoff "schedule" needs delays: { kind = "schedule", delays = [...] }')
            return None
        if value not in _BACKOFFS:
            where.bad(key, f"unknown backoff kind {value!r} (known: {kinds})")
            return None
        return _BACKOFFS[value][0]()
    if not isinstance(value, dict):
        where.bad(key, f"must be a backoff kind or an inline table, got {_show(value)}")
        return None
    kind = value.get("kind")
    if kind is None:
        where.bad(f"{key}.kind", f"missing: an inline backoff table needs kind = one of {kinds}")
        return None
    if not isinstance(kind, str) or kind not in _BACKOFFS:
        shown = repr(kind) if isinstance(kind, str) else _show(kind)
        where.bad(f"{key}.kind", f"unknown backoff kind {shown} (known: {kinds})")
        return None
    make, allowed = _BACKOFFS[kind]
    args: dict[str, Any] = {}
    ok = True
    for sub, arg in value.items():
        if sub == "kind":
            continue
        path = f"{key}.{sub}"
        if sub not in allowed:
            where.bad(path, _unknown("key", sub, allowed, f" for backoff {kind!r}"))
            ok = False
            continue
        if sub == "then":
            then = _build_backoff(where, path, arg)
            ok = ok and then is not None
            args[sub] = then
            continue
        if sub == "delays":
            if not isinstance(arg, list) or not all(_is_number(d) for d in arg):
                where.bad(
                    path, f"backoff.{kind}: {sub} must be an array of numbers, got {_show(arg)}"
                )
                ok = False
                continue
        elif not _is_number(arg):
            where.bad(path, f"backoff.{kind}: {sub} must be a number, got {_show(arg)}")
            ok = False
            continue
        try:
            make(**{sub: arg})  # alone, so the problem is reported under its own key
        except ConfigError as exc:
            where.bad(path, str(exc))
            ok = False
            continue
        args[sub] = arg
    if kind == "schedule" and "delays" not in value:
        where.bad(f"{key}.delays", "missing: a schedule needs delays = [...]")
        ok = False
    if not ok:
        return None
    try:
        return make(**args)
    except ConfigError as exc:
        where.bad(key, str(exc))
        return None


def _build_jitter(where: _Where, key: str, value: Any) -> _jitter.Jitter | None:
    kinds = ", ".join(_JITTERS)
    if isinstance(value, str):
        if value == "proportional":
            where.bad(
                key, 'jitter "proportional" needs a factor: { kind = "proportional", factor = 0.2 }'
            )
            return None
        if value not in _jitter.BY_NAME:
            where.bad(key, f"unknown jitter kind {value!r} (known: {kinds})")
            return None
        return _jitter.BY_NAME[value]
    if not isinstance(value, dict):
        where.bad(key, f"must be a jitter kind or an inline table, got {_show(value)}")
        return None
    kind = value.get("kind")
    if kind is None:
        where.bad(f"{key}.kind", f"missing: an inline jitter table needs kind = one of {kinds}")
        return None
    if not isinstance(kind, str) or kind not in _JITTERS:
        shown = repr(kind) if isinstance(kind, str) else _show(kind)
        where.bad(f"{key}.kind", f"unknown jitter kind {shown} (known: {kinds})")
        return None
    allowed = ("factor",) if kind == "proportional" else ()
    ok = True
    for sub in value:
        if sub != "kind" and sub not in allowed:
            where.bad(f"{key}.{sub}", _unknown("key", sub, allowed, f" for jitter {kind!r}"))
            ok = False
    if kind != "proportional":
        return _jitter.BY_NAME[kind] if ok else None
    factor = value.get("factor")
    if factor is None:
        where.bad(f"{key}.factor", "missing: proportional jitter needs factor (0 < factor <= 1)")
        return None
    if not _is_number(factor):
        where.bad(
            f"{key}.factor", f"jitter.proportional: factor must be a number, got {_show(factor)}"
        )
        return None
    try:
        made = _jitter.proportional(factor)
    except ConfigError as exc:
        where.bad(f"{key}.factor", str(exc))
        return None
    return made if ok else None


def _exceptions(where: _Where, key: str, value: Any) -> tuple[type[BaseException], ...] | None:
    """Exception types named by a string or an array of strings, imported now."""
    items: list[Any]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
        if not items:
            where.bad(key, "must not be empty (leave the key out to use the default classifier)")
            return None
    else:
        where.bad(key, f"must be an array of exception names, got {_show(value)}")
        return None
    types: list[type[BaseException]] = []
    ok = True
    for item in items:
        if not isinstance(item, str):
            where.bad(
                key, f"entries must be exception names or 'module:Qualname', got {_show(item)}"
            )
            ok = False
            continue
        try:
            types.append(import_exception(item, field=key))
        except ConfigError as exc:
            # import_exception prefixes the field, which this message already names.
            where.bad(key, str(exc).removeprefix(f"{key}: "))
            ok = False
        except Exception as exc:  # the module itself failed while importing
            where.bad(key, f"cannot import {item!r}: {type(exc).__name__}: {exc}")
            ok = False
    return tuple(types) if ok else None


def _build_breaker(where: _Where, name: str, table: dict[str, Any]) -> dict[str, Any] | None:
    settings: dict[str, Any] = {}
    ok = True
    for key, value in table.items():
        if key in _BREAKER_CODE_ONLY:
            where.bad(key, _BREAKER_CODE_ONLY[key])
            ok = False
            continue
        if key not in BREAKER_DEFAULTS:
            where.bad(key, _unknown("key", key, tuple(BREAKER_DEFAULTS)))
            ok = False
            continue
        problem: str | None = None
        if key == "counts":
            types = _exceptions(where, key, value)
            if types is None:
                ok = False
                continue
            value = types
        elif key in _BREAKER_INTS:
            if not _is_int(value):
                problem = f"must be an integer, got {_show(value)}"
            elif value < 1:
                problem = f"must be >= 1, got {value!r}"
        elif key == "failure_rate":
            if not _is_number(value):
                problem = f"must be a number, got {_show(value)}"
            elif not 0 < value <= 1:
                problem = f"must be in (0, 1], got {value!r}"
        elif not _is_number(value):  # recovery_timeout
            problem = f"must be a number of seconds, got {_show(value)}"
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


def _breaker_accepts(where: _Where, name: str, settings: dict[str, Any]) -> bool:
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


# --- small helpers ----------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """``value`` with its TOML type, so a quoted number is easy to spot."""
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "an array"
    elif isinstance(value, dict):
        kind = "a table"
    elif type(value).__module__ == "datetime":  # date, time or datetime
        kind = "a date/time"
    else:  # pragma: no cover - tomllib produces nothing else
        kind = type(value).__name__
    return f"{value!r} ({kind})"


def _unknown(what: str, key: str, known: tuple[str, ...], context: str = "") -> str:
    import difflib

    hint = difflib.get_close_matches(key, known, n=1)
    did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
    listing = ", ".join(sorted(known)) or "none"
    return f"unknown {what} {key!r}{context} ({did_you_mean}known: {listing})"


def _table_key(name: str) -> str:
    """``name`` as TOML writes it in a table header: bare when it can be, else quoted."""
    import json
    import re

    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _frozen(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _seconds(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:g}s" if math.isfinite(value) else str(value)


def _describe_policy(table_name: str, p: Policy) -> str:
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


def _describe_breaker(settings: Mapping[str, Any]) -> str:
    if not settings:
        return "all defaults"
    shown = []
    for key, value in settings.items():
        if key == "counts":
            value = "(" + ", ".join(t.__qualname__ for t in value) + ")"
        shown.append(f"{key}={value}")
    return ", ".join(shown)
