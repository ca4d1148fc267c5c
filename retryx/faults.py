"""Teach ``classify`` the faults of your own clients.

```python
from retryx import Fault, faults

faults.register("myclient.errors:Busy", "throttled")        # by name: nothing imported
faults.register(MyTimeout, "timeout")
faults.register("myclient.errors:Gone", "permanent")
faults.register(MyError, lambda exc: Fault(True, "server") if exc.code >= 500 else None)
faults.unregister(MyTimeout)
```

Registered rules are asked before the built-in ones (the newest registration
first; registering a kind again replaces its rule); a callable returning
``None`` has no opinion and the next rule is asked. The markers ``Transient``,
``Permanent`` and ``is_transient = True`` still win over every rule. The
``[faults]`` table of the configuration file (``"module:Qualname" = "cause"``)
adds rules after the registered ones. Thread-safe.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeAlias

from . import _clients
from ._classify import retry_after_hint
from ._errors import ConfigError
from ._fault import PERMANENT as _PERMANENT
from ._fault import Fault

__all__ = ["CAUSES", "Verdict", "register", "unregister"]

CAUSES = ("connection", "timeout", "throttled", "server", "contention", "explicit", "permanent")
"""The cause names a rule may give; ``"permanent"`` makes the fault permanent."""

Verdict: TypeAlias = "str | Fault | Callable[[BaseException], Fault | None]"
"""What ``register`` accepts as a verdict: a cause name, a ``Fault``, or ``exc -> Fault | None``."""


def register(kind: type[BaseException] | str, verdict: Verdict) -> None:
    """Judge exceptions of ``kind`` (and its subclasses) by ``verdict``, before the built-in rules.

    Args:
        kind: an exception type, or ``"module:Qualname"`` naming one without
            importing it (matched against each class's ``__module__`` and
            ``__qualname__`` in the exception's MRO); a bare builtin name such
            as ``"ConnectionResetError"`` also works.
        verdict: a cause name (``"connection"``, ``"timeout"``, ``"throttled"``,
            ``"server"``, ``"contention"``, ``"explicit"``: transient, with the
            exception's Retry-After hint; ``"permanent"``), a ``Fault`` returned as
            is, or a callable ``exc -> Fault | None`` (``None``: no opinion).

    Raises:
        ConfigError: naming the parameter when ``kind`` or ``verdict`` is not valid.
    """
    key = normalise_kind(kind, field="faults.register.kind")
    _clients.add_rule(key, make_rule(verdict, field="faults.register.verdict"))


def unregister(kind: type[BaseException] | str) -> None:
    """Forget the rule registered for ``kind`` (nothing happens when there is none).

    Raises:
        ConfigError: when ``kind`` is not an exception type or a name.
    """
    _clients.remove_rule(normalise_kind(kind, field="faults.unregister.kind"))


def normalise_kind(kind: Any, *, field: str) -> _clients.Kind:
    """An exception type, or the ``"module:Qualname"`` a class is matched by."""
    if isinstance(kind, type) and issubclass(kind, BaseException):
        return kind
    if isinstance(kind, str):
        if ":" not in kind:
            builtin = getattr(builtins, kind, None)
            if isinstance(builtin, type) and issubclass(builtin, BaseException):
                return f"builtins:{kind}"
            raise ConfigError(
                f"{field} must be 'module:Qualname' or a builtin exception name, got {kind!r}"
            )
        module, _, qualname = kind.partition(":")
        if module.strip() and qualname.strip() and kind == kind.strip() and " " not in kind:
            return kind
    raise ConfigError(f"{field} must be an exception type or 'module:Qualname', got {kind!r}")


def make_rule(verdict: Any, *, field: str) -> _clients.Judge:
    """The judge for a verdict given as a cause name, a ``Fault`` or a callable."""
    if isinstance(verdict, Fault):
        return lambda exc: verdict
    if isinstance(verdict, str):
        if verdict not in CAUSES:
            raise ConfigError(
                f"{field} must be one of {', '.join(CAUSES)} (or a Fault or a callable), "
                f"got {verdict!r}"
            )
        if verdict == "permanent":
            return lambda exc: _PERMANENT
        return lambda exc: Fault(True, verdict, retry_after_hint(exc))
    if callable(verdict):
        return _checked(verdict)
    raise ConfigError(f"{field} must be a cause name, a Fault or a callable, got {verdict!r}")


def _checked(func: Callable[[BaseException], Any]) -> _clients.Judge:
    def rule(exc: BaseException) -> Fault | None:
        fault = func(exc)
        if fault is None or isinstance(fault, Fault):
            return fault
        raise TypeError(
            f"fault rule {getattr(func, '__qualname__', func)!r} must return a Fault or None, "
            f"got {type(fault).__name__}"
        )

    return rule
