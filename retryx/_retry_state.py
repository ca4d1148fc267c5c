"""The retry state of one call: it carries out the engine's decisions.

Made once attempt 1 of a retrying call did not simply succeed (``Pipeline`` and the
drivers never make one on the happy path). The decisions are the engine's
(``retryx._engine``); this module books causes and budget tokens, adds the give-up
note, logs and emits, and runs the policy's hooks.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import _bus, _clock, _engine, _pushback, _switches, events
from ._classify import Classifier, Fault
from ._context import (
    HEAD_CALL_ID,
    HEAD_ENDPOINT,
    HEAD_PARENT,
    HEAD_PIPELINE,
    HEAD_START,
    HEAD_STATE,
    Head,
    call_id_of,
    retrying_of,
)
from ._engine import GiveUp
from ._nesting import address, carried
from ._policy import Policy
from ._stats import _FOLD_AT

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["GIVE_UP", "RetryState", "await_hook", "logger_of", "note", "run_hook"]

logger = _bus.logger
GIVE_UP = None  # what the decision methods return to say "stop and re-raise"


class RetryState:
    """The retry state of one call, made once attempt 1 did not simply succeed.

    The decisions are the engine's (``retryx._engine``); this class carries them
    out: it books causes and budget tokens, notes, logs and emits.
    """

    __slots__ = (
        "args",
        "attempt",
        "awaiting",
        "deadline_at",
        "deferred_to",
        "delay",
        "gave_up",
        "head",
        "kwargs",
        "last_exc",
        "last_result",
        "pipeline",
        "policy",
        "previous",
        "start",
        "target",
    )

    def __init__(
        self,
        head: Head,
        policy: Policy,
        target: Any = None,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.head = head
        # The call, for the events (as the caller passed it: not copied).
        self.target = target
        self.args = args
        self.kwargs = kwargs
        self.last_result: Any = None
        self.delay = 0.0  # the last wait decided (RetryWaited reports it)
        self.awaiting: list[Awaitable[Any]] | None = None  # async hooks to await, made on use
        self.pipeline: Pipeline = head[HEAD_PIPELINE]
        self.start: float = head[HEAD_START]
        if _switches.switches.test_attempts is not None:
            policy = _switches.capped(policy)
        self.policy = policy
        self.attempt = 1
        self.previous: float | None = None
        self.last_exc: Exception | None = None
        self.deadline_at = None if policy.deadline is None else self.start + policy.deadline
        # Nested in another retrying call that is still running (and not allowed
        # to multiply): one attempt, no waits; the outer call (whose id this is)
        # retries, with this layer's verdict.
        parent = head[HEAD_PARENT]
        outer = None
        if parent is not None and policy.nested == "defer":
            outer = retrying_of(parent)
        self.deferred_to: str | None = None if outer is None else call_id_of(outer)
        self.gave_up = False
        head[HEAD_STATE] = self

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or ``None``."""
        return None if self.deadline_at is None else self.deadline_at - _clock.monotonic()

    def on_error(self, exc: Exception, fault: Fault | None = None) -> float | None:
        """Decide after a failed attempt: the delay before the next one, or ``None``.

        ``fault``: the policy's verdict already reached (an async ``retry_on``, awaited).
        """
        policy = self.policy
        pipeline = self.pipeline
        # This call's verdict on exc: one carried to it (from a deferring inner layer,
        # or from this call's own failover sweep), else its policy's own.
        call_id = self.head[HEAD_CALL_ID]
        carried_verdict = None if call_id is None else carried(exc, call_id)
        classifier: Classifier = policy.retry_on  # type: ignore[assignment]  # normalised
        if carried_verdict is None and policy.idempotent:
            if fault is None:
                fault = classifier(exc)  # all _engine.judge would do here
            idempotent = True
        else:
            if fault is not None:
                reached = fault
                classifier = lambda _exc: reached  # noqa: E731
            fault, idempotent = _engine.judge(classifier, policy.idempotent, exc, carried_verdict)
        causes = pipeline.recorder.causes  # booked lock-free, like a success (see Recorder)
        causes.append(fault.cause)
        if len(causes) > _FOLD_AT:
            pipeline.recorder.fold()
        if fault.transient and policy.budget is not None:
            policy.budget.record_failure()
        self.last_exc = exc
        self.last_result = None
        if self.deferred_to is not None:
            # The outer layer retries, with this layer's judgement; no note, no GaveUp.
            address(exc, self.deferred_to, (fault, idempotent), inner=True)
            return GIVE_UP
        fb = pipeline.fallback
        if fb is not None and fb.defer_to is not None:
            # defer() reads it, if this is the last fault.
            address(exc, call_id_of(self.head), (fault, idempotent))
        return self._decide(exc, fault, idempotent)

    def on_result(self, result: Any, fault: Fault = _engine.RESULT) -> float | None:
        """Decide after an attempt whose result matched ``retry_if_result``.

        ``fault``: the predicate's verdict (``Pipeline.result_fault``): a returned delay
        or ``Fault`` carries the wait as its ``retry_after``.
        """
        policy = self.policy
        causes = self.pipeline.recorder.causes
        causes.append(fault.cause)
        if len(causes) > _FOLD_AT:
            self.pipeline.recorder.fold()
        if policy.budget is not None:
            policy.budget.record_failure()
        self.last_exc = None
        self.last_result = result
        if self.deferred_to is not None:
            return GIVE_UP
        return self._decide(None, fault, True)

    def _decide(self, exc: Exception | None, fault: Fault, idempotent: bool) -> float | None:
        """The engine's decision, carried out: the delay to wait, or ``GIVE_UP``."""
        policy = self.policy
        deadline_at = self.deadline_at
        remaining = None if deadline_at is None else deadline_at - _clock.monotonic()
        decision = _engine.decide(policy, fault, idempotent, self.attempt, self.previous, remaining)
        if isinstance(decision, GiveUp):
            return self._give_up(exc, decision.reason)
        self.previous = decision.previous
        delay = 0.0 if _switches.switches.test_attempts is not None else decision.delay
        self.delay = delay
        cause = fault.cause
        pipeline = self.pipeline
        out: Any = policy.log  # normalised: None (retryx), False (no lines) or a Logger
        if out is None:
            out = logger
        level: int = policy.retry_log_level  # type: ignore[assignment]  # normalised
        if out and out.isEnabledFor(level):
            fields = {
                "name": pipeline.name,
                "attempt": self.attempt,
                "delay": delay,
                "cause": cause,
                "elapsed": _clock.monotonic() - self.start,
            }
            if exc is not None:
                what: Any = type(exc).__name__
            else:
                what = _Shown(self.last_result)
                fields["result"] = what
            pipeline.log(
                level,
                "retrying %s in %.2fs after %s (cause=%s, attempt %d/%s)",
                (pipeline.name, delay, what, cause, self.attempt, policy.attempts or "unlimited"),
                fields,
                self.head[HEAD_ENDPOINT],
                to=out,
                exc=exc if policy.log_exc_info else None,
            )
        hook = policy.on_retry
        if _bus._subscribers or hook is not None:
            event = events.RetryScheduled(
                pipeline.name,
                self.attempt,
                delay,
                exc,
                cause,
                self.target,
                self.args,
                self.kwargs,
                self.last_result,
            )
            if _bus._subscribers:
                _bus.emit(event)
            if hook is not None:
                self.hook(hook, event)
        return delay

    def hook(self, hook: Callable[[Any], object], event: Any) -> None:
        """Run a policy's hook on ``event``; an async pipeline awaits what it returns."""
        pending = run_hook(hook, event, self.pipeline.is_async)
        if pending is not None:
            if self.awaiting is None:
                self.awaiting = []
            self.awaiting.append(pending)

    async def drain(self) -> None:
        """Await the async hooks run since the last drain (async pipelines)."""
        awaiting = self.awaiting
        while awaiting:
            await await_hook(awaiting.pop(0))
        self.awaiting = None

    def next_attempt(self) -> bool:
        """After the wait: move on, unless the deadline has passed."""
        if _bus._subscribers:
            _bus.emit(events.RetryWaited(self.pipeline.name, self.attempt, self.delay))
        if self.deadline_at is not None:
            stop = _engine.before_attempt(self.deadline_at - _clock.monotonic())
            if stop is not None:
                self._give_up(self.last_exc, stop.reason)
                return False
        self.attempt += 1
        return True

    def _give_up(self, exc: Exception | None, reason: str) -> float | None:
        pipeline = self.pipeline
        elapsed = _clock.monotonic() - self.start
        n = self.attempt
        label = self.policy.name or pipeline.name
        if exc is not None:
            note(
                exc,
                f"retryx: gave up after {n} attempt{'s' if n != 1 else ''} in {elapsed:.2f}s "
                f"(policy {label!r}, reason: {reason})",
                f"(policy {label!r}, reason: ",
            )
        # A permanent fault is the caller's to handle; the others gave up on a retryable one.
        policy = self.policy
        level: int = policy.give_up_log_level  # type: ignore[assignment]  # normalised
        if reason == "permanent":
            level = logging.DEBUG
        elif exc is None:
            level = min(level, logging.WARNING)  # a result is returned: the caller is not failing
        out = logger_of(policy)
        if out is not None and out.isEnabledFor(level):
            what = _Described(exc) if exc is not None else "returning last result"
            pipeline.log(
                level,
                "giving up on %s after %d attempt%s in %.2fs (reason: %s): %s",
                (pipeline.name, n, "s" if n != 1 else "", elapsed, reason, what),
                {"name": pipeline.name, "attempt": n, "elapsed": elapsed, "reason": reason},
                self.head[HEAD_ENDPOINT],
                to=out,
                exc=exc if policy.log_exc_info else None,
            )
        hook = policy.on_give_up
        if _bus._subscribers or hook is not None:
            event = events.GaveUp(
                pipeline.name,
                n,
                elapsed,
                exc,
                reason,
                self.target,
                self.args,
                self.kwargs,
                self.last_result if exc is None else None,
            )
            if _bus._subscribers:
                _bus.emit(event)
            if hook is not None:
                self.hook(hook, event)
        self.gave_up = True
        _pushback.note_give_up(exc, self.policy.retry_on)  # for a serving middleware
        return GIVE_UP


