"""The per-call scope: what ``current()`` reads and what the nesting guard checks."""

from __future__ import annotations

import os
from collections.abc import Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["SCOPE", "CallContext", "ReplayScope", "current", "new_call_id"]


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

# Holds the innermost retryx call of this thread or task: the call's *head* list
# made by the pipeline (see ``_pipeline``), or a ``ReplayScope``. Asyncio tasks
# and ``asyncio.to_thread`` copy the context, so they inherit it.
SCOPE: ContextVar[Any] = ContextVar("retryx_scope", default=None)


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
    while type(scope) is list and scope[6]:
        # The call has ended (this is a task, callback or thread that outlived it):
        # the innermost call still running around it, if any (scope[1] is the parent).
        scope = scope[1]
    if type(scope) is not list:  # None, or a ReplayScope waiting for its call
        return None
    context: CallContext = scope[0].context(scope)  # a call's head: [runner, ...]
    return context
