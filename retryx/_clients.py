"""Verdicts on the exceptions of third-party clients, and the rules users register.

Each ``_faults_*`` module maps a top-level package name (the first part of an
exception class's ``__module__``) to a *judge*: ``judge(exc) -> Fault | None``
(``None``: no opinion). ``judge`` asks, in order, the rules registered with
``retryx.faults.register`` (newest first), the ``[faults]`` table of the
configuration, then the judge of each package found in the exception's MRO, so a
subclass defined elsewhere still gets its base's verdict. Which rules apply to an
exception type is worked out once per type and cached: the MRO is not walked again.

No client is imported here: judges match on class names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import _faults_db, _faults_http, _faults_rpc
from ._fault import Fault

__all__ = [
    "FAST_CONNECTION",
    "FAST_TIMEOUT",
    "JUDGES",
    "Judge",
    "Kind",
    "add_rule",
    "config_changed",
    "judge",
    "remove_rule",
]

Judge = Callable[[BaseException], "Fault | None"]
Kind = type[BaseException] | str  # a type, or "module:Qualname" matched by name

JUDGES: dict[str, Judge] = {**_faults_http.JUDGES, **_faults_rpc.JUDGES, **_faults_db.JUDGES}

# The builtin types ``classify`` answers at once, without asking ``judge``. A type
# some rule applies to is taken out, so that rule is asked. They start empty: the
# first fault goes the slow way, which loads the configuration's ``[faults]``
# table and fills them (``classify`` holds these very set objects).
_BUILTIN_CONNECTION = (
    ConnectionError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)
FAST_CONNECTION: set[type[BaseException]] = set()
FAST_TIMEOUT: set[type[BaseException]] = set()

_MAX_ROUTES = 1024  # exception types remembered; a program that makes types forever stays bounded

_lock = threading.Lock()
_registered: tuple[tuple[Kind, Judge], ...] = ()  # newest first
_configured: tuple[tuple[Kind, Judge], ...] = ()  # the [faults] table in force
_routes: dict[type[BaseException], tuple[Judge, ...]] = {}
_config: ModuleType | None = None  # retryx._config, bound on first use (import cycle)
_stale = True  # the configuration changed since its [faults] table was read


def judge(exc: BaseException) -> Fault | None:
    """The verdict of the registered, configured or built-in client rules on ``exc``.

    ``None`` when no rule knows it.
    """
    if _stale:
        _sync_config()
    kind = type(exc)
    route = _routes.get(kind)
    if route is None:
        route = _route(kind)
    for rule in route:
        fault = rule(exc)
        if fault is not None:
            return fault
    return None


def _route(kind: type[BaseException]) -> tuple[Judge, ...]:
    """The rules that may judge ``kind``, in the order they are asked."""
    with _lock:
        rules = [rule for key, rule in (*_registered, *_configured) if _matches(kind, key)]
        seen: set[str] = set()
        for klass in kind.__mro__:
            root = klass.__module__.partition(".")[0]
            if root in seen:
                continue
            seen.add(root)
            rule = JUDGES.get(root)
            if rule is None:
                continue
            # A judge that can tell its rule for a type (a table of class names)
            # answers now, once: the route then holds that rule itself.
            rule_for = getattr(rule, "rule_for", None)
            if rule_for is None:
                rules.append(rule)
            else:
                found = rule_for(kind)
                if found is not None:
                    rules.append(found)
        route = tuple(rules)
        if len(_routes) >= _MAX_ROUTES:
            _routes.clear()
        _routes[kind] = route
        return route


def _matches(kind: type[BaseException], key: Kind) -> bool:
    if isinstance(key, str):
        return any(f"{k.__module__}:{k.__qualname__}" == key for k in kind.__mro__)
    return issubclass(kind, key)


def add_rule(key: Kind, rule: Judge) -> None:
    """Ask ``rule`` first about exceptions matching ``key`` (replacing its older rule)."""
    global _registered
    with _lock:
        _registered = ((key, rule), *((k, r) for k, r in _registered if k != key))
        _rules_changed()


def remove_rule(key: Kind) -> bool:
    """Forget the rule registered for ``key``; whether there was one."""
    global _registered
    with _lock:
        kept = tuple((k, r) for k, r in _registered if k != key)
        found = len(kept) != len(_registered)
        _registered = kept
        _rules_changed()
        return found


def config_changed() -> None:
    """A configuration was installed or forgotten: re-read its ``[faults]`` at the next fault."""
    global _stale
    with _lock:
        _stale = True
        # Emptied, so the next builtin fault takes the slow way and syncs.
        FAST_CONNECTION.clear()
        FAST_TIMEOUT.clear()


def _sync_config() -> None:
    global _config, _configured, _stale
    _stale = False  # first: a change while reading marks it stale again
    if _config is None:
        from . import _config as config

        _config = config
    try:
        snap: Any = _config.snapshot()
    except Exception:  # a ConfigError: configure() and named policies report it
        snap = None  # and a bad file is not read again per fault, only at the next change
    with _lock:
        rules = getattr(snap, "faults", ())
        _configured = tuple(rules)
        _rules_changed()


def _rules_changed() -> None:
    """Forget the cached routes and rebuild the fast sets (called under ``_lock``)."""
    _routes.clear()
    keys = [key for key, _ in (*_registered, *_configured)]
    FAST_CONNECTION.clear()
    FAST_CONNECTION.update(t for t in _BUILTIN_CONNECTION if not _ruled(t, keys))
    FAST_TIMEOUT.clear()
    if not _ruled(TimeoutError, keys):
        FAST_TIMEOUT.add(TimeoutError)


def _ruled(kind: type[BaseException], keys: list[Kind]) -> bool:
    return any(_matches(kind, key) for key in keys)
