"""Named policies and breakers read from TOML configuration, with atomic reload.

Sources, first found wins: the path given to ``configure``, ``$RETRYX_CONFIG``,
the ``[tool.retryx]`` table of ``./pyproject.toml``, then built-in defaults (no
names at all). A load parses and validates everything into an immutable
``Snapshot`` before one module-level reference is swapped, so readers never see
a half-applied configuration and never take a lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

from . import _clients
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
    # The builders, loaded with the first file read (not by import retryx).
    from ._config_tables import build_faults, build_tables
    from ._config_values import Where, show

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
            Where(source.label, "tool", problems).bad(
                "retryx", f"must be a table [tool.retryx], got {show(doc)}"
            )
            return Snapshot(source.label, _frozen({}), _frozen({})), problems
    faults = build_faults(doc.pop("faults", None), source.label, root, problems)
    policies, breakers = build_tables(doc, source.label, root, problems)
    return Snapshot(source.label, _frozen(policies), _frozen(breakers), 0, faults), problems


def check(path: str | None = None) -> tuple[list[str], list[str]]:
    """Validate a configuration for ``retryx config check [FILE]``.

    Returns the report lines (source, then one line per policy and breaker
    found) and every problem found. Without ``path`` it checks what
    ``configure()`` would load. The configuration in force is not changed.
    """
    from ._config_describe import report  # only the command line describes

    snap, problems = scan(path)
    return report(snap, problems), problems


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


def _frozen(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))
