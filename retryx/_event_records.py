"""The event records of ``retryx.events`` (frozen dataclasses).

Kept apart so ``import retryx`` does not pay for defining them (a frozen,
slotted dataclass takes about half a millisecond to create): ``retryx.events``
imports this module the first time one of them is looked up.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """Attempt ``attempt`` failed with a transient fault; retrying after ``delay`` s.

    ``exception`` is ``None`` when the attempt returned a result that
    ``retry_if_result`` asked to retry (``cause`` is then ``"result"``, or the cause
    of the ``Fault`` it returned), and ``result`` is that result.
    """

    name: str
    attempt: int
    delay: float
    exception: BaseException | None
    cause: str
    # The call (issue 19): ``target(*args, **kwargs)`` is the call as the caller made it
    # (not copied); ``None`` where there is none (a retry block). Not compared.
    target: Any = field(default=None, compare=False, repr=False)
    args: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    kwargs: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    result: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The call failed for good; ``reason`` says why (``retryx._engine.REASONS``).

    ``permanent``, ``not_idempotent``, ``attempts``, ``deadline`` or ``budget``.

    ``exception`` is ``None`` when the last attempt returned a result that
    ``retry_if_result`` still matched: that result (``result``) is returned to the
    caller.
    """

    name: str
    attempts: int
    elapsed: float
    exception: BaseException | None
    reason: str
    # The call (issue 19): ``target(*args, **kwargs)`` is the call as the caller made it
    # (not copied); ``None`` where there is none (a retry block). Not compared.
    target: Any = field(default=None, compare=False, repr=False)
    args: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    kwargs: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    result: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The call succeeded after ``attempts`` attempts, returning ``result``."""

    name: str
    attempts: int
    elapsed: float
    # The call (issue 19): ``target(*args, **kwargs)`` is the call as the caller made it
    # (not copied); ``None`` where there is none (a retry block). Not compared.
    target: Any = field(default=None, compare=False, repr=False)
    args: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)
    kwargs: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    result: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RetryWaited:
    """The wait of ``delay`` s after attempt ``attempt`` failed has ended; the next
    attempt starts now (unless the deadline passed meanwhile). Pairs with ``RetryScheduled``:
    a span opened on one can be closed on the other.
    """

    name: str
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class CircuitStateChanged:
    """Breaker ``breaker`` moved from ``old`` to ``new`` (closed, open, half_open)."""

    breaker: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class BreakerCall:
    """A call through breaker ``name`` ended with ``outcome``.

    ``"success"``; ``"failure"`` (a fault its ``counts`` calls transient);
    ``"ignored"`` (a fault ``counts`` calls permanent: booked as a success);
    ``"rejected"`` (refused without running, ``CircuitOpenError``). A call cut short
    without a verdict (cancelled, a generator closed early) emits none. Told before
    the state change it causes; made only while someone subscribes.
    """

    name: str
    outcome: str


@dataclass(frozen=True, slots=True)
class EndpointFailed:
    """Endpoint ``endpoint`` of a failover sweep failed (or was skipped by its breaker)."""

    name: str
    endpoint: Hashable
    exception: BaseException


@dataclass(frozen=True, slots=True)
class NestedRetry:
    """A retrying call ``inner`` started inside ``outer`` and deferred its retries."""

    outer: str
    inner: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The call was stored in a replay queue instead of failing."""

    name: str
    call_id: str
    exception: BaseException
    queue: Any


Event: TypeAlias = (
    RetryScheduled
    | RetryWaited
    | GaveUp
    | Succeeded
    | CircuitStateChanged
    | BreakerCall
    | EndpointFailed
    | NestedRetry
    | Deferred
)
"""Any event record a subscriber can receive; tell them apart with ``isinstance``."""

for _cls in (
    RetryScheduled,
    RetryWaited,
    GaveUp,
    Succeeded,
    CircuitStateChanged,
    BreakerCall,
    EndpointFailed,
    NestedRetry,
    Deferred,
):
    _cls.__module__ = "retryx.events"
