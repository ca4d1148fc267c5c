"""The breaker model shared by the model tests: what a ``CircuitBreaker`` should do,
written as plainly as possible, and the outcomes a modelled call can have."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from retryx import CircuitBreaker, Permanent, classify

__all__ = ["Model", "Unjudgeable", "counts", "raise_for"]


class Model:
    """What a breaker should do, written as plainly as possible.

    ``mode`` is closed, open (by failures), forced (by hand) or half_open.
    ``phase`` numbers the stays in one mode: a trial admitted in an earlier
    phase has no say any more. Calls admitted while closed (ticket ``None``)
    only count while the breaker is closed.
    """

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.threshold = breaker.failure_threshold
        self.rate = breaker.failure_rate
        self.minimum = breaker.minimum_calls
        self.timeout = breaker.recovery_timeout
        self.max_trials = breaker.half_open_max_calls
        self.to_close = breaker.success_threshold
        self.mode = "closed"
        self.opened_at = 0.0
        self.phase = 0
        self.failures = 0
        self.recent: deque[bool] = deque(maxlen=breaker.window)
        self.trials = 0
        self.successes = 0
        self.changes: list[tuple[str, str]] = []

    @staticmethod
    def shown(mode: str) -> str:
        return "open" if mode == "forced" else mode

    def state(self, now: float) -> str:
        if self.mode == "open" and now >= self.opened_at + self.timeout:
            return "half_open"
        return self.shown(self.mode)

    def retry_after(self, now: float) -> float:
        if self.mode == "forced":
            return math.inf
        if self.mode == "open":
            return max(0.0, self.opened_at + self.timeout - now)
        return 0.0

    def enter(self, mode: str, now: float) -> None:
        old = self.shown(self.mode)
        self.mode = mode
        self.phase += 1
        self.failures = self.trials = self.successes = 0
        self.recent.clear()
        if mode in ("open", "forced"):
            self.opened_at = now
        if old != self.shown(mode):
            self.changes.append((old, self.shown(mode)))

    def admit(self, now: float) -> tuple[bool, Any]:
        """(True, ticket) when the call may run, else (False, retry_after)."""
        if self.mode == "closed":
            return True, None
        if self.mode == "forced":
            return False, math.inf
        if self.mode == "open":
            if now < self.opened_at + self.timeout:
                return False, self.opened_at + self.timeout - now
            self.enter("half_open", now)
        if self.trials >= self.max_trials:
            return False, 0.0
        self.trials += 1
        return True, self.phase

    def finish(self, ticket: Any, outcome: str, now: float) -> None:
        failed = outcome == "transient"  # a permanent fault means the dependency answered
        if ticket is None:
            if self.mode != "closed":
                return
            if self.rate is not None:
                self.recent.append(failed)
                calls = len(self.recent)
                if failed and calls >= self.minimum and sum(self.recent) / calls >= self.rate:
                    self.enter("open", now)
            elif failed:
                self.failures += 1
                if self.failures >= self.threshold:
                    self.enter("open", now)
            else:
                self.failures = 0
            return
        if ticket != self.phase or self.mode != "half_open":
            return
        if failed:
            self.enter("open", now)
            return
        self.trials -= 1
        self.successes += 1
        if self.successes >= self.to_close:
            self.enter("closed", now)

    def cancel(self, ticket: Any) -> None:
        if ticket is not None and ticket == self.phase and self.mode == "half_open":
            self.trials -= 1


class Unjudgeable(Exception):
    """What the model's counts classifier cannot judge (its ``outcome`` says how)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def counts(exc: BaseException) -> Any:
    """``classify``, except that it raises or answers a str for ``Unjudgeable``."""
    if isinstance(exc, Unjudgeable):
        if exc.outcome == "raises":
            raise RuntimeError("classifier bug")
        return "maybe"
    return classify(exc)


def raise_for(outcome: str) -> None:
    if outcome == "transient":
        raise ConnectionError("down")
    if outcome == "permanent":
        raise Permanent("bad request")
    if outcome in ("raises", "nonsense"):
        raise Unjudgeable(outcome)
