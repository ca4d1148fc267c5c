"""Every form ``retry_on`` and ``counts`` accept, normalised into one classifier.

Types, tuples of types, ``"module:Qualname"`` strings, predicates (``True`` or a
``Fault`` for transient) and classifiers all become a callable returning a
``Fault`` (``to_classifier``), so the pipeline never branches on the form.
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable
from typing import Any

from ._classify import Classifier, classify, retry_after_hint
from ._errors import AllEndpointsFailed, ConfigError
from ._fault import PERMANENT as _PERMANENT
from ._fault import Fault
from ._frozen import Frozen

__all__ = [
    "PredicateClassifier",
    "TypesClassifier",
    "import_exception",
    "to_classifier",
    "warn_none",
]


class TypesClassifier(Frozen):
    """Exactly these exception types (and subclasses) are transient."""

    __slots__ = ("types",)
    types: tuple[type[BaseException], ...]

    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        self._set("types", types)

    def __call__(self, exc: BaseException) -> Fault:
        if isinstance(exc, Exception) and isinstance(exc, self.types):
            fault = classify(exc)
            if fault.transient:
                return fault
            return Fault(True, "explicit", retry_after_hint(exc))
        if isinstance(exc, AllEndpointsFailed):
            return _judge_members(self, exc)
        return _PERMANENT

    def __repr__(self) -> str:
        return "(" + ", ".join(t.__qualname__ for t in self.types) + ")"


_warned_none: set[tuple[str, str]] = set()
_MAX_WARNED_NONE = 1024  # predicates made at run time must not grow it without bound


def warn_none(name: str, which: str) -> None:
    """Warn (logger ``retryx``, once per callable and predicate) that a predicate
    returned ``None``: most often one that forgot its ``return``."""
    key = (name, which)
    if key in _warned_none:
        return
    if len(_warned_none) >= _MAX_WARNED_NONE:
        _warned_none.clear()
    _warned_none.add(key)
    import logging  # (the failure path only: not paid at import)

    logging.getLogger("retryx").warning(
        "%s: %s returned None, read as False (no retry); did it forget to return?",
        name,
        which,
        extra={"retryx": {"name": name}},
    )


class PredicateClassifier(Frozen):
    """A user callable returning a ``Fault`` or a ``bool`` (``True`` = transient)."""

    __slots__ = ("func",)
    func: Callable[[BaseException], Any]

    def __init__(self, func: Callable[[BaseException], Any]) -> None:
        self._set("func", func)

    def __call__(self, exc: BaseException) -> Fault:
        if not isinstance(exc, Exception):
            return _PERMANENT
        verdict = self.func(exc)
        if isinstance(verdict, Fault):
            return verdict
        if verdict is True:
            return Fault(True, "explicit", retry_after_hint(exc))
        if verdict is False or verdict is None:
            if verdict is None:
                warn_none(repr(self), "the predicate (retry_on or counts)")
            if isinstance(exc, AllEndpointsFailed):
                return _judge_members(self, exc)
            return _PERMANENT
        raise TypeError(
            f"retry_on classifier {self.func!r} must return a Fault or a bool, "
            f"got {type(verdict).__name__}"
        )

    def __repr__(self) -> str:
        return getattr(self.func, "__qualname__", repr(self.func))


def _judge_members(classifier: Classifier, group: AllEndpointsFailed) -> Fault:
    """A failover sweep's failure is transient when any endpoint's fault is."""
    for error in group.errors.values():
        fault = classifier(error)
        if fault.transient:
            return Fault(True, fault.cause, group.retry_after)
    return _PERMANENT


def import_exception(path: str, *, field: str) -> type[BaseException]:
    """Resolve ``"ConnectionError"`` (a builtin) or ``"pkg.mod:Qualname"`` to a type."""
    if ":" in path:
        module_name, _, qualname = path.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{field}: cannot import {path!r}: {exc}") from exc
    else:
        obj = getattr(builtins, path, None)
        if obj is None:
            raise ConfigError(
                f"{field}: {path!r} is not a builtin exception; use 'module:Qualname' for others"
            )
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise ConfigError(f"{field}: {path!r} is not an exception type")
    return obj


def _is_exc_type(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def to_classifier(spec: Any, *, field: str) -> Classifier:
    """Normalise a ``retry_on`` / ``counts`` value into a classifier.

    Raises:
        ConfigError: naming ``field`` when ``spec`` is none of the accepted forms.
    """
    if spec is None or spec is classify:
        return classify
    if isinstance(spec, TypesClassifier | PredicateClassifier):
        return spec
    if isinstance(spec, str):
        return TypesClassifier((import_exception(spec, field=field),))
    if _is_exc_type(spec):
        return TypesClassifier((spec,))
    if isinstance(spec, tuple | list | frozenset | set):
        if not spec:
            raise ConfigError(f"{field} must not be empty, got {spec!r}")
        types: list[type[BaseException]] = []
        for item in spec:
            if isinstance(item, str):
                types.append(import_exception(item, field=field))
            elif _is_exc_type(item):
                types.append(item)
            else:
                raise ConfigError(f"{field} entries must be exception types or names, got {item!r}")
        return TypesClassifier(tuple(types))
    if isinstance(spec, type):  # a class is callable, but calling it is no verdict
        raise ConfigError(f"{field} must be exception classes, got the class {spec.__qualname__}")
    if callable(spec):
        return PredicateClassifier(spec)
    raise ConfigError(
        f"{field} must be an exception type, a tuple of them, a predicate or a classifier, "
        f"got {spec!r}"
    )
