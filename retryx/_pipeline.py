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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

import wrapt
from typing_extensions import ParamSpec

from . import _clock, events
from . import jitter as _jitter
from ._breaker import CircuitBreaker
from ._classify import Fault, classify, is_unsent
from ._context import SCOPE, CallContext, ReplayScope, new_call_id
from ._errors import AllEndpointsFailed, CircuitOpenError, ConfigError, NestedRetryError
from ._policy import Policy
from ._stats import Recorder, Stats
from .backoff import cap_of

__all__ = [
    "circuit_breaker",
    "describe",
    "failover",
    "fallback",
    "retry",
    "stats",
]

P = ParamSpec("P")
R = TypeVar("R")

logger = events.logger
_MISSING: Any = object()
_ORDER = ("fallback", "retry", "failover", "circuit_breaker")
_GIVE_UP = None  # what the decision methods return to say "stop and re-raise"


# --- layers: the immutable configuration of each decorator -----------------------------


@dataclass(frozen=True, slots=True)
class _Failover:
    hosts: tuple[Hashable, ...] | Callable[[], Sequence[Hashable]]
    param: str
    order: str
    breaker: CircuitBreaker | None


@dataclass(frozen=True, slots=True)
class _Fallback:
    handler: Callable[..., Any] | None
    value: Any
    defer_to: Any


# --- per-call state and the decisions ---------------------------------------------------


class _Call:
    """One logical call through a pipeline: attempts, timing, ids. Short-lived."""

    __slots__ = (
        "attempt",
        "call_id",
        "deadline_at",
        "deferred",
        "endpoint",
        "gave_up_flag",
        "last_exc",
        "policy",
        "previous",
        "retries",
        "retrying",
        "runner",
        "start",
    )
    replay_id = None
    attempt: int
    call_id: str | None
    deadline_at: float | None
    deferred: bool
    endpoint: Hashable | None
    gave_up_flag: bool
    last_exc: Exception | None
    policy: Policy
    previous: float
    retries: int
    retrying: _Call | None
    runner: Runner
    start: float

    def __init__(self, runner: Runner, parent: Any) -> None:
        self.runner = runner
        self.start = _clock.monotonic()
        self.attempt = 1
        self.call_id = None if parent is None else parent.replay_id
        self.endpoint = None
        # The innermost enclosing retrying call, for the nesting guard.
        self.retrying = self if runner.has_retry else (parent and parent.retrying)

    # What current() shows.
    def context(self) -> CallContext:
        if self.call_id is None:
            self.call_id = new_call_id()
        remaining = None
        if self.runner.has_retry:
            deadline = self.runner.policy().deadline
            if deadline is not None:
                remaining = max(0.0, self.start + deadline - _clock.monotonic())
        return CallContext(self.call_id, self.attempt, remaining, self.endpoint, self.runner.name)

    def get_call_id(self) -> str:
        if self.call_id is None:
            self.call_id = new_call_id()
        return self.call_id

    def begin_retry(self, policy: Policy, parent: Any) -> None:
        """Set up the retry layer's state (after the happy path failed once or at start)."""
        self.policy = policy
        self.retries = 0
        self.previous = -1.0
        self.last_exc = None
        self.deadline_at = None if policy.deadline is None else self.start + policy.deadline
        self.deferred = False
        self.gave_up_flag = False
        outer = parent.retrying if parent is not None else None
        if outer is not None and policy.nested != "allow":
            runner = self.runner
            if policy.nested == "raise":
                raise NestedRetryError(outer.runner.name, runner.name)
            self.deferred = True
            runner.warn_nested(outer.runner.name)

    def remaining(self) -> float | None:
        if self.deadline_at is None:
            return None
        return self.deadline_at - _clock.monotonic()

    def on_error(self, exc: Exception) -> float | None:
        """Decide after a failed attempt: the delay before the next one, or ``None``."""
        policy = self.policy
        runner = self.runner
        fault: Fault = policy.classifier(exc)
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
            if delay > policy.retry_after_max:
                return self._give_up(exc, "deadline")
        else:
            backoff = policy.backoff_strategy
            delay = backoff.delay(self.attempt)
            jitter = policy.jitter_strategy
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
            logger.warning(
                "retrying %s in %.2fs after %s (cause=%s, attempt %d/%d)",
                runner.name,
                delay,
                what,
                cause,
                self.attempt,
                policy.attempts,
                extra={
                    "retryx": {
                        "name": runner.name,
                        "attempt": self.attempt,
                        "delay": delay,
                        "cause": cause,
                        "elapsed": _clock.monotonic() - self.start,
                        **({"endpoint": self.endpoint} if self.endpoint is not None else {}),
                    }
                },
            )
        if events._subscribers:
            events.emit(events.RetryScheduled(runner.name, self.attempt, delay, exc, cause))  # type: ignore[arg-type]
        return delay

    def next_attempt(self) -> bool:
        """After the wait: move on, unless the deadline has passed."""
        if self.deadline_at is not None and _clock.monotonic() > self.deadline_at:
            self._give_up(self.last_exc, "deadline")
            return False
        self.attempt += 1
        self.retries += 1
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
            logger.log(
                level,
                "giving up on %s after %d attempt%s in %.2fs (reason: %s): %s",
                runner.name,
                n,
                "s" if n != 1 else "",
                elapsed,
                reason,
                what,
                extra={
                    "retryx": {
                        "name": runner.name,
                        "attempt": n,
                        "elapsed": elapsed,
                        "reason": reason,
                        **({"endpoint": self.endpoint} if self.endpoint is not None else {}),
                    }
                },
            )
        if events._subscribers:
            events.emit(events.GaveUp(runner.name, n, elapsed, exc, reason))  # type: ignore[arg-type]
        self.gave_up_flag = True
        return _GIVE_UP


