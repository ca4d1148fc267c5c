"""The per-call scope: what ``current()`` reads and what the nesting guard checks."""

from __future__ import annotations

import os
from collections.abc import Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ._errors import RetryxError

__all__ = [
    "ENDPOINT",
    "FINISHED",
    "SCOPE",
    "CallContext",
    "ReplayScope",
    "context",
    "current",
    "new_call_id",
]


@dataclass(frozen=True, slots=True)
class CallContext:
    """A snapshot of the retryx call in progress, from ``retryx.current()``.

    ``call_id`` is the same for every attempt of one logical call (and kept when a
    deferred call is replayed): use it as an idempotency key. ``attempt`` is
    1-based; ``remaining`` is the seconds left before the deadline, or ``None``;
    ``endpoint`` is the failover endpoint of this attempt, or ``None``.
    """

    call_id: str
    attempt: int
    remaining: float | None
    endpoint: Hashable | None
    name: str


CallContext.__module__ = "retryx"


class _Endpoint:
    """The type of ``retryx.ENDPOINT``: one instance, pickled by reference."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "retryx.ENDPOINT"

    def __reduce__(self) -> str:
        return "ENDPOINT"


# Typed ``Any`` so it is a valid default for any annotation (``host: str = ENDPOINT``).
ENDPOINT: Any = _Endpoint()
"""The default of a ``@failover`` function's endpoint parameter.

``def query(sql: str, *, host: str = retryx.ENDPOINT)`` lets callers (and type
checkers) leave the endpoint out: ``@failover`` passes it on every call, so the
default itself is never used.
"""

# Holds the innermost retryx call of this thread or task: the call's *head* list
# made by the pipeline (see ``_pipeline``), or a ``ReplayScope``. Asyncio tasks
# and ``asyncio.to_thread`` copy the context, so they inherit it.
SCOPE: ContextVar[Any] = ContextVar("retryx_scope", default=None)


class _Finished:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FINISHED"


# What a call's head holds as its state once the call has ended: a task or a callback
# that outlives the call still has the head in its context, but no longer the call.
FINISHED: Any = _Finished()


def new_call_id() -> str:
    """A random 128-bit hex id."""
    return os.urandom(16).hex()


class ReplayScope:
    """Set around a replayed call so the pipeline keeps the stored ``call_id``."""

    __slots__ = ("replay_id",)

    def __init__(self, call_id: str) -> None:
        self.replay_id = call_id


def current() -> CallContext | None:
    """The ``CallContext`` of the retryx call in progress, or ``None`` outside one."""
    scope = SCOPE.get()
    if type(scope) is not list:  # None, or a ReplayScope waiting for its call
        return None
    context: CallContext | None = scope[0].context(scope)  # a call's head: [runner, ...]
    return context


def context() -> CallContext:
    """The ``CallContext`` of the retryx call in progress (``current()`` that is never ``None``).

    Raises:
        RetryxError: outside a retryx call.
    """
    found = current()
    if found is None:
        raise RetryxError("retryx.context() needs a retryx call in progress (see retryx.current())")
    return found
