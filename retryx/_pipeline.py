"""The pipeline: every layer of one decorated callable, precomputed at decoration.

Stacked retryx decorators fuse into one ``Pipeline`` (``_decorators``) whose
layers always run in the order ``fallback -> retry -> failover ->
circuit_breaker -> call``. Its driver (``_drivers``, generated) runs attempt 1
inline; the slow path is ``_recovery``'s, the retry state ``_retry_state``'s,
failover ``_failover``'s. This class holds what they share: the layers, the
resolution of named policies and breakers, the nesting guard, what
``current()`` shows, and the booking of a finished call (stats, logs, events).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from . import _bus, _clock, _engine, _recovery, _switches, events
from ._breaker import CircuitBreaker
from ._classifiers import warn_none
from ._classify import Fault, classify
from ._context import (
    FINISHED,
    HEAD_ENDPOINT,
    HEAD_PARENT,
    HEAD_PIPELINE,
    HEAD_START,
    HEAD_STATE,
    CallContext,
    Head,
    call_id_of,
    retrying_of,
)
from ._errors import ConfigError, NestedRetryError
from ._failover import Failover, FailoverLayer
from ._mistakes import check_async_predicates
from ._named_breakers import named_breaker
from ._nesting import carried, warn_nested
from ._policy import Policy
from ._records import RecordMaker
from ._retry_state import RetryState, await_hook, logger_of, run_hook
from ._stats import _FOLD_AT, Recorder

if TYPE_CHECKING:
    from ._decorators import FallbackLayer

__all__ = ["Pipeline"]

logger = _bus.logger
_LOGGER_HANDLE = logging.Logger.handle


class Pipeline:
    """Everything one pipeline needs at call time, precomputed at decoration."""

    def __init__(self, layers: dict[str, Any], name: str, is_async: bool) -> None:
        self.layers = layers
        self.name = name
        self.is_async = is_async
        self.recorder = Recorder()
        self.pending = self.recorder.pending
        # The plain function under the wrappers (set by _decorators.make); replay names it.
        self.target: Any = None
        retry_layer = layers.get("retry")
        self.has_retry = retry_layer is not None
        self._named_policy: str | None = retry_layer if isinstance(retry_layer, str) else None
        self._policy: Policy | None = retry_layer if isinstance(retry_layer, Policy) else None
        self._policy_generation = -1
        if self._policy is not None:
            self._check_policy(self._policy)
            # Policy.name labels logs, events, stats and current() (default: the qualname).
            self.name = self._policy.name or name
        fo: FailoverLayer | None = layers.get("failover")
        breaker = layers.get("circuit_breaker")
        self.failover = None if fo is None else Failover(self, fo, breaker)
        self._breaker_name: str | None = breaker if isinstance(breaker, str) else None
        self._breaker: CircuitBreaker | None = (
            breaker if isinstance(breaker, CircuitBreaker) else None
        )
        self._breaker_generation = -1
        self.fallback: FallbackLayer | None = layers.get("fallback")
        self._warned_loop = False
        self._records: RecordMaker | None = None  # log records pointing at the target
        self.override: Policy | None = None  # retryx.override(), for tests
        # A plain attempt is just the call: no failover sweep, no breaker, no
        # per-attempt timeout (a named policy may set one, so it is never plain).
        no_timeout = self._named_policy is None and (
            self._policy is None or self._policy.attempt_timeout is None
        )
        self.plain = fo is None and breaker is None and no_timeout
        # An attempt through one known breaker only: the breaker's own guard.
        self.guard = self._breaker if fo is None and no_timeout else None
        policy = self._policy
        self.checks_result = self._named_policy is not None or (
            policy is not None
            and (
                policy.retry_if_result is not None
                or policy.budget is not None
                or policy.on_success is not None
            )
        )
        # The drivers' slow path (retryx._recovery), and one attempt when not plain.
        if is_async:
            self.recover: Any = functools.partial(_recovery.recover_async, self)
            self.attempt: Any = functools.partial(_recovery.attempt_async, self)
        else:
            self.recover = functools.partial(_recovery.recover_sync, self)
            self.attempt = (
                functools.partial(_recovery.attempt_sync, self)
                if self.failover is None
                else self.failover.sweep
            )

    # --- resolution of named policies and breakers ------------------------------------

    @property
    def fixed_policy(self) -> Policy | None:
        """The policy given at decoration; ``None`` without one or for a named policy
        (looked up per call: ``policy()``)."""
        return None if self._named_policy is not None else self._policy

    @property
    def named(self) -> bool:
        """Whether the retry layer names a configured policy (``@retry("name")``)."""
        return self._named_policy is not None

    def _check_policy(self, policy: Policy) -> None:
        if policy.attempt_timeout is not None and not self.is_async:
            raise ConfigError(
                f"{self.name}: Policy.attempt_timeout needs a coroutine function "
                f"(a sync call cannot be interrupted), got attempt_timeout={policy.attempt_timeout}"
            )
        check_async_predicates(self.name, policy, self.is_async, self.layers)

    def policy(self) -> Policy:
        if self._named_policy is None:
            assert self._policy is not None
            return self._policy
        from . import _config

        generation = _config.generation()
        if generation != self._policy_generation or self._policy is None:
            # Resolve from one snapshot so the generation stored matches the policy.
            snapshot = _config.snapshot()
            policy = snapshot.policy(self._named_policy)
            self._check_policy(policy)
            self._policy = policy
            self._policy_generation = snapshot.generation
            if policy.name:
                self.name = policy.name
        return self._policy

    def breaker(self) -> CircuitBreaker | None:
        if self._breaker_name is None:
            return self._breaker
        from . import _config

        generation = _config.generation()
        if generation != self._breaker_generation or self._breaker is None:
            self._breaker = named_breaker(self._breaker_name)
            self._breaker_generation = generation
        return self._breaker

    def sleep_sync(self, delay: float) -> None:
        if not self._warned_loop:
            asyncio = sys.modules.get("asyncio")
            if asyncio is not None and asyncio._get_running_loop() is not None:
                self._warned_loop = True
                logger.warning(
                    "%s is a sync retrying call sleeping %.2fs inside a running asyncio "
                    "event loop: it blocks the loop; decorate an async function instead",
                    self.name,
                    delay,
                    extra={"retryx": {"name": self.name, "delay": delay}},
                )
        _clock.sleep(delay)

    def log(
        self,
        level: int,
        msg: str,
        args: tuple[Any, ...],
        fields: dict[str, Any],
        endpoint: Hashable | None = None,
        *,
        to: logging.Logger = logger,
        exc: BaseException | None = None,
    ) -> None:
        """Log on ``to`` (``retryx``, or the policy's ``log``) with ``record.retryx``
        fields, without ``findCaller``'s stack walk.

        The record points at the decorated function's source, which says more than
        a line inside retryx would. ``endpoint``, when there is one, joins the fields;
        ``exc`` is the record's ``exc_info``.
        """
        if endpoint is not None:
            fields["endpoint"] = endpoint
        records = self._records
        # A named policy may rename, or log elsewhere.
        if records is None or records.func != self.name or records.name != to.name:
            code = getattr(self.target, "__code__", None)
            where = (
                (code.co_filename, code.co_firstlineno) if code is not None else ("(unknown)", 0)
            )
            records = self._records = RecordMaker(to.name, where[0], where[1], self.name)
        record = records(level, msg, args)
        record.retryx = fields
        if exc is not None:
            record.exc_info = (type(exc), exc, exc.__traceback__)
        if to.filters or to.disabled or type(to).handle is not _LOGGER_HANDLE:
            to.handle(record)
        else:
            to.callHandlers(record)  # all that Logger.handle does without filters

    # --- finishing a call ----------------------------------------------------------

    def context(self, head: Head) -> CallContext | None:
        """What ``current()`` shows for the call whose head is ``head``.

        An ended call (seen from a task or callback that outlived it) shows the
        innermost call still running around it, else ``None``.
        """
        call: RetryState | None = head[HEAD_STATE]
        if call is FINISHED:
            parent = head[HEAD_PARENT]
            return parent[HEAD_PIPELINE].context(parent) if type(parent) is list else None
        if call is not None:
            remaining = call.remaining()
            attempt = call.attempt
        else:
            attempt = 1
            remaining = None
            if self.has_retry:
                deadline = self.policy().deadline
                if deadline is not None:
                    remaining = head[HEAD_START] + deadline - _clock.monotonic()
        if remaining is not None:
            remaining = max(0.0, remaining)
        return CallContext(call_id_of(head), attempt, remaining, head[HEAD_ENDPOINT], self.name)

    def start(self, head: Head, parent: Any) -> Policy | None:
        """The policy for this call; runs the nesting guard when nested in a retry.

        While a switch is in effect (``_switches``): ``BYPASS`` when retryx is
        switched off, and an ``override()``'s policy in place of the decorated one.
        """
        policy = self._policy if self._named_policy is None else self.policy()
        switches = _switches.switches
        if switches.slow:
            if not switches.active:
                return _switches.BYPASS  # type: ignore[no-any-return]
            if self.override is not None:
                policy = self.override
        if policy is not None and policy.nested != "allow":
            outer = retrying_of(parent)
            if outer is not None:
                outer_name = outer[HEAD_PIPELINE].name
                if policy.nested == "raise":
                    raise NestedRetryError(outer_name, self.name)
                warn_nested(outer_name, self.name)
        return policy

    def bypass(self, wrapped: Any, args: Any, kwargs: Any) -> Any:
        """The plain call of a switched-off pipeline (``set_active(False)``); under
        failover, on the first endpoint unless the caller pinned one."""
        fo = self.failover
        if fo is not None and fo.param not in kwargs:
            kwargs = {**kwargs, fo.param: fo.endpoints()[0]}
        return wrapped(*args, **kwargs)

    def succeeded(
        self, call: RetryState | None, policy: Policy | None, head: Head, result: Any = None
    ) -> Any:
        """Book a call that returned after the slow path (retried or recovered).

        Returns what an async pipeline must await (an async ``on_success`` hook), else
        ``None``.
        """
        elapsed = _clock.monotonic() - head[HEAD_START]
        attempts = 1 if call is None else call.attempt
        gave_up = call is not None and call.gave_up
        self.recorder.finish(elapsed, ok=True, retries=attempts - 1, gave_up=gave_up)
        out = logger_of(policy) if attempts > 1 else None
        if out is not None and out.isEnabledFor(logging.INFO):
            self.log(
                logging.INFO,
                "%s succeeded after %d attempts in %.2fs",
                (self.name, attempts, elapsed),
                {"name": self.name, "attempt": attempts, "elapsed": elapsed},
                to=out,
            )
        if policy is not None and policy.budget is not None and not gave_up:
            # A result returned because retry_if_result ran out is no success to refund.
            policy.budget.record_success()
        hook = None if policy is None or gave_up else policy.on_success
        if (_bus._subscribers and not gave_up) or hook is not None:  # GaveUp told that story
            if call is None:
                event = events.Succeeded(self.name, attempts, elapsed, result=result)
            else:
                event = events.Succeeded(
                    self.name, attempts, elapsed, call.target, call.args, call.kwargs, result
                )
            if _bus._subscribers:
                _bus.emit(event)
            if hook is not None:
                return run_hook(hook, event, self.is_async)
        return None

    def _first_success(
        self, head: Head, policy: Policy, result: Any, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        """Book attempt 1's success for a policy with an ``on_success`` hook (the driver's
        ``checks_result`` branch: functions without hooks never come here)."""
        elapsed = _clock.monotonic() - head[HEAD_START]
        self.pending.append(elapsed)
        if len(self.pending) > _FOLD_AT:
            self.recorder.fold()
        event = events.Succeeded(self.name, 1, elapsed, wrapped, args, kwargs, result)
        if _bus._subscribers:
            _bus.emit(event)
        assert policy.on_success is not None
        return run_hook(policy.on_success, event, self.is_async)

    def _first_success_sync(
        self, head: Head, policy: Policy, result: Any, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        self._first_success(head, policy, result, wrapped, args, kwargs)
        return result

    async def _first_success_async(
        self, head: Head, policy: Policy, result: Any, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        pending = self._first_success(head, policy, result, wrapped, args, kwargs)
        if pending is not None:
            await await_hook(pending)
        return result

    def result_fault(self, verdict: Any) -> Fault | None:
        """``retry_if_result``'s verdict as the fault to retry, or ``None``: no retry.

        ``True``: retry after the backoff; a number (``int``/``float``, not ``bool``)
        or ``timedelta``: retry after that many seconds (a hint: capped by
        ``retry_after_max`` and the deadline); a ``Fault``: its verdict and
        ``retry_after``; anything else by truth value. ``None`` (a predicate that
        forgot to ``return``) is warned about once per callable.
        """
        if verdict is True:
            return _engine.RESULT
        if verdict is False:
            return None
        if isinstance(verdict, Fault):
            return verdict if verdict.transient else None
        if hasattr(verdict, "total_seconds"):
            verdict = verdict.total_seconds()
        if isinstance(verdict, int | float) and not isinstance(verdict, bool):
            delay = float(verdict)
            if not delay >= 0:  # negative or NaN
                raise ConfigError(
                    f"{self.name}: Policy.retry_if_result returned {verdict!r}; a delay "
                    "must be >= 0 seconds"
                )
            return Fault(True, "result", delay)
        if verdict is None:
            warn_none(self.name, "Policy.retry_if_result")
            return None
        return _engine.RESULT if verdict else None

    def first_result(self, result: Any) -> bool:
        """Look at a sync callable's first result; ``False``: no need to look again.

        An awaitable there is a coroutine function in disguise (``lambda: fetch(url)``
        over an ``async def``): the call "succeeded" as soon as the coroutine
        existed, and its failures would never be retried, counted or seen by a
        breaker. That is refused at once (see docs/decisions.md).

        Raises:
            ConfigError: naming the callable, when ``result`` is awaitable.
        """
        if not inspect.isawaitable(result):
            return False
        if inspect.iscoroutine(result):
            result.close()  # never awaited: closed, so no "never awaited" warning
        raise ConfigError(
            f"{self.name} is not a coroutine function but returned an awaitable "
            f"({type(result).__name__}): retryx would see only its creation, never its "
            "outcome; decorate an async def instead (async def call(): return await ...)"
        )

    def failed(self, head: Head, exc: BaseException) -> None:
        """Book a call that ended in an exception."""
        elapsed = _clock.monotonic() - head[HEAD_START]
        call: RetryState | None = head[HEAD_STATE]
        attempts = 1 if call is None else call.attempt
        gave_up = call is not None and call.gave_up
        self.recorder.finish(elapsed, ok=False, retries=attempts - 1, gave_up=gave_up)
        for hook in _bus._failure_hooks:
            hook(self.name, attempts, elapsed, exc)

    @staticmethod
    async def verdict(matched: Any) -> Any:
        """A ``retry_if_result`` verdict, awaited when the predicate is async."""
        return (await matched) if inspect.isawaitable(matched) else matched

    def defer(self, head: Head, exc: Exception, instance: Any, args: Any, kwargs: Any) -> Any:
        """Store the failed call in the fallback's replay queue; the call returns ``None``."""
        fb = self.fallback
        assert fb is not None
        call_id = call_id_of(head)
        verdict = carried(exc, call_id)
        if verdict is None:
            classifier = self.policy().classifier if self.has_retry else classify
            verdict = (classifier(exc), True)
        fault, idempotent = verdict
        if not fault.transient or not (idempotent or fault.unsent):
            # A permanent fault is the caller's, never stored; nor is a request that
            # may have been sent when a layer says it must not be sent twice.
            raise exc
        fb.defer_to.defer(self, call_id, exc, instance, args, kwargs)
        if _bus._subscribers:
            _bus.emit(events.Deferred(self.name, call_id, exc, fb.defer_to))
        return None
