"""The per-call scope: what ``current()`` reads and what the nesting guard checks."""

from __future__ import annotations

import os
from collections.abc import Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._errors import RetryxError

__all__ = [
    "ENDPOINT",
    "FINISHED",
    "HEAD_CALL_ID",
    "HEAD_ENDPOINT",
    "HEAD_PARENT",
    "HEAD_PIPELINE",
    "HEAD_START",
    "HEAD_STATE",
    "SCOPE",
    "CallContext",
    "Head",
    "ReplayScope",
    "call_id_of",
    "context",
    "current",
    "new_call_id",
    "retrying_of",
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

# Holds the innermost retryx call of this thread or task: the call's *head* (below),
# or a ``ReplayScope``. Asyncio tasks and ``asyncio.to_thread`` copy the context, so
# they inherit it.
SCOPE: ContextVar[Any] = ContextVar("retryx_scope", default=None)

# --- the head of a call ---------------------------------------------------------------
#
# Every call through a pipeline makes one six-slot list, its *head*, and sets it in
# ``SCOPE``: ``current()`` and the nesting guard read it. A list because it is the
# cheapest mutable thing to make on every call (the drivers build it as a literal,
# ``[pipeline, parent, start, None, None, None]``); the slots are read by the names
# below and nowhere by number, except in the generated drivers.
Head: TypeAlias = list[Any]
HEAD_PIPELINE = 0  # the Pipeline of the call (retryx._pipeline)
HEAD_PARENT = 1  # what SCOPE held before: the head of the call around it, a ReplayScope, None
HEAD_START = 2  # clock.monotonic() when the call began
HEAD_CALL_ID = 3  # None until first asked for (call_id_of)
HEAD_ENDPOINT = 4  # the failover endpoint of the attempt in progress, else None
# The RetryState once attempt 1 did not simply succeed, so current() sees the attempt
# number; FINISHED once the call has returned or raised (set by the driver): a task or
# thread given the context may outlive the call, and must not defer to it then.
HEAD_STATE = 5


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
    context: CallContext | None = scope[HEAD_PIPELINE].context(scope)
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


def call_id_of(head: Head) -> str:
    """The call's id, made on first use (a replayed call keeps its stored id)."""
    call_id: str | None = head[HEAD_CALL_ID]
    if call_id is None:
        parent = head[HEAD_PARENT]
        call_id = parent.replay_id if isinstance(parent, ReplayScope) else new_call_id()
        head[HEAD_CALL_ID] = call_id
    return call_id


def retrying_of(scope: Any) -> Head | None:
    """The head of the innermost retrying call still running in ``scope`` (a head, or None)."""
    while type(scope) is list:
        if scope[HEAD_PIPELINE].has_retry and scope[HEAD_STATE] is not FINISHED:
            return scope
        scope = scope[HEAD_PARENT]
    return None
