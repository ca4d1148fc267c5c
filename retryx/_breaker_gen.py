"""A circuit breaker around generator functions and async generator functions.

A generator cannot be retried (it cannot be rewound), but a breaker needs no
second run: it admits the iteration at the first ``next()`` (so a generator made
and never started takes no trial slot), counts a fault raised while iterating
through its ``counts`` classifier, counts a completed iteration as a success, and
gives its trial slot back without a verdict when the generator is closed early
(``close()``, ``GeneratorExit``, garbage collection) or cancelled.

``send()`` and ``throw()`` reach the decorated generator unchanged (``yield from``
for generators; the same by hand for async generators, which have no ``yield from``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

from . import _clock, _switches
from ._breaker import CircuitBreaker
from ._breaker_state import Token
from ._errors import CircuitOpenError

__all__ = ["wrapper_of"]


def _admit(pipeline: Any) -> tuple[CircuitBreaker | None, Token]:
    """The pipeline's breaker and the admission token (``None`` breaker: switched off)."""
    if not _switches.switches.active:
        return None, None  # retryx switched off: one plain iteration
    breaker: CircuitBreaker | None = pipeline.breaker()
    assert breaker is not None
    try:
        return breaker, breaker._acquire()
    except CircuitOpenError:
        pipeline.recorder.rejected()
        raise


def _book(
    pipeline: Any, breaker: CircuitBreaker, token: Token, start: float, exc: BaseException | None
) -> None:
    """Book the end of an iteration: ``exc`` None for a completed one."""
    ok = True
    if exc is None:
        breaker._on_success(token)
    elif isinstance(exc, Exception) and not isinstance(exc, CircuitOpenError):
        breaker._on_failure(token, exc)
        ok = False
    else:
        # Closed early, cancelled, interrupted, or an inner breaker refusing: no
        # verdict on this breaker's dependency.
        breaker._release(token)
        ok = not isinstance(exc, Exception)
    pipeline.recorder.finish(_clock.monotonic() - start, ok=ok, retries=0, gave_up=False)


def _guarded(pipeline: Any, wrapped: Any, args: Any, kwargs: Any) -> Generator[Any, Any, Any]:
    start = _clock.monotonic()
    breaker, token = _admit(pipeline)
    if breaker is None:
        return (yield from wrapped(*args, **kwargs))
    try:
        result = yield from wrapped(*args, **kwargs)
    except BaseException as exc:
        _book(pipeline, breaker, token, start, exc)
        raise
    _book(pipeline, breaker, token, start, None)
    return result


async def _guarded_async(
    pipeline: Any, wrapped: Any, args: Any, kwargs: Any
) -> AsyncGenerator[Any, Any]:
    start = _clock.monotonic()
    breaker, token = _admit(pipeline)
    inner = wrapped(*args, **kwargs)
    try:
        try:
            value = await inner.__anext__()
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as thrown:
                    value = await inner.athrow(thrown)
                else:
                    value = await inner.asend(sent)
        except StopAsyncIteration:
            pass
    except BaseException as exc:
        if breaker is not None:
            _book(pipeline, breaker, token, start, exc)
        raise
    if breaker is not None:
        _book(pipeline, breaker, token, start, None)


def wrapper_of(pipeline: Any, is_async: bool) -> Any:
    """The ``wrapt`` wrapper of a breaker-only pipeline on a generator function: each
    call returns a new guarded generator (admitted at its first step)."""
    guard = _guarded_async if is_async else _guarded

    def guarded_generator(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return guard(pipeline, wrapped, args, kwargs)

    return guarded_generator
