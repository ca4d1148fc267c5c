"""Nested layers keep their judgement: verdicts that travel with a fault, and ``carry``.

"The inner layer classifies, the outer layer schedules." A deferring inner
retry (``nested="defer"``) judges each fault with its own policy and addresses
that verdict to the retrying call it defers to: the verdict is kept on the
exception itself (in its ``__dict__``, under a private key: no wrapper, no new
type, the caller's exception stays what it was), next to the ``call_id`` of the
call it is meant for. Only that call reads it, so an exception instance raised
again elsewhere never brings a stale verdict along; the key holds strings and
value objects only, so it never keeps a call's state alive.

A pipeline call also addresses verdicts to itself, so that a fault judged once
(by the failover sweep) is not judged again by the retry decision or by
``fallback(defer_to=...)``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import _bus, events
from ._errors import AllEndpointsFailed, ConfigError
from ._fault import Fault

__all__ = ["Verdict", "address", "carried", "carry", "warn_nested"]

F = TypeVar("F", bound=Callable[..., Any])

Verdict = tuple[Fault, bool]
"""``(fault, idempotent)``: the fault as judged, and whether every layer that
judged it allows re-sending the request."""

_KEY = "__retryx_verdict__"


def address(exc: BaseException, call_id: str, verdict: Verdict, *, inner: bool = False) -> None:
    """Attach ``verdict`` to ``exc`` for the call ``call_id`` (replacing any other).

    ``inner``: the verdict of a deferring inner layer (else the call's own, kept so
    it is not judged again).
    """
    try:
        vars(exc)[_KEY] = (call_id, verdict, inner)
    except TypeError:  # pragma: no cover - every BaseException has a __dict__
        pass


def carried(exc: BaseException, call_id: str | None) -> Verdict | None:
    """The verdict addressed to the call ``call_id`` that ``exc`` carries, or ``None``.

    A failover sweep's ``AllEndpointsFailed`` carries one when any of its errors
    carries a deferring inner layer's verdict: it is transient (only faults the
    sweep judged transient, or endpoints skipped by their open breaker, are
    gathered), and it may be re-sent only when every judged error may. (A group of
    errors judged by the call itself is judged as a group by its classifier.)
    """
    if call_id is None:
        return None
    tag = vars(exc).get(_KEY)
    if tag is not None and tag[0] == call_id:
        verdict: Verdict = tag[1]
        return verdict
    if isinstance(exc, AllEndpointsFailed):
        found = [v for v in (_from_inner(e, call_id) for e in exc.errors.values()) if v]
        if found:
            cause = next((f.cause for f, _ in found if f.transient), "circuit_open")
            idempotent = all(i for _, i in found)
            return Fault(True, cause, exc.retry_after), idempotent
    return None


def _from_inner(exc: BaseException, call_id: str) -> Verdict | None:
    tag = vars(exc).get(_KEY)
    if tag is not None and tag[0] == call_id and tag[2]:
        verdict: Verdict = tag[1]
        return verdict
    return None


def carry(fn: F) -> F:
    """Return ``fn`` bound to the calling context (``contextvars.copy_context``).

    Work handed to a thread or an executor does not inherit the context, so a
    retrying call inside it would not see the retrying call that handed it over:
    ``executor.submit(retryx.carry(work))`` runs ``work`` in a copy of the context
    taken now, so its retries defer to the outer layer like any nested layer. Each
    call runs in its own copy (a context can be entered by one thread at a time).
    A coroutine function is run as a task in that context.

    Raises:
        ConfigError: when ``fn`` is not callable.
    """
    if not callable(fn):
        raise ConfigError(f"carry: expected a callable, got {fn!r}")
    context = contextvars.copy_context()

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def carried_async(*args: Any, **kwargs: Any) -> Any:
            import asyncio

            loop = asyncio.get_running_loop()
            return await loop.create_task(fn(*args, **kwargs), context=context.copy())

        return carried_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def carried_sync(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(fn, *args, **kwargs)

    return carried_sync  # type: ignore[return-value]


# (outer name, inner name) pairs already warned about: once per process, per pair.
# Bounded: per-request policy names would make it grow forever; once full it starts
# over (a pair may then be warned about once more).
_warned_nested: set[tuple[str, str]] = set()
_MAX_WARNED_NESTED = 1024
_warned_nested_lock = threading.Lock()


def warn_nested(outer: str, inner: str) -> None:
    """A retrying call ``inner`` runs inside ``outer`` and defers to it: log it once per
    pair, and emit ``NestedRetry`` every time."""
    pair = (outer, inner)
    if pair not in _warned_nested:
        with _warned_nested_lock:
            first = pair not in _warned_nested
            if len(_warned_nested) >= _MAX_WARNED_NESTED:
                _warned_nested.clear()
            _warned_nested.add(pair)
    else:
        first = False
    if first:
        _bus.logger.warning(
            "nested retry: %s retries inside %s; deferring its retries to the outer "
            "layer (set nested='allow' or 'raise' on the inner policy to choose otherwise)",
            inner,
            outer,
            extra={"retryx": {"name": inner}},
        )
    if _bus._subscribers:
        _bus.emit(events.NestedRetry(outer, inner))
