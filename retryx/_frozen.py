"""``Frozen``: the base of retryx's small immutable value objects.

Backoff and jitter strategies and classifiers get equality, hashing, a default
``repr`` and attribute protection from their ``__slots__``, like frozen
dataclasses, without generating code when ``retryx`` is imported (a frozen,
slotted dataclass costs about half a millisecond to define; ``import retryx``
has a budget of 30 ms). Subclasses set their fields in ``__init__`` with
``_set`` and validate them there.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

__all__ = ["Frozen"]


class Frozen:
    """Immutable, compared and hashed by the values of its ``__slots__``."""

    __slots__ = ()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        slots: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in slots)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        slots: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in slots)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"{type(self).__name__} is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"{type(self).__name__} is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._values()))


def _rebuild(cls: type[Frozen], values: tuple[Any, ...]) -> Frozen:
    obj = object.__new__(cls)
    slots: tuple[str, ...] = cls.__slots__
    for name, value in zip(slots, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj
