"""The retryx exception tree, and the exceptions user code raises to classify faults."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

__all__ = [
    "AllEndpointsFailed",
    "CircuitOpenError",
    "ConfigError",
    "NestedRetryError",
    "Permanent",
    "RetryxError",
    "Transient",
]


class RetryxError(Exception):
    """Base class of every error retryx raises itself."""


class ConfigError(RetryxError, ValueError):
    """A bad argument, policy field or configuration entry.

    Raised at decoration, construction or load time, never silently defaulted.
    """


# The largest int any setting takes (a C ssize_t: deque lengths, counts); larger ints
# are ConfigErrors, as are numbers of seconds too large to be a float.
MAX_INT = 2**63 - 1


def shown(value: Any) -> str:
    """``repr(value)`` for an error message; a huge int by its size (printing all its
    digits may itself fail: Python limits int-to-str conversions to 4300 digits)."""
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def to_float(owner: str, value: int | float) -> float:
    """``float(value)``, or a ``ConfigError`` naming ``owner`` for an int too large for one."""
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{owner} is too large, got {shown(value)}") from None


class CircuitOpenError(RetryxError):
    """A circuit breaker rejected the call without running it.

    Args:
        breaker: the breaker's name.
        retry_after: seconds until the breaker lets a trial call through
            (``0.0`` when the half-open trial slots are taken, ``inf`` when the
            breaker was opened by hand).
    """

    def __init__(self, breaker: str, retry_after: float) -> None:
        self.breaker = breaker
        self.retry_after = float(retry_after)
        if math.isinf(self.retry_after):
            when = "opened by hand"
        else:
            when = f"retry after {self.retry_after:.2f}s"
        super().__init__(f"circuit breaker {breaker!r} is open ({when})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.breaker, self.retry_after))


class AllEndpointsFailed(ExceptionGroup[Exception], RetryxError):
    """Every endpoint of a failover sweep failed (or was skipped by its open breaker).

    ``errors`` maps each endpoint to its exception, in the order they were tried.
    It is transient when any of its errors is transient; ``retry_after`` is the
    smallest hint among its errors when every error carries one, else ``None``.
    """

    errors: dict[Hashable, Exception]

    def __new__(cls, errors: Mapping[Hashable, BaseException]) -> AllEndpointsFailed:
        excs = list(errors.values())
        if not excs:
            raise ConfigError("AllEndpointsFailed needs at least one endpoint error")
        message = f"all {len(excs)} endpoints failed: " + ", ".join(
            f"{ep!r}: {type(e).__name__}" for ep, e in errors.items()
        )
        self = super().__new__(cls, message, excs)  # type: ignore[arg-type]
        self.errors = dict(errors)  # type: ignore[arg-type]
        return self

    def __init__(self, errors: Mapping[Hashable, BaseException]) -> None:
        excs = list(errors.values())
        super().__init__(self.message, excs)  # type: ignore[arg-type]

    @property
    def retry_after(self) -> float | None:
        """The smallest ``retry_after`` of the errors, when every error has one."""
        hints: list[float] = []
        for error in self.errors.values():
            hint = getattr(error, "retry_after", None)
            if not isinstance(hint, int | float):
                return None
            hints.append(float(hint))
        return min(hints) if hints else None

    def derive(self, excs: Any) -> Any:
        """A plain ``ExceptionGroup`` of ``excs`` (used by ``split()``/``subgroup()``,
        where the endpoint keys of ``errors`` no longer apply)."""
        return ExceptionGroup(self.message, excs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


class NestedRetryError(RetryxError):
    """A retrying call started inside another one with ``nested="raise"``.

    It is permanent: the outer layer does not retry it.
    """

    def __init__(self, outer: str, inner: str) -> None:
        self.outer = outer
        self.inner = inner
        super().__init__(
            f"nested retry: {inner!r} retries inside {outer!r}; attempts would multiply "
            "(set nested='defer' or 'allow' on the inner policy)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.outer, self.inner))


class Transient(Exception):
    """Raise to mark a fault as transient (worth retrying).

    Args:
        msg: the message.
        retry_after: seconds the peer asked to wait, honoured instead of the backoff.
        unsent: ``True`` when the request provably never reached the peer, so a
            non-idempotent call may be retried too.
    """

    def __init__(self, msg: str = "", retry_after: float | None = None, unsent: bool = False):
        super().__init__(msg)
        self.retry_after = retry_after
        self.unsent = unsent


class Permanent(Exception):
    """Raise to mark a fault as permanent: never retried, never trips a breaker."""


for _cls in (
    RetryxError,
    ConfigError,
    CircuitOpenError,
    AllEndpointsFailed,
    NestedRetryError,
    Transient,
    Permanent,
):
    _cls.__module__ = "retryx"


def detached(exc: BaseException) -> BaseException:
    """A copy of ``exc`` without its traceback, cause and context: what a breaker keeps.

    A breaker lives as long as the process; keeping the failed call's exception would
    keep its traceback, so every frame and local of that call (see tests/test_leaks.py).
    The copy has the same type, ``args`` and attributes (a shallow copy of its
    ``__dict__``); ``__init__`` is not run again. A type that cannot be copied so
    gives a plain ``Exception`` with the original's text.
    """
    kind = type(exc)
    try:
        twin = kind.__new__(kind, *exc.args)
        twin.args = exc.args
        vars(twin).update(vars(exc))
        if hasattr(exc, "__notes__"):  # a list: not shared with the original
            twin.__notes__ = list(exc.__notes__)
    except Exception:
        try:
            text = f"{kind.__qualname__}: {exc}"
        except Exception:
            text = kind.__qualname__
        return Exception(text)
    return twin
