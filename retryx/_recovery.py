"""The drivers' slow path: attempts 2..n of a call, and what ends it.

The drivers (``retryx._drivers``) run attempt 1 inline; when it fails (or its
result must be retried) they hand the call to ``recover_sync`` or
``recover_async``, which make the call's ``RetryState``, wait and call again as
it decides, then book the call, re-raise, or fall back. The two are generated
from one template (``_RECOVER``), as the drivers are. ``attempt_sync`` and
``attempt_async`` are one attempt of a pipeline that is not plain.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _clock, _guard
from ._classifiers import PredicateClassifier
from ._classify import Fault
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


def fallback(
    pipeline: Pipeline, head: Head, exc: Exception, instance: Any, args: Any, kwargs: Any
) -> Any:
    """What the ``@fallback`` layer makes of a call that failed with ``exc``: deferred to a
    replay queue (``None``), its ``value``, or its handler's result (which an async
    pipeline awaits when it is awaitable)."""
    fb = pipeline.fallback
    assert fb is not None
    if fb.defer_to is not None:
        return pipeline.defer(head, exc, instance, args, kwargs)
    if fb.handler is None:
        return fb.value
    handler_args = args if instance is None else (instance, *args)
    return fb.handler(exc, *handler_args, **kwargs)


# Attempts 2..n of a call, sync and async from the same lines: after attempt 1 failed
# with ``exc`` (or returned a ``result`` to retry, with ``retry_if_result``'s
# ``verdict``), retry per the policy (RetryState decides), then book the call,
# re-raise, or fall back. An async pipeline also awaits an async ``retry_on`` and
# ``retry_if_result``, its async hooks, and an async fallback handler.
_RECOVER = """\
{A}def recover(pipeline, head, policy, exc, result, wrapped, instance, args, kwargs, verdict=True):
    call = None
    try:
        if policy is None:
            assert exc is not None
            raise exc
        call = RetryState(head, policy, wrapped, args, kwargs)
        if exc is not None:
            delay = call.on_error(exc{FAULT_OF_EXC})
        else:
            fault = pipeline.result_fault(verdict)
            delay = GIVE_UP if fault is None else call.on_result(result, fault)
        check = policy.retry_if_result
        while delay is not GIVE_UP:
{DRAIN_RETRY}            if delay > 0:
                {SLEEP}
            elif clock.zero_wait is not None:  # never sleep(0): it costs a syscall
                clock.zero_wait(delay)
            if not call.next_attempt():
                exc = call.last_exc  # None: the last result is returned
                break
            try:
                if pipeline.plain:
                    result = {W}(wrapped(*args, **kwargs) if kwargs else wrapped(*args))
                else:
                    result = {W}pipeline.attempt(head, {POLICY_ARG}wrapped, args, kwargs)
            except Exception as error:
                exc = error
                delay = call.on_error(error{FAULT_OF_ERROR})
                continue
            exc = None
            fault = None if check is None else pipeline.result_fault({CHECK})
            if fault is None:
                break
            delay = call.on_result(result, fault)
{DRAIN_GIVE_UP}        if exc is not None:
            raise exc
    except Exception as final:
        pipeline.failed(head, final)
        if pipeline.fallback is None:
            raise
        result = fallback(pipeline, head, final, instance, args, kwargs)
{AWAIT_RESULT}        return result
    except BaseException as interrupted:  # cancelled or interrupted: booked, not retried
        pipeline.failed(head, interrupted)
        raise
    else:
        pending = pipeline.succeeded(call, policy, head, result)
{AWAIT_PENDING}        return result
    finally:
        # The traceback holds this frame: drop what holds the exception (as the
        # stdlib does), so the failed attempts' frames are freed without the GC.
        exc = call = None
"""


def _generate_recover(is_async: bool) -> Any:
    if is_async:
        pieces = {
            "A": "async ",
            "W": "await ",
            "FAULT_OF_EXC": ", await fault_async(policy, exc)",
            "FAULT_OF_ERROR": ", await fault_async(policy, error)",
            "DRAIN_RETRY": "            if call.awaiting:\n"
            "                await call.drain()  # on_retry hooks, before the wait\n",
            "SLEEP": "await clock.async_sleep(delay)",
            "POLICY_ARG": "policy, ",
            "CHECK": "await pipeline.verdict(check(result))",
            "DRAIN_GIVE_UP": "        if call.awaiting:\n"
            "            await call.drain()  # on_give_up hooks\n",
            # An async handler's result is awaited (never a value=).
            "AWAIT_RESULT": "        if pipeline.fallback.handler is not None "
            "and isawaitable(result):\n"
            "            result = await result\n",
            "AWAIT_PENDING": "        if pending is not None:\n"
            "            await await_hook(pending)\n",
        }
    else:
        pieces = {
            "A": "",
            "W": "",
            "FAULT_OF_EXC": "",
            "FAULT_OF_ERROR": "",
            "DRAIN_RETRY": "",
            "SLEEP": "pipeline.sleep_sync(delay)",
            "POLICY_ARG": "",
            "CHECK": "check(result)",
            "DRAIN_GIVE_UP": "",
            "AWAIT_RESULT": "",
            "AWAIT_PENDING": "",
        }
    namespace = {
        "RetryState": RetryState,
        "GIVE_UP": GIVE_UP,
        "clock": _clock,
        "fallback": fallback,
        "fault_async": _fault_async,
        "await_hook": await_hook,
        "isawaitable": inspect.isawaitable,
    }
    flavour = "async" if is_async else "sync"
    source = _RECOVER.format(**pieces)
    recover = _guard.compile_source(source, f"<retryx recover, {flavour}>", namespace)["recover"]
    recover.__name__ = recover.__qualname__ = f"recover_{flavour}"
    recover.__doc__ = "Attempts 2..n of a call, then book it, re-raise or fall back."
    return recover


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


if TYPE_CHECKING:

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
        """Attempts 2..n of a sync call, then book it, re-raise or fall back."""

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
        """``recover_sync`` for coroutine functions."""
else:

    def __getattr__(name: str) -> Any:
        """``recover_sync`` / ``recover_async``, generated on first use (a compile each:
        not paid by ``import retryx``)."""
        if name in ("recover_sync", "recover_async"):
            made = _generate_recover(name == "recover_async")
            globals()[name] = made
            return made
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
