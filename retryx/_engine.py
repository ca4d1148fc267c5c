"""The retry engine: what happens after an attempt, decided as a value (sans-IO).

The engine never sleeps, logs, emits or counts: it takes what the caller knows
(the policy, the fault, the attempt that failed, the time left) and returns a
``Wait(delay)`` or a ``GiveUp(reason)``. Its callers carry out the effects: the
pipeline (``_retry_state.RetryState``) notes, logs, emits and sleeps; ``retryx explain``,
``retryx simulate`` and ``retryx run`` draw their schedules from the same
function, so the contract's give-up order lives here only:

1. ``permanent``: the fault is not transient;
2. ``not_idempotent``: a layer on the path says ``idempotent=False`` and the
   fault may have reached the peer (it does not prove the request unsent);
3. ``attempts``: no attempt left;
4. ``deadline``: a Retry-After hint beyond ``retry_after_max`` (or infinite), or a
   wait longer than the time left;
5. ``budget``: the shared budget denies the retry (asked last, and only then: it
   is the one piece of outside state the engine consults).

``judge`` is the classification step before it: the policy's classifier, with
``unsent`` settled only when an ``idempotent=False`` layer needs it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from . import jitter as _jitter
from ._classify import Classifier, Fault, is_unsent
from .backoff import Backoff, cap_of

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = [
    "ATTEMPTS",
    "BUDGET",
    "DEADLINE",
    "NOT_IDEMPOTENT",
    "PERMANENT",
    "REASONS",
    "RESULT",
    "GiveUp",
    "Wait",
    "before_attempt",
    "bounds",
    "decide",
    "draw",
    "judge",
]

REASONS = ("permanent", "not_idempotent", "attempts", "deadline", "budget")
"""Every give-up reason, in the order the engine checks them."""

_NO_JITTER = _jitter.none
_INF = float("inf")
# The longest wait the platform can sleep (time.sleep overflows beyond it, about 292
# years): a longer one gives up at once, reason deadline.
_MAX_WAIT = threading.TIMEOUT_MAX


class Wait(NamedTuple):
    """Retry after ``delay`` seconds; ``previous`` is the jitter's memory for the next draw
    (the drawn delay, or the last one when a peer's hint replaced the backoff)."""

    delay: float
    previous: float | None


class GiveUp(NamedTuple):
    """Stop and end the call; ``reason`` is one of ``REASONS``. ``delay`` is the wait
    that was refused, for a ``deadline`` give-up after a failure (else ``None``)."""

    reason: str
    delay: float | None = None


# A Wait is made by tuple.__new__ directly: no Python __new__ frame per retry.
_new = tuple.__new__

PERMANENT = GiveUp("permanent")
NOT_IDEMPOTENT = GiveUp("not_idempotent")
ATTEMPTS = GiveUp("attempts")
DEADLINE = GiveUp("deadline")
BUDGET = GiveUp("budget")

RESULT = Fault(True, "result")
"""The fault of an attempt whose result matched ``retry_if_result`` (never re-sent:
the request was answered, so it is retried whatever ``idempotent`` says)."""


def judge(
    classifier: Classifier, idempotent: bool, exc: BaseException, carried: Any = None
) -> tuple[Fault, bool]:
    """The verdict on ``exc``: its ``Fault`` and whether the request may be sent again.

    ``carried`` is a verdict that came with the fault from a deferring inner layer
    (``(fault, idempotent)``): it replaces the classifier, and its ``idempotent``
    joins this layer's (a request one layer says may not be re-sent is re-sent by
    none). ``Fault.unsent`` is settled (``is_unsent``) only when a transient fault
    meets an ``idempotent=False`` layer: the only case that reads it.
    """
    if carried is None:
        fault = classifier(exc)
    else:
        fault, inner_idempotent = carried
        idempotent = idempotent and inner_idempotent
    if fault.transient and not idempotent and not fault.unsent and is_unsent(exc):
        fault = Fault(True, fault.cause, fault.retry_after, True)
    return fault, idempotent


def draw(policy: Policy, retry: int, previous: float | None) -> float:
    """The jittered backoff wait before retry ``retry`` (1, 2, ...).

    ``previous`` is the last draw (``None`` before the first one): decorrelated
    jitter grows from it, starting at ``backoff.delay(1)``, capped at the backoff's cap.
    """
    # Policy normalised both at construction (see Policy.backoff_strategy).
    backoff: Backoff = policy.backoff  # type: ignore[assignment]
    delay = backoff.delay(retry)
    jitter: _jitter.Jitter = policy.jitter  # type: ignore[assignment]
    if jitter is _NO_JITTER:
        return delay
    base = backoff.delay(1)
    drawn = jitter.apply(delay, base if previous is None else previous, base, cap_of(backoff))
    floor: float = getattr(backoff, "min", 0.0)  # backoff.exponential(min=...) floors every wait
    return floor if drawn < floor else drawn


def bounds(policy: Policy, retry: int, previous: float | None) -> tuple[float, float]:
    """The smallest and largest wait ``draw`` can return for these arguments."""
    backoff: Backoff = policy.backoff  # type: ignore[assignment]
    jitter: _jitter.Jitter = policy.jitter  # type: ignore[assignment]
    base = backoff.delay(1)
    delay = backoff.delay(retry)
    lo, hi = jitter.bounds(delay, base if previous is None else previous, base, cap_of(backoff))
    floor: float = getattr(backoff, "min", 0.0)
    return (max(lo, floor), max(hi, floor))


def decide(
    policy: Policy,
    fault: Fault,
    idempotent: bool,
    attempt: int,
    previous: float | None,
    remaining: float | None,
) -> Wait | GiveUp:
    """After attempt ``attempt`` failed with ``fault``: wait and retry, or give up.

    Args:
        policy: the retry policy.
        fault: the verdict on the failure (``RESULT`` for a ``retry_if_result`` match).
        idempotent: whether every layer on the path allows re-sending a request
            (``judge`` settles it); ``False`` with a fault that is not ``unsent``
            gives up (``not_idempotent``).
        attempt: the attempt that failed, 1-based.
        previous: the jitter's memory (``Wait.previous`` of the last decision, or
            ``None`` at first).
        remaining: seconds left before the deadline, or ``None`` without one.

    Returns:
        ``Wait(delay, previous)``, or ``GiveUp(reason)`` per the order in the module
        docstring.
    """
    if not fault.transient:
        return PERMANENT
    if not idempotent and not fault.unsent and fault is not RESULT:
        return NOT_IDEMPOTENT
    limit = policy.attempts
    if limit is not None and attempt >= limit:  # None: unlimited
        return ATTEMPTS
    hint = fault.retry_after
    if hint is not None:
        # A peer's hint replaces the backoff and is not jittered; an infinite hint
        # (a breaker opened by hand) is never waited, whatever the cap.
        if hint > policy.retry_after_max or hint == _INF:
            return GiveUp("deadline", hint)
        delay = hint
    else:
        delay = previous = draw(policy, attempt, previous)
    if delay > _MAX_WAIT or (remaining is not None and delay > remaining):
        return GiveUp("deadline", delay)
    if policy.budget is not None and not policy.budget.allows_retry():
        return BUDGET
    return _new(Wait, (delay, previous))


def before_attempt(remaining: float | None) -> GiveUp | None:
    """Before the next attempt (after the wait): ``deadline`` when it has passed."""
    if remaining is not None and remaining < 0:
        return DEADLINE
    return None