class _Described:
    """``"Type: message"`` of an exception, formatted only when a handler asks, and never
    raising: an exception whose ``__str__`` fails must not replace the caller's.

    Once formatted it keeps the text and lets the exception go, so a handler that
    keeps records (pytest's capture, a memory handler) does not keep the failed
    call's frames alive through it.
    """

    __slots__ = ("exc", "text")

    def __init__(self, exc: BaseException) -> None:
        self.exc: BaseException | None = exc
        self.text = ""

    def __str__(self) -> str:
        exc = self.exc
        if exc is None:
            return self.text
        name = type(exc).__name__
        try:
            self.text = f"{name}: {exc}"
        except Exception as error:  # any failure of a user's __str__
            self.text = f"{name}: <str() failed: {type(error).__name__}>"
        self.exc = None
        return self.text


class _Shown:
    """``result <repr>`` of a result to retry, formatted only when a handler asks, never
    raising, and shortened (``reprlib``): a response body must not flood the log."""

    __slots__ = ("text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text: str | None = None

    def __str__(self) -> str:
        if self.text is None:
            import reprlib

            try:
                self.text = f"result {reprlib.repr(self.value)}"
            except Exception as error:  # any failure of a user's __repr__
                self.text = f"result <repr() failed: {type(error).__name__}>"
            self.value = None
        return self.text

    __repr__ = __str__


def logger_of(policy: Policy | None) -> logging.Logger | None:
    """Where a policy's lines go: ``Policy.log`` (``None``: ``retryx``; ``False``: nowhere)."""
    out = None if policy is None else policy.log
    if out is None:
        return logger
    return out if isinstance(out, logging.Logger) else None


def run_hook(hook: Callable[[Any], object], event: Any, is_async: bool) -> Any:
    """Call a policy hook; one that raises is logged and skipped (like a subscriber).

    Returns what an async pipeline must await (an async hook's coroutine), else ``None``.
    """
    try:
        out = hook(event)
    except Exception:
        logger.exception("retryx: hook %r raised on %r; skipped", hook, type(event).__name__)
        return None
    if out is not None and inspect.isawaitable(out):
        if is_async:
            return out
        if inspect.iscoroutine(out):
            out.close()  # a sync pipeline cannot await it (async hooks are refused there)
    return None


async def await_hook(pending: Awaitable[Any]) -> None:
    try:
        await pending
    except Exception:
        logger.exception("retryx: async hook raised; skipped")


def note(exc: BaseException, note: str, tag: str) -> None:
    """Add the give-up ``note``, replacing one this policy (``tag``) added before.

    One note per raise: an exception instance raised again and again (a constant,
    a ``FaultSequence`` outcome) would otherwise pile up a note per call forever.
    Other layers' notes (an inner policy that gave up) stay.
    """
    notes = getattr(exc, "__notes__", None)
    if type(notes) is list and notes:
        notes[:] = [
            old
            for old in notes
            if not (type(old) is str and old.startswith(_NOTE_PREFIX) and tag in old)
        ]
    exc.add_note(note)


_NOTE_PREFIX = "retryx: gave up after "
