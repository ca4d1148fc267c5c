"""The one pipeline every retryx decorator builds on.

Stacked retryx decorators fuse into one ``_Pipeline`` (a ``wrapt.FunctionWrapper``
subclass) whose layers always run in the order
``fallback -> retry -> failover -> circuit_breaker -> call``.

The decisions (retry or give up, how long to wait, which endpoint is next) are
made by plain methods that never sleep (``_Call.on_error`` and friends); the two
drivers, ``Runner.run_sync`` and ``Runner.run_async``, only call, sleep and
await. They mirror each other line for line: change one, change the other.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import wrapt

from . import _bus, _clock, _drivers, events
from . import jitter as _jitter
from ._breaker import _CLOSED, CircuitBreaker
from ._classify import Classifier, Fault, classify, is_unsent
from ._context import SCOPE, CallContext, ReplayScope, new_call_id
from ._errors import AllEndpointsFailed, CircuitOpenError, ConfigError, NestedRetryError
from ._frozen import Frozen
from ._policy import Policy
from ._records import RecordMaker
from ._stats import _FOLD_AT, Recorder, Stats
from .backoff import Backoff, cap_of
from .jitter import Jitter

__all__ = [
    "circuit_breaker",
    "describe",
    "failover",
    "fallback",
    "retry",
    "stats",
]

if TYPE_CHECKING:  # typing_extensions is for type checkers only: no import cost
    from typing_extensions import ParamSpec

    P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)

logger = _bus.logger
_MISSING: Any = _drivers.MISSING  # "no result yet"
_ORDER = ("fallback", "retry", "failover", "circuit_breaker")
_GIVE_UP = None  # what the decision methods return to say "stop and re-raise"
_MAX_ENDPOINT_BREAKERS = 1024
# (outer name, inner name) pairs already warned about: once per process, per pair.
_warned_nested: set[tuple[str, str]] = set()
_warned_nested_lock = threading.Lock()


# --- layers: the immutable configuration of each decorator -----------------------------


class _Failover(Frozen):
    __slots__ = ("breaker", "hosts", "order", "param")
    hosts: tuple[Hashable, ...] | Callable[[], Sequence[Hashable]]
    param: str
    order: str
    breaker: CircuitBreaker | None

    def __init__(
        self,
        hosts: tuple[Hashable, ...] | Callable[[], Sequence[Hashable]],
        param: str,
        order: str,
        breaker: CircuitBreaker | None,
    ) -> None:
        self._set("hosts", hosts)
        self._set("param", param)
        self._set("order", order)
        self._set("breaker", breaker)


class _Fallback(Frozen):
    __slots__ = ("defer_to", "handler", "value")
    handler: Callable[..., Any] | None
    value: Any
    defer_to: Any

    def __init__(self, handler: Callable[..., Any] | None, value: Any, defer_to: Any) -> None:
        self._set("handler", handler)
        self._set("value", value)
        self._set("defer_to", defer_to)


# --- per-call state and the decisions ---------------------------------------------------
#
# Every call through a pipeline puts a small list, its *head*, in ``SCOPE`` (a
# ContextVar): ``current()`` and the nesting guard read it. A list because it is
# the cheapest mutable thing to make on every call; the indices are named below.
# The retry state (``_Call``) is made only once attempt 1 did not simply succeed,
# and hangs off the head so ``current()`` sees the attempt number.

RUNNER, PARENT, START, CALL_ID, ENDPOINT, STATE = range(6)


def call_id_of(head: list[Any]) -> str:
    """The call's id, made on first use (a replayed call keeps its stored id)."""
    call_id: str | None = head[CALL_ID]
    if call_id is None:
        parent = head[PARENT]
        call_id = parent.replay_id if isinstance(parent, ReplayScope) else new_call_id()
        head[CALL_ID] = call_id
    return call_id


def retrying_of(scope: Any) -> list[Any] | None:
    """The head of the innermost retrying call in ``scope`` (a head, or None)."""
    while type(scope) is list:
        if scope[RUNNER].has_retry:
            return scope
        scope = scope[PARENT]
    return None