_NO_JITTER = _jitter.none


# --- the runner: drivers for one pipeline -----------------------------------------------


class Runner:
    """Everything one pipeline needs at call time, precomputed at decoration."""

    def __init__(self, layers: dict[str, Any], name: str, is_async: bool) -> None:
        self.layers = layers
        self.name = name
        self.is_async = is_async
        self.recorder = Recorder()
        retry_layer = layers.get("retry")
        self.has_retry = retry_layer is not None
        self._named_policy: str | None = retry_layer if isinstance(retry_layer, str) else None
        self._policy: Policy | None = retry_layer if isinstance(retry_layer, Policy) else None
        self._policy_generation = -1
        if self._policy is not None:
            self._check_policy(self._policy)
        fo = layers.get("failover")
        self.failover: _Failover | None = fo
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
        self._warned_nested: set[str] = set()
        # The happy path of a plain retry layer needs none of the machinery below.
        self.simple = (
            self._policy is not None
            and fo is None
            and breaker is None
            and self.fallback is None
            and self._policy.attempt_timeout is None
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
            breaker = self._endpoint_breakers.setdefault(endpoint, made)
        return breaker

    def endpoint_failed(self, endpoint: Hashable, exc: Exception) -> None:
        self.recorder.switched()
        if events._subscribers:
            events.emit(events.EndpointFailed(self.name, endpoint, exc))

    # --- warnings --------------------------------------------------------------------

    def warn_nested(self, outer: str) -> None:
        if outer not in self._warned_nested:
            self._warned_nested.add(outer)
            logger.warning(
                "nested retry: %s retries inside %s; deferring its retries to the outer "
                "layer (set nested='allow' or 'raise' on the inner policy to choose otherwise)",
                self.name,
                outer,
                extra={"retryx": {"name": self.name}},
            )
        if events._subscribers:
            events.emit(events.NestedRetry(outer, self.name))

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

    # --- finishing a call ----------------------------------------------------------

    def succeeded(self, call: _Call, policy: Policy | None) -> None:
        """Book a call that returned (on the slow path, or without a retry layer)."""
        elapsed = _clock.monotonic() - call.start
        if policy is None:
            self.recorder.success(elapsed)
        else:
            gave_up = call.gave_up_flag
            self.recorder.finish(elapsed, ok=True, retries=call.attempt - 1, gave_up=gave_up)
            if call.attempt > 1 and logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s succeeded after %d attempts in %.2fs",
                    self.name,
                    call.attempt,
                    elapsed,
                    extra={
                        "retryx": {"name": self.name, "attempt": call.attempt, "elapsed": elapsed}
                    },
                )
        if policy is not None and policy.budget is not None:
            policy.budget.record_success()
        if events._subscribers:
            events.emit(events.Succeeded(self.name, call.attempt, elapsed))

    def failed(self, call: _Call, exc: BaseException) -> None:
        """Book a call that ended in an exception."""
        elapsed = _clock.monotonic() - call.start
        gave_up = self.has_retry and getattr(call, "gave_up_flag", False)
        self.recorder.finish(elapsed, ok=False, retries=call.attempt - 1, gave_up=gave_up)
        for hook in events._failure_hooks:
            hook(self.name, call.attempt, elapsed, exc)

    def happy(self, call: _Call, policy: Policy) -> None:
        """Book a first-attempt success of a plain retry layer (the hot path)."""
        self.recorder.success(_clock.monotonic() - call.start)
        if policy.budget is not None:
            policy.budget.record_success()
        if events._subscribers:
            events.emit(events.Succeeded(self.name, 1, _clock.monotonic() - call.start))

    # --- the sync driver -----------------------------------------------------------

    def run_sync(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        parent = SCOPE.get()
        call = _Call(self, parent)
        token = SCOPE.set(call)
        try:
            if self.simple and (parent is None or parent.retrying is None):
                # Hot path: a plain @retry, not nested. The retry state is set up
                # only once the first attempt did not simply succeed.
                policy = cast(Policy, self._policy)
                try:
                    result = wrapped(*args, **kwargs)
                except Exception as exc:
                    call.begin_retry(policy, parent)
                    result = self._retry_sync(call, policy, wrapped, args, kwargs, exc)
                else:
                    if policy.retry_if_result is None or not policy.retry_if_result(result):
                        self.happy(call, policy)
                        return result
                    call.begin_retry(policy, parent)
                    result = self._retry_sync(call, policy, wrapped, args, kwargs, _MISSING, result)
                self.succeeded(call, policy)
                return result
            layered = self.policy() if self.has_retry else None
            try:
                if layered is not None:
                    call.begin_retry(layered, parent)
                    result = self._retry_sync(call, layered, wrapped, args, kwargs, None)
                else:
                    result = self._attempt_sync(call, wrapped, args, kwargs)
            except Exception as exc:
                self.failed(call, exc)
                if self.fallback is None:
                    raise
                return self._fallback_sync(call, exc, instance, args, kwargs)
            self.succeeded(call, layered)
            return result
        except BaseException as exc:
            if self.simple and isinstance(exc, Exception):
                self.failed(call, exc)
            raise
        finally:
            SCOPE.reset(token)

    def _retry_sync(
        self,
        call: _Call,
        policy: Policy,
        wrapped: Any,
        args: Any,
        kwargs: Any,
        first_error: Any,
        first_result: Any = _MISSING,
    ) -> Any:
        """Attempts 1..n (or 2..n when the hot path already made attempt 1)."""
        if first_error is not None and first_error is not _MISSING:
            delay = call.on_error(first_error)
            if delay is _GIVE_UP:
                raise first_error
        elif first_result is not _MISSING:
            delay = call.on_result(first_result)
            if delay is _GIVE_UP:
                return first_result
        else:
            delay = -1.0  # no attempt made yet
        check = policy.retry_if_result
        while True:
            if delay >= 0:
                if delay > 0:
                    self.sleep_sync(delay)
                else:
                    _clock.zero_wait(delay)  # never sleep(0): it costs a syscall
                if not call.next_attempt():
                    if call.last_exc is not None:
                        raise call.last_exc
                    return first_result
            try:
                result = self._attempt_sync(call, wrapped, args, kwargs)
            except Exception as exc:
                delay = call.on_error(exc)
                if delay is _GIVE_UP:
                    raise
                continue
            if check is not None and check(result):
                first_result = result
                delay = call.on_result(result)
                if delay is _GIVE_UP:
                    return result
                continue
            return result

    def _attempt_sync(self, call: _Call, wrapped: Any, args: Any, kwargs: Any) -> Any:
        """One attempt: a failover sweep, or one guarded call."""
        fo = self.failover
        if fo is None:
            return self._guarded_sync(None, wrapped, args, kwargs)
        if fo.param in kwargs:  # pinned by the caller: no failover, failure raised as is
            endpoint = kwargs[fo.param]
            call.endpoint = endpoint
            return self._guarded_sync(self.endpoint_breaker(endpoint), wrapped, args, kwargs)
        errors: dict[Hashable, Exception] = {}
        for endpoint in self.endpoints():
            call.endpoint = endpoint
            try:
                return self._guarded_sync(
                    self.endpoint_breaker(endpoint), wrapped, args, {**kwargs, fo.param: endpoint}
                )
            except Exception as exc:
                if not self.sweep_goes_on(call, exc):
                    raise
                errors[endpoint] = exc
                self.endpoint_failed(endpoint, exc)
        raise AllEndpointsFailed(errors)

    def _guarded_sync(
        self, endpoint_breaker: CircuitBreaker | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        """The call, through the endpoint's breaker and the @circuit_breaker layer."""
        breakers = self.guards(endpoint_breaker)
        if not breakers:
            return wrapped(*args, **kwargs)
        tokens = self.acquire(breakers)
        try:
            result = wrapped(*args, **kwargs)
        except Exception as exc:
            self.release(breakers, tokens, exc)
            raise
        except BaseException:
            self.release(breakers, tokens, None)
            raise
        self.release(breakers, tokens, _MISSING)
        return result

    def _fallback_sync(
        self, call: _Call, exc: Exception, instance: Any, args: Any, kwargs: Any
    ) -> Any:
        fb = self.fallback
        assert fb is not None
        if fb.defer_to is not None:
            return self.defer(call, exc, instance, args, kwargs)
        if fb.handler is None:
            return fb.value
        handler_args = args if instance is None else (instance, *args)
        return fb.handler(exc, *handler_args, **kwargs)

    # --- the async driver (mirrors the sync one) -------------------------------------

    async def run_async(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        parent = SCOPE.get()
        call = _Call(self, parent)
        token = SCOPE.set(call)
        try:
            if self.simple and (parent is None or parent.retrying is None):
                policy = cast(Policy, self._policy)
                try:
                    result = await wrapped(*args, **kwargs)
                except Exception as exc:
                    call.begin_retry(policy, parent)
                    result = await self._retry_async(call, policy, wrapped, args, kwargs, exc)
                else:
                    if policy.retry_if_result is None or not policy.retry_if_result(result):
                        self.happy(call, policy)
                        return result
                    call.begin_retry(policy, parent)
                    result = await self._retry_async(
                        call, policy, wrapped, args, kwargs, _MISSING, result
                    )
                self.succeeded(call, policy)
                return result
            layered = self.policy() if self.has_retry else None
            try:
                if layered is not None:
                    call.begin_retry(layered, parent)
                    result = await self._retry_async(call, layered, wrapped, args, kwargs, None)
                else:
                    result = await self._attempt_async(call, None, wrapped, args, kwargs)
            except Exception as exc:
                self.failed(call, exc)
                if self.fallback is None:
                    raise
                return await self._fallback_async(call, exc, instance, args, kwargs)
            self.succeeded(call, layered)
            return result
        except BaseException as exc:
            if self.simple and isinstance(exc, Exception):
                self.failed(call, exc)
            raise
        finally:
            SCOPE.reset(token)

    async def _retry_async(
        self,
        call: _Call,
        policy: Policy,
        wrapped: Any,
        args: Any,
        kwargs: Any,
        first_error: Any,
        first_result: Any = _MISSING,
    ) -> Any:
        if first_error is not None and first_error is not _MISSING:
            delay = call.on_error(first_error)
            if delay is _GIVE_UP:
                raise first_error
        elif first_result is not _MISSING:
            delay = call.on_result(first_result)
            if delay is _GIVE_UP:
                return first_result
        else:
            delay = -1.0
        check = policy.retry_if_result
        while True:
            if delay >= 0:
                if delay > 0:
                    await _clock.async_sleep(delay)
                else:
                    _clock.zero_wait(delay)
                if not call.next_attempt():
                    if call.last_exc is not None:
                        raise call.last_exc
                    return first_result
            try:
                result = await self._attempt_async(call, policy, wrapped, args, kwargs)
            except Exception as exc:
                delay = call.on_error(exc)
                if delay is _GIVE_UP:
                    raise
                continue
            if check is not None and check(result):
                first_result = result
                delay = call.on_result(result)
                if delay is _GIVE_UP:
                    return result
                continue
            return result

    async def _attempt_async(
        self, call: _Call, policy: Policy | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        timeout = None if policy is None else policy.attempt_timeout
        if timeout is not None:
            import asyncio

            remaining = call.remaining()
            if remaining is not None:
                timeout = max(0.0, min(timeout, remaining))
            async with asyncio.timeout(timeout):
                return await self._sweep_async(call, wrapped, args, kwargs)
        return await self._sweep_async(call, wrapped, args, kwargs)

    async def _sweep_async(self, call: _Call, wrapped: Any, args: Any, kwargs: Any) -> Any:
        fo = self.failover
        if fo is None:
            return await self._guarded_async(None, wrapped, args, kwargs)
        if fo.param in kwargs:
            endpoint = kwargs[fo.param]
            call.endpoint = endpoint
            return await self._guarded_async(self.endpoint_breaker(endpoint), wrapped, args, kwargs)
        errors: dict[Hashable, Exception] = {}
        for endpoint in self.endpoints():
            call.endpoint = endpoint
            try:
                return await self._guarded_async(
                    self.endpoint_breaker(endpoint), wrapped, args, {**kwargs, fo.param: endpoint}
                )
            except Exception as exc:
                if not self.sweep_goes_on(call, exc):
                    raise
                errors[endpoint] = exc
                self.endpoint_failed(endpoint, exc)
        raise AllEndpointsFailed(errors)

    async def _guarded_async(
        self, endpoint_breaker: CircuitBreaker | None, wrapped: Any, args: Any, kwargs: Any
    ) -> Any:
        breakers = self.guards(endpoint_breaker)
        if not breakers:
            return await wrapped(*args, **kwargs)
        tokens = self.acquire(breakers)
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            self.release(breakers, tokens, exc)
            raise
        except BaseException:
            self.release(breakers, tokens, None)
            raise
        self.release(breakers, tokens, _MISSING)
        return result

    async def _fallback_async(
        self, call: _Call, exc: Exception, instance: Any, args: Any, kwargs: Any
    ) -> Any:
        fb = self.fallback
        assert fb is not None
        if fb.defer_to is not None:
            return self.defer(call, exc, instance, args, kwargs)
        if fb.handler is None:
            return fb.value
        handler_args = args if instance is None else (instance, *args)
        result = fb.handler(exc, *handler_args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    # --- shared by both drivers (no I/O) ------------------------------------------------

    def guards(self, endpoint_breaker: CircuitBreaker | None) -> tuple[CircuitBreaker, ...]:
        """The breakers one call goes through: the endpoint's, then @circuit_breaker's."""
        breaker = self.breaker()
        if endpoint_breaker is None:
            return () if breaker is None else (breaker,)
        return (endpoint_breaker,) if breaker is None else (endpoint_breaker, breaker)

    def acquire(self, breakers: tuple[CircuitBreaker, ...]) -> Any:
        """Admit the call through every breaker, or through none of them."""
        if len(breakers) == 1:
            try:
                return breakers[0]._acquire()
            except CircuitOpenError:
                self.recorder.rejected()
                raise
        tokens: list[Any] = []
        try:
            for breaker in breakers:
                tokens.append(breaker._acquire())
        except CircuitOpenError:
            for breaker, token in zip(breakers, tokens, strict=False):
                breaker._release(token)
            self.recorder.rejected()
            raise
        return tokens

    @staticmethod
    def release(breakers: tuple[CircuitBreaker, ...], tokens: Any, outcome: Any) -> None:
        """Report the outcome to each breaker: ``_MISSING`` success, ``None`` no verdict,
        else the exception.
        """
        if len(breakers) == 1:
            pairs: Any = ((breakers[0], tokens),)
        else:
            pairs = zip(breakers, tokens, strict=True)
        for breaker, token in pairs:
            if outcome is _MISSING:
                breaker._on_success(token)
            elif outcome is None:
                breaker._release(token)
            else:
                breaker._on_failure(token, outcome)

    def sweep_goes_on(self, call: _Call, exc: Exception) -> bool:
        """Whether a failover sweep moves to the next endpoint after ``exc``."""
        if isinstance(exc, CircuitOpenError):
            return True  # an endpoint skipped by its open breaker: nothing was sent
        policy = self._policy if self.has_retry else None
        classifier = classify if policy is None else policy.classifier
        if not classifier(exc).transient:
            return False
        # Not idempotent: move on only when the request provably never left.
        return policy is None or policy.idempotent or is_unsent(exc)

    def defer(self, call: _Call, exc: Exception, instance: Any, args: Any, kwargs: Any) -> Any:
        fb = self.fallback
        assert fb is not None
        classifier = self.policy().classifier if self.has_retry else classify
        if not classifier(exc).transient:
            raise exc  # a permanent fault is the caller's, never stored
        fb.defer_to.defer(self, call.get_call_id(), exc, instance, args, kwargs)
        if events._subscribers:
            events.emit(events.Deferred(self.name, call.get_call_id(), exc, fb.defer_to))
        return None


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


class _Pipeline(wrapt.FunctionWrapper[Any, Any]):
    """One wrapper carrying every retryx layer of a callable."""

    def __init__(self, wrapped: Any, layers: dict[str, Any]) -> None:
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
        super().__init__(wrapped, runner.run_async if is_async else runner.run_sync)
        self._self_runner = runner
        self._self_layers = layers
        # Plain functions skip wrapt's generic __call__ (which probes __self__ on
        # every call): they can never be bound.
        self._self_direct = self._self_binding in ("function", "builtin")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_direct:
            return self._self_wrapper(self.__wrapped__, None, args, kwargs)  # type: ignore[call-arg, arg-type]
        return cast(Any, super()).__call__(*args, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled by reference, like the plain function it decorates.
        return _unwrap(self.__wrapped__).__qualname__


def _unwrap(obj: Any) -> Any:
    """The plain function under classmethod/staticmethod/partial/wrappers."""
    for _ in range(32):
        if isinstance(obj, classmethod | staticmethod):
            obj = obj.__func__
        elif isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, _Pipeline):
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
    if isinstance(obj, _Pipeline):
        base, layers = obj.__wrapped__, obj._self_layers
    elif isinstance(obj, classmethod | staticmethod) and isinstance(obj.__func__, _Pipeline):
        inner = obj.__func__
        base, layers = inner.__wrapped__, inner._self_layers
        method_type = type(obj)
        rewrap = method_type
    if kind in layers:
        name = getattr(_unwrap(base), "__qualname__", repr(base))
        raise ConfigError(f"{name}: @{kind} is applied twice; one of each kind per callable")
    merged = {k: v for k, v in {**layers, kind: layer}.items() if v is not None}
    ordered = {k: merged[k] for k in _ORDER if k in merged}
    return _Pipeline(rewrap(base), ordered)


def _is_target(obj: Any) -> bool:
    """Whether a decorator factory was given the callable itself (the bare form)."""
    if obj is None or isinstance(obj, Policy | str | CircuitBreaker):
        return False
    return callable(obj) or isinstance(obj, classmethod | staticmethod)


def _find(obj: Any) -> _Pipeline | None:
    for _ in range(8):
        if isinstance(obj, _Pipeline):
            return obj
        parent = getattr(obj, "_self_parent", None)
        if isinstance(parent, _Pipeline):
            return parent
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


def fallback(
    handler: Callable[..., Any] | None = None,
    *,
    value: Any = _MISSING,
    defer_to: Any = None,
) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
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
    pipeline = _find(func)
    return [] if pipeline is None else list(pipeline._self_layers)


def stats(func: Any, *, reset: bool = False) -> Stats:
    """A snapshot of ``func``'s counters; ``reset=True`` zeroes them after reading.

    Raises:
        ConfigError: when ``func`` carries no retryx layer.
    """
    pipeline = _find(func)
    if pipeline is None:
        raise ConfigError(f"stats: {func!r} is not decorated by retryx")
    recorder: Recorder = pipeline._self_runner.recorder
    snapshot = recorder.snapshot()
    if reset:
        recorder.reset()
    return snapshot


def replay_scope(call_id: str) -> ReplayScope:
    """A scope that makes the next pipeline call reuse ``call_id`` (for replays)."""
    return ReplayScope(call_id)
