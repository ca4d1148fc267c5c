"""The drivers' slow path: attempts 2..n of a call, and what ends it.

The drivers (``retryx._drivers``) run attempt 1 inline; when it fails (or its
result must be retried) they hand the call to ``recover_sync`` or
``recover_async``, which make the call's ``RetryState``, wait and call again as
it decides, then book the call, re-raise, or fall back. The two mirror each
other line for line: change one, change the other. ``attempt_sync`` and
``attempt_async`` are one attempt of a pipeline that is not plain.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _clock
from ._classify import Fault, PredicateClassifier
from ._context import HEAD_START, Head
from ._mistakes import async_retry_on
from ._policy import Policy
from ._retry_state import GIVE_UP, RetryState, await_hook

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["attempt_async", "attempt_sync", "recover_async", "recover_sync"]


def attempt_sync(pipeline: Pipeline, head: Head, wrapped: Any, args: Any, kwargs: Any) -> Any:
    """One attempt of a pipeline without failover: through its breaker (a named one)."""
    breaker = pipeline.breaker()
    if breaker is None:
        return wrapped(*args, **kwargs)
    return breaker._call(wrapped, args, kwargs, pipeline.recorder)


async def attempt_async(
    pipeline: Pipeline, head: Head, policy: Policy | None, wrapped: Any, args: Any, kwargs: Any
) -> Any:
    """One attempt; ``attempt_timeout`` bounds each call of it (each endpoint's, under
    failover, so a hanging endpoint is cut, counted on its breaker and skipped).
    """
    timeout = None if policy is None else policy.attempt_timeout
    if timeout is not None:
        assert policy is not None
        deadline_at = None if policy.deadline is None else head[HEAD_START] + policy.deadline
        wrapped = functools.partial(_timed, wrapped, timeout, deadline_at)
    if pipeline.failover is not None:
        return await pipeline.failover.sweep_async(head, wrapped, args, kwargs)
    breaker = pipeline.breaker()
    if breaker is None:
        return await wrapped(*args, **kwargs)
    return await breaker._call_async(wrapped, args, kwargs, pipeline.recorder)


def recover_sync(
    pipeline: Pipeline,
    head: Head,
    policy: Policy | None,
    exc: Exception | None,
    result: Any,
    wrapped: Any,
    instance: Any,
    args: Any,
    kwargs: Any,
    verdict: Any = True,
) -> Any:
    """After attempt 1 failed with ``exc`` (or returned a ``result`` to retry, with
    ``retry_if_result``'s ``verdict``): attempts 2..n per the policy, then book the
    call, or fall back.
    """
    call = None
    try:
        if policy is None:
            assert exc is not None
            raise exc
        call = RetryState(head, policy, wrapped, args, kwargs)
        if exc is not None:
            delay = call.on_error(exc)
        else:
            fault = pipeline.result_fault(verdict)
            delay = GIVE_UP if fault is None else call.on_result(result, fault)
        check = policy.retry_if_result
        while delay is not GIVE_UP:
            if delay > 0:
                pipeline.sleep_sync(delay)
            elif _clock.zero_wait is not None:  # never sleep(0): it costs a syscall
                _clock.zero_wait(delay)
            if not call.next_attempt():
                exc = call.last_exc  # None: the last result is returned
                break
            try:
                if pipeline.plain:
                    result = wrapped(*args, **kwargs) if kwargs else wrapped(*args)
                else:
                    result = pipeline.attempt(head, wrapped, args, kwargs)
            except Exception as error:
                exc = error
                delay = call.on_error(error)
                continue
            exc = None
            fault = None if check is None else pipeline.result_fault(check(result))
            if fault is None:
                break
            delay = call.on_result(result, fault)
        if exc is not None:
            raise exc
    except Exception as final:
        pipeline.failed(head, final)
        if pipeline.fallback is None:
            raise
        return fallback_sync(pipeline, head, final, instance, args, kwargs)
    except BaseException as interrupted:  # cancelled or interrupted: booked, not retried
        pipeline.failed(head, interrupted)
        raise
    else:
        pipeline.succeeded(call, policy, head, result)
        return result
    finally:
        # The traceback holds this frame: drop what holds the exception (as the
        # stdlib does), so the failed attempts' frames are freed without the GC.
        exc = call = None


def fallback_sync(
    pipeline: Pipeline, head: Head, exc: Exception, instance: Any, args: Any, kwargs: Any
) -> Any:
    fb = pipeline.fallback
    assert fb is not None
    if fb.defer_to is not None:
        return pipeline.defer(head, exc, instance, args, kwargs)
    if fb.handler is None:
        return fb.value
    handler_args = args if instance is None else (instance, *args)
    return fb.handler(exc, *handler_args, **kwargs)


async def recover_async(
    pipeline: Pipeline,
    head: Head,
    policy: Policy | None,
    exc: Exception | None,
    result: Any,
    wrapped: Any,
    instance: Any,
    args: Any,
    kwargs: Any,
    verdict: Any = True,
) -> Any:
    call = None
    try:
        if policy is None:
            assert exc is not None
            raise exc
        call = RetryState(head, policy, wrapped, args, kwargs)
        if exc is not None:
            delay = call.on_error(exc, await _fault_async(policy, exc))
        else:
            fault = pipeline.result_fault(verdict)
            delay = GIVE_UP if fault is None else call.on_result(result, fault)
        check = policy.retry_if_result
        while delay is not GIVE_UP:
            if call.awaiting:
                await call.drain()  # on_retry hooks, before the wait
            if delay > 0:
                await _clock.async_sleep(delay)
            elif _clock.zero_wait is not None:
                _clock.zero_wait(delay)
            if not call.next_attempt():
                exc = call.last_exc
                break
            try:
                if pipeline.plain:
                    result = await (wrapped(*args, **kwargs) if kwargs else wrapped(*args))
                else:
                    result = await pipeline.attempt(head, policy, wrapped, args, kwargs)
            except Exception as error:
                exc = error
                delay = call.on_error(error, await _fault_async(policy, error))
                continue
            exc = None
            fault = None
            if check is not None:
                fault = pipeline.result_fault(await pipeline.verdict(check(result)))
            if fault is None:
                break
            delay = call.on_result(result, fault)
        if call.awaiting:
            await call.drain()  # on_give_up hooks
        if exc is not None:
            raise exc
    except Exception as final:
        pipeline.failed(head, final)
        if pipeline.fallback is None:
            raise
        return await fallback_async(pipeline, head, final, instance, args, kwargs)
    except BaseException as interrupted:  # cancelled or interrupted: booked, not retried
        pipeline.failed(head, interrupted)
        raise
    else:
        pending = pipeline.succeeded(call, policy, head, result)
        if pending is not None:
            await await_hook(pending)
        return result
    finally:
        exc = call = None  # no cycle through this frame (see _recover_sync)


async def fallback_async(
    pipeline: Pipeline, head: Head, exc: Exception, instance: Any, args: Any, kwargs: Any
) -> Any:
    fb = pipeline.fallback
    assert fb is not None
    if fb.defer_to is not None:
        return pipeline.defer(head, exc, instance, args, kwargs)
    if fb.handler is None:
        return fb.value
    handler_args = args if instance is None else (instance, *args)
    result = fb.handler(exc, *handler_args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _fault_async(policy: Policy, exc: Exception) -> Fault | None:
    """An async ``retry_on`` predicate's verdict on ``exc``, awaited (``None``: the
    classifier is sync and ``RetryState.on_error`` runs it)."""
    if type(policy.retry_on) is not PredicateClassifier:
        return None  # the default classifier or exception types: no predicate to await
    func = async_retry_on(policy)
    if func is None:
        return None
    verdict = await func(exc)
    return PredicateClassifier(lambda _: verdict)(exc)  # the one reading of a verdict


async def _timed(
    fn: Callable[..., Any], timeout: float, deadline_at: float | None, *args: Any, **kwargs: Any
) -> Any:
    """``await fn(...)`` within ``timeout`` seconds, capped by the time left (TimeoutError)."""
    if deadline_at is not None:
        timeout = max(0.0, min(timeout, deadline_at - _clock.monotonic()))
    async with _clock.timeout_scope(timeout):
        return await fn(*args, **kwargs)