class _Call:
    """The retry state of one call, made once attempt 1 did not simply succeed."""

    __slots__ = (
        "attempt",
        "deadline_at",
        "deferred",
        "gave_up",
        "head",
        "last_exc",
        "policy",
        "previous",
        "runner",
        "start",
    )

    def __init__(self, head: list[Any], policy: Policy) -> None:
        self.head = head
        self.runner: Runner = head[RUNNER]
        self.start: float = head[START]
        self.policy = policy
        self.attempt = 1
        self.previous = -1.0
        self.last_exc: Exception | None = None
        self.deadline_at = None if policy.deadline is None else self.start + policy.deadline
        # Nested in another retrying call (and not allowed to multiply): one
        # attempt, no waits, the outer layer retries.
        parent = head[PARENT]
        self.deferred = (
            parent is not None and policy.nested == "defer" and retrying_of(parent) is not None
        )
        self.gave_up = False
        head[STATE] = self

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or ``None``."""
        return None if self.deadline_at is None else self.deadline_at - _clock.monotonic()

    def on_error(self, exc: Exception) -> float | None:
        """Decide after a failed attempt: the delay before the next one, or ``None``."""
        policy = self.policy
        runner = self.runner
        classifier: Classifier = policy.retry_on  # type: ignore[assignment]  # normalised
        fault: Fault = classifier(exc)
        runner.recorder.fault(fault.cause)
        if fault.transient and policy.budget is not None:
            policy.budget.record_failure()
        self.last_exc = exc
        if self.deferred:
            return _GIVE_UP  # the outer layer retries; no note, no GaveUp
        if not fault.transient:
            return self._give_up(exc, "permanent")
        if not policy.idempotent and not is_unsent(exc):
            return self._give_up(exc, "permanent")
        return self._next_delay(exc, fault.cause, fault.retry_after)

    def on_result(self, result: Any) -> float | None:
        """Decide after an attempt whose result matched ``retry_if_result``."""
        policy = self.policy
        self.runner.recorder.fault("result")
        if policy.budget is not None:
            policy.budget.record_failure()
        self.last_exc = None
        if self.deferred:
            return _GIVE_UP
        return self._next_delay(None, "result", None)

    def _next_delay(self, exc: Exception | None, cause: str, hint: float | None) -> float | None:
        policy = self.policy
        if self.attempt >= policy.attempts:
            return self._give_up(exc, "attempts")
        if hint is not None:
            # A peer's hint replaces the backoff and is not jittered.
            delay = hint
            # An infinite hint (a breaker opened by hand) is never waited, whatever the cap.
            if delay > policy.retry_after_max or delay == _INF:
                return self._give_up(exc, "deadline")
        else:
            # Policy normalised both at construction (see Policy.backoff_strategy).
            backoff: Backoff = policy.backoff  # type: ignore[assignment]
            delay = backoff.delay(self.attempt)
            jitter: Jitter = policy.jitter  # type: ignore[assignment]
            if jitter is not _NO_JITTER:
                base = backoff.delay(1)
                previous = base if self.previous < 0 else self.previous
                delay = jitter.apply(delay, previous, base, cap_of(backoff))
            self.previous = delay
        if self.deadline_at is not None and _clock.monotonic() + delay > self.deadline_at:
            return self._give_up(exc, "deadline")
        if policy.budget is not None and not policy.budget.allows_retry():
            return self._give_up(exc, "budget")
        runner = self.runner
        if logger.isEnabledFor(logging.WARNING):
            what = type(exc).__name__ if exc is not None else "a result to retry"
            runner.log(
                logging.WARNING,
                "retrying %s in %.2fs after %s (cause=%s, attempt %d/%d)",
                (runner.name, delay, what, cause, self.attempt, policy.attempts),
                {
                    "name": runner.name,
                    "attempt": self.attempt,
                    "delay": delay,
                    "cause": cause,
                    "elapsed": _clock.monotonic() - self.start,
                },
                self.head[ENDPOINT],
            )
        if _bus._subscribers:
            _bus.emit(events.RetryScheduled(runner.name, self.attempt, delay, exc, cause))
        return delay

    def next_attempt(self) -> bool:
        """After the wait: move on, unless the deadline has passed."""
        if self.deadline_at is not None and _clock.monotonic() > self.deadline_at:
            self._give_up(self.last_exc, "deadline")
            return False
        self.attempt += 1
        return True

    def _give_up(self, exc: Exception | None, reason: str) -> float | None:
        runner = self.runner
        elapsed = _clock.monotonic() - self.start
        n = self.attempt
        label = self.policy.name or runner.name
        if exc is not None:
            exc.add_note(
                f"retryx: gave up after {n} attempt{'s' if n != 1 else ''} in {elapsed:.2f}s "
                f"(policy {label!r}, reason: {reason})"
            )
        level = logging.DEBUG if reason == "permanent" else logging.ERROR
        if exc is None:
            level = logging.WARNING  # a result is returned: the caller is not failing
        if logger.isEnabledFor(level):
            what = f"{type(exc).__name__}: {exc}" if exc is not None else "returning last result"
            runner.log(
                level,
                "giving up on %s after %d attempt%s in %.2fs (reason: %s): %s",
                (runner.name, n, "s" if n != 1 else "", elapsed, reason, what),
                {"name": runner.name, "attempt": n, "elapsed": elapsed, "reason": reason},
                self.head[ENDPOINT],
            )
        if _bus._subscribers:
            _bus.emit(events.GaveUp(runner.name, n, elapsed, exc, reason))
        self.gave_up = True
        return _GIVE_UP


_NO_JITTER = _jitter.none
_LOGGER_HANDLE = logging.Logger.handle
_INF = float("inf")
_scope_get = SCOPE.get
_scope_set = SCOPE.set
_scope_reset = SCOPE.reset


# --- the runner: drivers for one pipeline -----------------------------------------------


class Runner:
    """Everything one pipeline needs at call time, precomputed at decoration."""

    def __init__(self, layers: dict[str, Any], name: str, is_async: bool) -> None:
        self.layers = layers
        self.name = name
        self.is_async = is_async
        self.recorder = Recorder()
        self.pending = self.recorder.pending
        # The plain function under the wrappers (set by _Pipeline); replay names it.
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
        fo = layers.get("failover")
        self.failover: _Failover | None = fo
        # A fixed list in priority order needs no work per call.
        self._hosts: tuple[Hashable, ...] = ()
        if fo is not None and fo.order == "priority" and isinstance(fo.hosts, tuple):
            self._hosts = fo.hosts
        self._endpoint_breakers: dict[Hashable, CircuitBreaker] = {}
        self._rr = itertools.count()
        breaker = layers.get("circuit_breaker")
        self._breaker_name: str | None = breaker if isinstance(breaker, str) else None
        self._breaker: CircuitBreaker | None = (
            breaker if isinstance(breaker, CircuitBreaker) else None
        )
        self._breaker_generation = -1
        self.fallback: _Fallback | None = layers.get("fallback")
        self._warned_loop = False
        self._records: RecordMaker | None = None  # log records pointing at the target
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
            policy is not None and (policy.retry_if_result is not None or policy.budget is not None)
        )

    # --- resolution of named policies and breakers ------------------------------------

    def _check_policy(self, policy: Policy) -> None:
        if policy.attempt_timeout is not None and not self.is_async:
            raise ConfigError(
                f"{self.name}: Policy.attempt_timeout needs a coroutine function "
                f"(a sync call cannot be interrupted), got attempt_timeout={policy.attempt_timeout}"
            )

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

    # --- failover helpers ----------------------------------------------------------

    def endpoints(self) -> Sequence[Hashable]:
        fo = self.failover
        assert fo is not None
        hosts = fo.hosts
        if callable(hosts):
            hosts = tuple(hosts())
            if not hosts:
                raise ConfigError(f"{self.name}: failover hosts callable returned no endpoints")
        if fo.order == "priority" or len(hosts) == 1:
            return hosts
        if fo.order == "round_robin":
            start = next(self._rr) % len(hosts)
            return (*hosts[start:], *hosts[:start])
        shuffled = list(hosts)
        _clock.rng.shuffle(shuffled)
        return shuffled

    def endpoint_breaker(self, endpoint: Hashable) -> CircuitBreaker:
        breaker = self._endpoint_breakers.get(endpoint)
        if breaker is None:
            fo = self.failover
            assert fo is not None
            template = fo.breaker
            if template is None:
                made = CircuitBreaker(
                    f"{self.name}@{endpoint}", failure_threshold=3, recovery_timeout=30.0
                )
            else:
                made = template.copy(f"{template.name}@{endpoint}")
            breakers = self._endpoint_breakers
            if len(breakers) >= _MAX_ENDPOINT_BREAKERS:
                # A hosts callable may keep naming new endpoints: forget the oldest.
                breakers.pop(next(iter(breakers)), None)
            breaker = breakers.setdefault(endpoint, made)
        return breaker

    def endpoint_failed(self, endpoint: Hashable, exc: Exception) -> None:
        self.recorder.switched()
        if _bus._subscribers:
            _bus.emit(events.EndpointFailed(self.name, endpoint, exc))

    # --- warnings --------------------------------------------------------------------

    def warn_nested(self, outer: str) -> None:
        pair = (outer, self.name)
        if pair not in _warned_nested:
            with _warned_nested_lock:
                first = pair not in _warned_nested
                _warned_nested.add(pair)
        else:
            first = False
        if first:
            logger.warning(
                "nested retry: %s retries inside %s; deferring its retries to the outer "
                "layer (set nested='allow' or 'raise' on the inner policy to choose otherwise)",
                self.name,
                outer,
                extra={"retryx": {"name": self.name}},
            )
        if _bus._subscribers:
            _bus.emit(events.NestedRetry(outer, self.name))

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
    ) -> None:
        """Log on ``retryx`` with ``record.retryx`` fields, without ``findCaller``'s stack walk.

        The record points at the decorated function's source, which says more than
        a line inside retryx would. ``endpoint``, when there is one, joins the fields.
        """
        if endpoint is not None:
            fields["endpoint"] = endpoint
        records = self._records
        if records is None or records.func != self.name:  # a named policy may rename
            code = getattr(self.target, "__code__", None)
            where = (
                (code.co_filename, code.co_firstlineno) if code is not None else ("(unknown)", 0)
            )
            records = self._records = RecordMaker(logger.name, where[0], where[1], self.name)
        record = records(level, msg, args)
        record.retryx = fields
        if logger.filters or logger.disabled or type(logger).handle is not _LOGGER_HANDLE:
            logger.handle(record)
        else:
            logger.callHandlers(record)  # all that Logger.handle does without filters

    # --- finishing a call ----------------------------------------------------------

    def context(self, head: list[Any]) -> CallContext:
        """What ``current()`` shows for the call whose head is ``head``."""
        call: _Call | None = head[STATE]
        if call is not None:
            remaining = call.remaining()
            attempt = call.attempt
        else:
            attempt = 1
            remaining = None
            if self.has_retry:
                deadline = self.policy().deadline
                if deadline is not None:
                    remaining = head[START] + deadline - _clock.monotonic()
        if remaining is not None:
            remaining = max(0.0, remaining)
        return CallContext(call_id_of(head), attempt, remaining, head[ENDPOINT], self.name)

    def start(self, head: list[Any], parent: Any) -> Policy | None:
        """The policy for this call; runs the nesting guard when nested in a retry."""
        policy = self._policy if self._named_policy is None else self.policy()
        if policy is not None and policy.nested != "allow":
            outer = retrying_of(parent)
            if outer is not None:
                outer_name = outer[RUNNER].name
                if policy.nested == "raise":
                    raise NestedRetryError(outer_name, self.name)
                self.warn_nested(outer_name)
        return policy

    def succeeded(self, call: _Call | None, policy: Policy | None, head: list[Any]) -> None:
        """Book a call that returned after the slow path (retried or recovered)."""
        elapsed = _clock.monotonic() - head[START]
        attempts = 1 if call is None else call.attempt
        gave_up = call is not None and call.gave_up
        self.recorder.finish(elapsed, ok=True, retries=attempts - 1, gave_up=gave_up)
        if attempts > 1 and logger.isEnabledFor(logging.INFO):
            self.log(
                logging.INFO,
                "%s succeeded after %d attempts in %.2fs",
                (self.name, attempts, elapsed),
                {"name": self.name, "attempt": attempts, "elapsed": elapsed},
            )
        if policy is not None and policy.budget is not None and not gave_up:
            # A result returned because retry_if_result ran out is no success to refund.
            policy.budget.record_success()
        if _bus._subscribers and not gave_up:  # GaveUp already told that story
            _bus.emit(events.Succeeded(self.name, attempts, elapsed))

    def failed(self, head: list[Any], exc: BaseException) -> None:
        """Book a call that ended in an exception."""
        elapsed = _clock.monotonic() - head[START]
        call: _Call | None = head[STATE]
        attempts = 1 if call is None else call.attempt
        gave_up = call is not None and call.gave_up
        self.recorder.finish(elapsed, ok=False, retries=attempts - 1, gave_up=gave_up)
        for hook in _bus._failure_hooks:
            hook(self.name, attempts, elapsed, exc)

    # --- the sync driver -----------------------------------------------------------
    #
    # Attempt 1 runs straight away; only when it fails (or its result must be
    # retried) does ``_recover_sync`` set up the retry state and go on.

    def run_sync(self, wrapped: Any, instance: Any, /, *args: Any, **kwargs: Any) -> Any:
        parent = _scope_get()
        head = [self, parent, _clock.monotonic(), None, None, None]
        token = _scope_set(head)
        try:
            policy = self._policy
            if parent is not None or self._named_policy is not None:
                try:
                    policy = self.start(head, parent)
                except NestedRetryError as refused:  # nested="raise": booked, falls back
                    return self._recover_sync(
                        head, None, refused, _MISSING, wrapped, instance, args, kwargs
                    )
            try:
                if self.plain:
                    result = wrapped(*args, **kwargs)
                elif self.guard is not None:
                    result = self.guard._call(wrapped, args, kwargs, self.recorder)
                else:
                    result = self._attempt_sync(head, wrapped, args, kwargs)
            except Exception as exc:
                return self._recover_sync(
                    head, policy, exc, _MISSING, wrapped, instance, args, kwargs
                )
            if self.checks_result and policy is not None:
                check = policy.retry_if_result
                if check is not None and check(result):
                    return self._recover_sync(
                        head, policy, None, result, wrapped, instance, args, kwargs
                    )
                if policy.budget is not None:
                    policy.budget.record_success()
            # The happy path books the call with one atomic append (see Recorder).
            pending = self.pending
            pending.append(_clock.monotonic() - head[START])
            if len(pending) > _FOLD_AT:
                self.recorder.fold()
            if _bus._subscribers:
                _bus.emit(events.Succeeded(self.name, 1, _clock.monotonic() - head[START]))
            return result
        finally:
            _scope_reset(token)

    def bound_sync(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """wrapt's wrapper signature (bound methods, classmethods, callables)."""
        return self.run_sync(wrapped, instance, *args, **kwargs)

    def _recover_sync(
        self,
        head: list[Any],
        policy: Policy | None,
        exc: Exception | None,
        result: Any,
        wrapped: Any,
        instance: Any,
        args: Any,
        kwargs: Any,
    ) -> Any:
        """After attempt 1 failed with ``exc`` (or returned a ``result`` to retry):
        attempts 2..n per the policy, then book the call, or fall back.
        """
        call = None
        try:
            if policy is None:
                assert exc is not None
                raise exc
            call = _Call(head, policy)
            delay = call.on_error(exc) if exc is not None else call.on_result(result)
            check = policy.retry_if_result
            while delay is not _GIVE_UP:
                if delay > 0:
                    self.sleep_sync(delay)
                elif _clock.zero_wait is not None:  # never sleep(0): it costs a syscall
                    _clock.zero_wait(delay)
                if not call.next_attempt():
                    exc = call.last_exc  # None: the last result is returned
                    break
                try:
                    if self.plain:
                        result = wrapped(*args, **kwargs)
                    else:
                        result = self._attempt_sync(head, wrapped, args, kwargs)
                except Exception as error:
                    exc = error
                    delay = call.on_error(error)
                    continue
                exc = None
                if check is None or not check(result):
                    break
                delay = call.on_result(result)
            if exc is not None:
                raise exc
        except Exception as final:
            self.failed(head, final)
            if self.fallback is None:
                raise
            return self._fallback_sync(head, final, instance, args, kwargs)
        self.succeeded(call, policy, head)
        return result

    def _attempt_sync(self, head: list[Any], wrapped: Any, args: Any, kwargs: Any) -> Any:
        """One attempt: a failover sweep, or one guarded call."""
        fo = self.failover
        if fo is None:
            return self._guarded_sync(None, wrapped, args, kwargs)
        if fo.param in kwargs:  # pinned by the caller: no failover, failure raised as is
            endpoint = kwargs[fo.param]
            head[ENDPOINT] = endpoint
            return self._guarded_sync(self.endpoint_breaker(endpoint), wrapped, args, kwargs)
        errors: dict[Hashable, Exception] | None = None  # made on the first failure
        breakers = self._endpoint_breakers
        inner = self._breaker if self._breaker_name is None else self.breaker()
        rec = self.recorder
        param = fo.param
        for endpoint in self._hosts or self.endpoints():
            head[ENDPOINT] = endpoint
            guard = breakers.get(endpoint) or self.endpoint_breaker(endpoint)
            call_kwargs = {**kwargs, param: endpoint} if kwargs else {param: endpoint}
            try:
                # The full stack's hot path: while the endpoint's breaker and the
                # @circuit_breaker layer's are closed, both guards in this frame
                # (CircuitBreaker._call_with's closed path).
                if guard._state == _CLOSED and (inner is None or inner._state == _CLOSED):
                    try:
                        result = wrapped(*args, **call_kwargs)
                    except CircuitOpenError:
                        raise
                    except Exception as exc:
                        if inner is not None:
                            inner._on_failure(None, exc)
                        guard._on_failure(None, exc)
                        raise
                    # _closed_success() has nothing to do without a window or failures.
                    if inner is not None and (inner._window is not None or inner._failures):
                        inner._closed_success()
                    if guard._window is not None or guard._failures:
                        guard._closed_success()
                    return result
                if inner is None:
                    return guard._call(wrapped, args, call_kwargs, rec)
                return guard._call_with(inner, wrapped, args, call_kwargs, rec)
            except Exception as exc:
                if not self.sweep_goes_on(exc):
                    raise
                if errors is None:
                    errors = {}
                errors[endpoint] = exc
                self.endpoint_failed(endpoint, exc)
        raise AllEndpointsFailed(errors or {})

    def _guarded_sync(
        self, endpoint_breaker: CircuitBreaker | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        """The call, through the endpoint's breaker, then the @circuit_breaker layer's."""
        breaker = self._breaker if self._breaker_name is None else self.breaker()
        rec = self.recorder
        if endpoint_breaker is None:
            if breaker is None:
                return wrapped(*args, **kwargs)
            return breaker._call(wrapped, args, kwargs, rec)
        if breaker is None:
            return endpoint_breaker._call(wrapped, args, kwargs, rec)
        return endpoint_breaker._call_with(breaker, wrapped, args, kwargs, rec)

    def _fallback_sync(
        self, head: list[Any], exc: Exception, instance: Any, args: Any, kwargs: Any
    ) -> Any:
        fb = self.fallback
        assert fb is not None
        if fb.defer_to is not None:
            return self.defer(head, exc, instance, args, kwargs)
        if fb.handler is None:
            return fb.value
        handler_args = args if instance is None else (instance, *args)
        return fb.handler(exc, *handler_args, **kwargs)

    # --- the async driver (mirrors the sync one line for line) ------------------------

    async def run_async(self, wrapped: Any, instance: Any, /, *args: Any, **kwargs: Any) -> Any:
        parent = _scope_get()
        head = [self, parent, _clock.monotonic(), None, None, None]
        token = _scope_set(head)
        try:
            policy = self._policy
            if parent is not None or self._named_policy is not None:
                try:
                    policy = self.start(head, parent)
                except NestedRetryError as refused:  # nested="raise": booked, falls back
                    return await self._recover_async(
                        head, None, refused, _MISSING, wrapped, instance, args, kwargs
                    )
            try:
                if self.plain:
                    result = await wrapped(*args, **kwargs)
                elif self.guard is not None:
                    result = await self.guard._call_async(wrapped, args, kwargs, self.recorder)
                else:
                    result = await self._attempt_async(head, policy, wrapped, args, kwargs)
            except Exception as exc:
                return await self._recover_async(
                    head, policy, exc, _MISSING, wrapped, instance, args, kwargs
                )
            if self.checks_result and policy is not None:
                check = policy.retry_if_result
                if check is not None and check(result):
                    return await self._recover_async(
                        head, policy, None, result, wrapped, instance, args, kwargs
                    )
                if policy.budget is not None:
                    policy.budget.record_success()
            pending = self.pending
            pending.append(_clock.monotonic() - head[START])
            if len(pending) > _FOLD_AT:
                self.recorder.fold()
            if _bus._subscribers:
                _bus.emit(events.Succeeded(self.name, 1, _clock.monotonic() - head[START]))
            return result
        finally:
            _scope_reset(token)

    def bound_async(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """wrapt's wrapper signature; returns the coroutine."""
        return self.run_async(wrapped, instance, *args, **kwargs)

    async def _recover_async(
        self,
        head: list[Any],
        policy: Policy | None,
        exc: Exception | None,
        result: Any,
        wrapped: Any,
        instance: Any,
        args: Any,
        kwargs: Any,
    ) -> Any:
        call = None
        try:
            if policy is None:
                assert exc is not None
                raise exc
            call = _Call(head, policy)
            delay = call.on_error(exc) if exc is not None else call.on_result(result)
            check = policy.retry_if_result
            while delay is not _GIVE_UP:
                if delay > 0:
                    await _clock.async_sleep(delay)
                elif _clock.zero_wait is not None:
                    _clock.zero_wait(delay)
                if not call.next_attempt():
                    exc = call.last_exc
                    break
                try:
                    if self.plain:
                        result = await wrapped(*args, **kwargs)
                    else:
                        result = await self._attempt_async(head, policy, wrapped, args, kwargs)
                except Exception as error:
                    exc = error
                    delay = call.on_error(error)
                    continue
                exc = None
                if check is None or not check(result):
                    break
                delay = call.on_result(result)
            if exc is not None:
                raise exc
        except Exception as final:
            self.failed(head, final)
            if self.fallback is None:
                raise
            return await self._fallback_async(head, final, instance, args, kwargs)
        self.succeeded(call, policy, head)
        return result

    async def _attempt_async(
        self, head: list[Any], policy: Policy | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        """One attempt; ``attempt_timeout`` bounds each call of it (each endpoint's, under
        failover, so a hanging endpoint is cut, counted on its breaker and skipped).
        """
        timeout = None if policy is None else policy.attempt_timeout
        if timeout is not None:
            assert policy is not None
            deadline_at = None if policy.deadline is None else head[START] + policy.deadline
            wrapped = functools.partial(_timed, wrapped, timeout, deadline_at)
        return await self._sweep_async(head, wrapped, args, kwargs)

    async def _sweep_async(self, head: list[Any], wrapped: Any, args: Any, kwargs: Any) -> Any:
        fo = self.failover
        if fo is None:
            return await self._guarded_async(None, wrapped, args, kwargs)
        if fo.param in kwargs:
            endpoint = kwargs[fo.param]
            head[ENDPOINT] = endpoint
            return await self._guarded_async(self.endpoint_breaker(endpoint), wrapped, args, kwargs)
        errors: dict[Hashable, Exception] | None = None  # made on the first failure
        breakers = self._endpoint_breakers
        inner = self._breaker if self._breaker_name is None else self.breaker()
        rec = self.recorder
        param = fo.param
        for endpoint in self._hosts or self.endpoints():
            head[ENDPOINT] = endpoint
            guard = breakers.get(endpoint) or self.endpoint_breaker(endpoint)
            call_kwargs = {**kwargs, param: endpoint} if kwargs else {param: endpoint}
            try:
                if guard._state == _CLOSED and (inner is None or inner._state == _CLOSED):
                    try:
                        result = await wrapped(*args, **call_kwargs)
                    except CircuitOpenError:
                        raise
                    except Exception as exc:
                        if inner is not None:
                            inner._on_failure(None, exc)
                        guard._on_failure(None, exc)
                        raise
                    # _closed_success() has nothing to do without a window or failures.
                    if inner is not None and (inner._window is not None or inner._failures):
                        inner._closed_success()
                    if guard._window is not None or guard._failures:
                        guard._closed_success()
                    return result
                if inner is None:
                    return await guard._call_async(wrapped, args, call_kwargs, rec)
                return await guard._call_with_async(inner, wrapped, args, call_kwargs, rec)
            except Exception as exc:
                if not self.sweep_goes_on(exc):
                    raise
                if errors is None:
                    errors = {}
                errors[endpoint] = exc
                self.endpoint_failed(endpoint, exc)
        raise AllEndpointsFailed(errors or {})

    async def _guarded_async(
        self, endpoint_breaker: CircuitBreaker | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        breaker = self._breaker if self._breaker_name is None else self.breaker()
        rec = self.recorder
        if endpoint_breaker is None:
            if breaker is None:
                return await wrapped(*args, **kwargs)
            return await breaker._call_async(wrapped, args, kwargs, rec)
        if breaker is None:
            return await endpoint_breaker._call_async(wrapped, args, kwargs, rec)
        return await endpoint_breaker._call_with_async(breaker, wrapped, args, kwargs, rec)

    async def _fallback_async(
        self, head: list[Any], exc: Exception, instance: Any, args: Any, kwargs: Any
    ) -> Any:
        fb = self.fallback
        assert fb is not None
        if fb.defer_to is not None:
            return self.defer(head, exc, instance, args, kwargs)
        if fb.handler is None:
            return fb.value
        handler_args = args if instance is None else (instance, *args)
        result = fb.handler(exc, *handler_args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    # --- shared by both drivers (no I/O) ------------------------------------------------

    def sweep_goes_on(self, exc: Exception) -> bool:
        """Whether a failover sweep moves to the next endpoint after ``exc``."""
        if isinstance(exc, CircuitOpenError):
            return True  # an endpoint skipped by its open breaker: nothing was sent
        policy = self._policy if self.has_retry else None
        classifier = classify if policy is None else policy.classifier
        if not classifier(exc).transient:
            return False
        # Not idempotent: move on only when the request provably never left.
        return policy is None or policy.idempotent or is_unsent(exc)

    def defer(self, head: list[Any], exc: Exception, instance: Any, args: Any, kwargs: Any) -> Any:
        """Store the failed call in the fallback's replay queue; the call returns ``None``."""
        fb = self.fallback
        assert fb is not None
        classifier = self.policy().classifier if self.has_retry else classify
        if not classifier(exc).transient:
            raise exc  # a permanent fault is the caller's, never stored
        call_id = call_id_of(head)
        fb.defer_to.defer(self, call_id, exc, instance, args, kwargs)
        if _bus._subscribers:
            _bus.emit(events.Deferred(self.name, call_id, exc, fb.defer_to))
        return None


async def _timed(
    fn: Callable[..., Any], timeout: float, deadline_at: float | None, *args: Any, **kwargs: Any
) -> Any:
    """``await fn(...)`` within ``timeout`` seconds, capped by the time left (TimeoutError)."""
    import asyncio

    if deadline_at is not None:
        timeout = max(0.0, min(timeout, deadline_at - _clock.monotonic()))
    async with asyncio.timeout(timeout):
        return await fn(*args, **kwargs)


# --- named breakers ------------------------------------------------------------------------

_named: dict[str, tuple[int, CircuitBreaker]] = {}
_named_lock = threading.Lock()


def named_breaker(name: str) -> CircuitBreaker:
    """The process-wide breaker called ``name``, configured by ``[breakers.NAME]``."""
    from . import _config

    generation = _config.generation()
    entry = _named.get(name)
    if entry is not None and entry[0] == generation:
        return entry[1]
    with _named_lock:
        entry = _named.get(name)
        if entry is not None and entry[0] == _config.generation():
            return entry[1]  # made by another thread meanwhile
        snapshot = _config.snapshot()
        settings = snapshot.breaker(name)
        fresh = CircuitBreaker(name, **settings)
        if entry is None:
            breaker = fresh
        else:
            # configure() reloaded: take the new settings, keep the state.
            breaker = entry[1]
            for slot in (
                "failure_threshold",
                "failure_rate",
                "window",
                "minimum_calls",
                "recovery_timeout",
                "half_open_max_calls",
                "success_threshold",
                "counts",
            ):
                setattr(breaker, slot, getattr(fresh, slot))
            if (breaker._window is None) != (fresh._window is None) or (
                breaker._window is not None and breaker._window.maxlen != breaker.window
            ):
                breaker._window = fresh._window
        _named[name] = (snapshot.generation, breaker)
        return breaker


# --- the wrapper ---------------------------------------------------------------------------


class _Pipeline(wrapt.FunctionWrapper):  # type: ignore[misc]  # wrapt 1.x ships no types
    """One wrapper carrying every retryx layer of a callable (``_self_runner``)."""

    # wrapt's C ``__get__`` looks this up on subclasses; when it is missing the
    # failed lookup (an AttributeError raised and cleared) costs more than the
    # whole binding, on every method access.
    __bound_function_wrapper__ = wrapt.BoundFunctionWrapper

    def __init__(self, wrapped: Any, runner: Runner) -> None:
        bound = runner.bound_async if runner.is_async else runner.bound_sync
        super().__init__(wrapped, bound)
        self._self_runner = runner
        self._self_layers = runner.layers

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled by reference, like the plain function it decorates.
        return _unwrap(self.__wrapped__).__qualname__


class _DirectPipeline(_Pipeline):
    """Base of the pipelines on builtins.

    ``_make`` gives each one its own subclass whose ``__call__`` is the driver's
    function (``retryx._drivers``): calling the pipeline then costs one Python
    frame, instead of wrapt's generic ``__call__``, which probes the function's
    ``__self__`` on every call (a failed attribute lookup).
    """


def _make(wrapped: Any, layers: dict[str, Any]) -> Any:
    """Validate ``wrapped`` and build its pipeline."""
    target = _unwrap(wrapped)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    name = name or type(target).__qualname__
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        kind = "an async generator" if inspect.isasyncgenfunction(target) else "a generator"
        raise ConfigError(
            f"{name} is {kind}: retryx cannot retry it (a generator cannot be rewound); "
            "decorate the function that creates it instead"
        )
    if not callable(wrapped) and not isinstance(wrapped, classmethod | staticmethod):
        raise ConfigError(f"retryx decorators need a callable, got {wrapped!r}")
    is_async = _is_async(target)
    runner = Runner(layers, name, is_async)
    runner.target = target
    # The exact-parameters driver only where no layer sees the call's arguments as
    # passed (see retryx._drivers).
    exact = runner.fallback is None and runner.failover is None
    if inspect.isfunction(wrapped):
        return _drivers.function_driver(runner, wrapped, exact)
    if not inspect.isbuiltin(wrapped):
        return _Pipeline(wrapped, runner)
    # A builtin does not bind, so it keeps a pipeline object, whose own subclass
    # calls the driver function straight away.
    call = staticmethod(_drivers.function_driver(runner, wrapped, exact=False))
    direct = type(
        _DirectPipeline.__name__, (_DirectPipeline,), {"__call__": call, "__module__": __name__}
    )
    pipeline: _Pipeline = direct(wrapped, runner)
    return pipeline


def _unwrap(obj: Any) -> Any:
    """The plain function under classmethod/staticmethod/partial/wrappers."""
    for _ in range(32):
        if isinstance(obj, classmethod | staticmethod):
            obj = obj.__func__
        elif isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, _Pipeline) or _drivers.runner_of_function(obj) is not None:
            obj = obj.__wrapped__
        else:
            return obj
    return obj


def _is_async(target: Any) -> bool:
    if inspect.iscoroutinefunction(target):
        return True
    if not inspect.isfunction(target) and not inspect.ismethod(target) and callable(target):
        # An object whose class defines ``async def __call__``.
        return inspect.iscoroutinefunction(type(target).__call__)
    return False


def _apply(obj: Any, kind: str, layer: Any) -> Any:
    """Add one layer to ``obj``, fusing with the retryx layers already on it."""
    rewrap: Callable[[Any], Any] = lambda f: f  # noqa: E731
    base = obj
    layers: dict[str, Any] = {}
    inner: Any = obj.__func__ if isinstance(obj, classmethod | staticmethod) else None
    runner = _own_runner(obj)
    if runner is not None:
        base, layers = obj.__wrapped__, runner.layers
    elif inner is not None and (runner := _own_runner(inner)) is not None:
        base, layers = inner.__wrapped__, runner.layers
        rewrap = type(obj)
    if kind in layers:
        name = getattr(_unwrap(base), "__qualname__", repr(base))
        raise ConfigError(f"{name}: @{kind} is applied twice; one of each kind per callable")
    merged = {k: v for k, v in {**layers, kind: layer}.items() if v is not None}
    ordered = {k: merged[k] for k in _ORDER if k in merged}
    return _make(rewrap(base), ordered)


def _is_target(obj: Any) -> bool:
    """Whether a decorator factory was given the callable itself (the bare form)."""
    if obj is None or isinstance(obj, Policy | str | CircuitBreaker):
        return False
    return callable(obj) or isinstance(obj, classmethod | staticmethod)


def _own_runner(obj: Any) -> Runner | None:
    """The runner of a retryx-decorated callable itself (no looking through methods)."""
    if isinstance(obj, _Pipeline):
        runner: Runner = obj._self_runner
        return runner
    found: Runner | None = _drivers.runner_of_function(obj)
    return found


def _find(obj: Any) -> Runner | None:
    """The runner behind a decorated callable, seen directly or through a bound method."""
    for _ in range(8):
        runner = _own_runner(obj)
        if runner is not None:
            return runner
        parent = getattr(obj, "_self_parent", None)  # a wrapt bound proxy
        if isinstance(parent, _Pipeline):
            return _own_runner(parent)
        inner = getattr(obj, "__func__", None)
        if inner is None:
            return None
        obj = inner
    return None


# --- public decorators ------------------------------------------------------------------


@overload
def retry(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def retry(
    policy: Policy | str | None = None, /, **fields: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def retry(policy: Any = None, /, **fields: Any) -> Any:
    """Retry transient faults of the decorated callable per a ``Policy``.

    Forms: ``@retry``, ``@retry()``, ``@retry(Policy(...))``,
    ``@retry(attempts=5, ...)``, ``@retry("name")`` (a named policy from
    ``retryx.configure``, resolved at first call).

    Raises:
        ConfigError: for bad policy fields, generators, or ``attempt_timeout``
            on a sync callable (at decoration time).
    """
    if _is_target(policy):
        if fields:
            raise ConfigError("retry(func, ...) takes no policy fields; use retry(...)(func)")
        return _apply(policy, "retry", Policy())
    layer: Policy | str
    if isinstance(policy, str):
        if fields:
            raise ConfigError(
                f"retry({policy!r}) names a configured policy; it takes no fields {sorted(fields)}"
            )
        if not policy:
            raise ConfigError("retry: a policy name must not be empty")
        layer = policy
    elif isinstance(policy, Policy):
        layer = policy.replace(**fields) if fields else policy
    elif policy is None:
        try:
            layer = Policy(**fields)
        except TypeError as exc:
            raise ConfigError(f"retry: {exc}") from None
    else:
        raise ConfigError(f"retry: expected a Policy, a policy name or fields, got {policy!r}")

    def decorate(func: Any) -> Any:
        return _apply(func, "retry", layer)

    return decorate


@overload
def circuit_breaker(func: Callable[P, R], /) -> Callable[P, R]: ...  # type: ignore[overload-overlap]
@overload
def circuit_breaker(
    breaker: CircuitBreaker | str | None = None, /, **settings: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def circuit_breaker(breaker: Any = None, /, **settings: Any) -> Any:
    """Guard the decorated callable with a circuit breaker.

    Forms: ``@circuit_breaker`` (a new breaker named after the callable),
    ``@circuit_breaker(breaker)``, ``@circuit_breaker(name=..., **settings)``,
    ``@circuit_breaker("db")`` (the process-wide breaker configured by
    ``[breakers.db]``).
    """
    if _is_target(breaker):
        if settings:
            raise ConfigError("circuit_breaker(func, ...) takes no settings")
        func = breaker
        name = getattr(_unwrap(func), "__qualname__", None) or repr(func)
        return _apply(func, "circuit_breaker", CircuitBreaker(name))
    if isinstance(breaker, CircuitBreaker | str):
        if settings:
            raise ConfigError(
                f"circuit_breaker({breaker!r}) takes no settings; configure the breaker itself"
            )
        if isinstance(breaker, str) and not breaker:
            raise ConfigError("circuit_breaker: a breaker name must not be empty")
        layer: Any = breaker
    elif breaker is None:
        name = settings.pop("name", None)
        if name is not None:
            layer = CircuitBreaker(name, **_checked(settings))
        else:
            layer = None  # named after the callable, at decoration
            _probe = CircuitBreaker("probe", **_checked(settings))  # validate now
            del _probe
    else:
        raise ConfigError(f"circuit_breaker: expected a CircuitBreaker or a name, got {breaker!r}")

    def decorate(func: Any) -> Any:
        made = layer
        if made is None:
            name = getattr(_unwrap(func), "__qualname__", None) or repr(func)
            made = CircuitBreaker(name, **settings)
        return _apply(func, "circuit_breaker", made)

    return decorate


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    known = {
        "failure_threshold",
        "failure_rate",
        "window",
        "minimum_calls",
        "recovery_timeout",
        "half_open_max_calls",
        "success_threshold",
        "counts",
        "store",
    }
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(f"circuit_breaker: unknown setting(s) {', '.join(sorted(unknown))}")
    return settings


_FAILOVER_ORDERS = ("priority", "round_robin", "random")


def failover(
    hosts: Sequence[Hashable] | Callable[[], Sequence[Hashable]],
    *,
    param: str = "host",
    order: str = "priority",
    breaker: CircuitBreaker | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Send each attempt to the next healthy endpoint, passed as keyword ``param``.

    Each call sweeps the endpoints once; transient faults move to the next one
    at once, permanent faults are raised. Every endpoint has its own breaker
    (a copy of ``breaker``, default ``failure_threshold=3, recovery_timeout=30``).

    Raises:
        ConfigError: for empty ``hosts``, an unknown ``order`` or a bad ``param``.
    """
    if callable(hosts) and not isinstance(hosts, Sequence):
        normal: Any = hosts
    elif isinstance(hosts, str | bytes) or not isinstance(hosts, Sequence):
        raise ConfigError(f"failover: hosts must be a sequence or a callable, got {hosts!r}")
    else:
        normal = tuple(hosts)
        if not normal:
            raise ConfigError("failover: hosts must not be empty")
        for host in normal:
            try:
                hash(host)
            except TypeError:
                raise ConfigError(f"failover: hosts must be hashable, got {host!r}") from None
    if order not in _FAILOVER_ORDERS:
        raise ConfigError(
            f"failover: order must be one of {', '.join(_FAILOVER_ORDERS)}, got {order!r}"
        )
    if not isinstance(param, str) or not param.isidentifier():
        raise ConfigError(f"failover: param must be an identifier, got {param!r}")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigError(f"failover: breaker must be a CircuitBreaker, got {breaker!r}")
    layer = _Failover(normal, param, order, breaker)

    def decorate(func: Any) -> Any:
        return _apply(func, "failover", layer)

    return decorate


class _FallbackDecorator(Protocol[V_co]):
    """What ``fallback(...)`` returns: keeps the parameters, adds ``V_co`` to the result
    (inside the coroutine for a coroutine function)."""

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R | V_co]]: ...
    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R | V_co]: ...


@overload
def fallback(handler: Callable[..., Awaitable[V]]) -> _FallbackDecorator[V]: ...
@overload
def fallback(handler: Callable[..., V]) -> _FallbackDecorator[V]: ...
@overload
def fallback(*, value: V) -> _FallbackDecorator[V]: ...
@overload
def fallback(*, defer_to: Any) -> _FallbackDecorator[None]: ...
def fallback(
    handler: Callable[..., Any] | None = None,
    *,
    value: Any = _MISSING,
    defer_to: Any = None,
) -> Any:
    """When the pipeline finally fails, return ``handler(exc, *args, **kwargs)`` or ``value``.

    With ``defer_to=queue`` a transient failure is stored in a replay queue and the
    call returns ``None``. For methods the handler gets the instance (or class)
    first; an async handler is awaited.

    Raises:
        ConfigError: with neither or both of ``handler`` and ``value``.
    """
    given = sum(x is not None and x is not _MISSING for x in (handler, defer_to))
    given += value is not _MISSING
    if defer_to is not None and given > 1:
        raise ConfigError("fallback(defer_to=...) cannot be combined with a handler or value")
    if given == 0:
        raise ConfigError("fallback needs a handler, value= or defer_to=")
    if handler is not None and value is not _MISSING:
        raise ConfigError("fallback takes a handler or value=, not both")
    if handler is not None and not callable(handler):
        raise ConfigError(f"fallback: handler must be callable, got {handler!r}")
    if defer_to is not None and not hasattr(defer_to, "defer"):
        raise ConfigError(f"fallback: defer_to must be a replay queue, got {defer_to!r}")
    layer = _Fallback(handler, None if value is _MISSING else value, defer_to)

    def decorate(func: Any) -> Any:
        return _apply(func, "fallback", layer)

    return decorate


def describe(func: Any) -> list[str]:
    """The retryx layer kinds on ``func``, in execution order (``[]`` when none)."""
    runner = _find(func)
    return [] if runner is None else list(runner.layers)


def stats(func: Any, *, reset: bool = False) -> Stats:
    """A snapshot of ``func``'s counters; ``reset=True`` zeroes them after reading.

    Raises:
        ConfigError: when ``func`` carries no retryx layer.
    """
    runner = _find(func)
    if runner is None:
        raise ConfigError(f"stats: {func!r} is not decorated by retryx")
    recorder: Recorder = runner.recorder
    snapshot = recorder.snapshot()
    if reset:
        recorder.reset()
    return snapshot
