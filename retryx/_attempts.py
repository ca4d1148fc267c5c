"""Retry blocks: ``for attempt in retryx.attempts(...): with attempt: ...``.

The same engine as the decorators: a block is a call of a private pipeline (a
``Pipeline`` with a retry layer only), its attempts judged by ``RetryState`` (the policy's
classifier, deadline, hints, budget, the nested guard, notes, logs, events, stats).
Only the loop is the block's own: where a decorated function calls its target,
the iterator hands out an ``Attempt`` and the ``with`` block runs in its place.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _clock
from ._context import FINISHED, HEAD_STATE, SCOPE
from ._errors import ConfigError
from ._pipeline import Pipeline
from ._policy import Policy
from ._retry_state import GIVE_UP, RetryState
from ._stats import block_recorder
from ._switches import BYPASS

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._policy import PolicyFields

__all__ = ["Attempt", "Attempts", "attempts"]

# (name, id(policy)) -> (policy, its pipeline), so a block in a loop is set up once.
_pipelines: dict[tuple[str, int], tuple[Policy | str, Pipeline]] = {}
_lock = threading.Lock()
_MAX_NAMES = 1024  # names made at run time must not grow these without bound


class Attempt:
    """One attempt of a retry block: use it as ``with attempt:``.

    A fault raised in the block (an ``Exception``) is kept for the engine, which
    retries or re-raises it from the ``for`` statement; anything else
    (``KeyboardInterrupt``, cancellation) ends the block at once. A block that
    ends without a fault (``return`` and ``break`` included) is the call's success.
    """

    __slots__ = ("_block", "_exc", "_exited", "number")

    def __init__(self, block: _Block, number: int) -> None:
        self.number = number
        """1-based: 1 for the first attempt."""
        self._block = block
        self._exc: Exception | None = None
        self._exited = False

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._exited = True
        if exc is None:
            self._block.succeed()
            return False
        if isinstance(exc, Exception):
            self._exc = exc
            return True  # the engine decides: retry, or re-raise from the loop
        self._block.abort(exc)
        return False

    def __repr__(self) -> str:
        return f"<retryx.Attempt number={self.number}>"


class Attempts:
    """The attempts of one retry block; iterate it (``for``, or ``async for``)."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    @property
    def name(self) -> str:
        """The block's name in logs, events, stats and ``current()``."""
        return self._pipeline.name

    def __iter__(self) -> Iterator[Attempt]:
        return _SyncAttempts(self._pipeline)

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return _AsyncAttempts(self._pipeline)

    def __repr__(self) -> str:
        return f"<retryx.Attempts {self.name!r}>"


class _Iterator:
    """What the sync and the async iteration share; they differ only in how they wait."""

    __slots__ = ("block", "pipeline")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.block: _Block | None = None

    def _wait(self) -> float | None:
        """The wait before the next attempt (``-1.0``: the first, which has none), or
        ``None`` when the block has ended; raises the block's fault on giving up."""
        if self.block is None:
            self.block = _Block(self.pipeline)
            return -1.0
        return self.block.after()

    def _attempt(self) -> Attempt:
        assert self.block is not None
        return self.block.next_attempt()


class _SyncAttempts(_Iterator):
    __slots__ = ()

    def __iter__(self) -> _SyncAttempts:
        return self

    def __next__(self) -> Attempt:
        delay = self._wait()
        if delay is None:
            raise StopIteration
        if delay > 0:
            self.pipeline.sleep_sync(delay)
        elif delay == 0 and _clock.zero_wait is not None:
            _clock.zero_wait(delay)
        return self._attempt()


class _AsyncAttempts(_Iterator):
    __slots__ = ()

    def __aiter__(self) -> _AsyncAttempts:
        return self

    async def __anext__(self) -> Attempt:
        delay = self._wait()
        if delay is None:
            raise StopAsyncIteration
        if delay > 0:
            await _clock.async_sleep(delay)
        elif delay == 0 and _clock.zero_wait is not None:
            _clock.zero_wait(delay)
        return self._attempt()


class _Block:
    """One run of a block: what a driver does around its calls, minus the call."""

    __slots__ = ("attempt", "call", "done", "head", "pipeline", "policy", "token")

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        parent = SCOPE.get()
        self.head: list[Any] = [pipeline, parent, _clock.monotonic(), None, None, None]
        self.token: Token[Any] | None = SCOPE.set(self.head)
        self.call: RetryState | None = None
        self.attempt: Attempt | None = None
        self.done = False
        self.policy: Policy | None = None
        try:
            self.policy = pipeline.start(self.head, parent)  # the nested guard
        except BaseException:
            self.end()
            raise

    def next_attempt(self) -> Attempt:
        call = self.call
        if call is not None and not call.next_attempt():  # the deadline passed in the wait
            exc = call.last_exc
            assert exc is not None
            try:
                self.fail(exc)
            finally:
                exc = call = None  # the traceback holds this frame: no cycle through it
        attempt = self.attempt = Attempt(self, 1 if call is None else call.attempt)
        return attempt

    def after(self) -> float | None:
        """After an attempt: the wait before the next one, or ``None`` when the block
        has ended; raises the block's fault when the engine gives up."""
        if self.done:
            return None
        attempt = self.attempt
        assert attempt is not None
        exc = attempt._exc
        attempt._exc = None
        if exc is None:  # the loop body went on without ``with attempt:``: no fault
            self.succeed()
            return None
        policy = self.policy
        if policy is BYPASS:  # retryx switched off: the block ran once, plainly
            self.done = True
            self.end()
            try:
                raise exc
            finally:
                exc = None  # no cycle through this frame
        assert policy is not None
        call = self.call
        if call is None:
            call = self.call = RetryState(self.head, policy)
        delay = call.on_error(exc)
        if delay is GIVE_UP:
            try:
                self.fail(exc)
            finally:
                exc = call = None  # the traceback holds this frame: no cycle through it
        assert delay is not None
        return delay

    def succeed(self) -> None:
        if self.policy is BYPASS:
            self.done = True
            self.end()
        elif not self.done:
            self.done = True
            self.pipeline.succeeded(self.call, self.policy, self.head)
            self.end()

    def abort(self, exc: BaseException) -> None:
        """Cancelled or interrupted: booked as a failed call, never retried."""
        if not self.done:
            self.done = True
            self.pipeline.failed(self.head, exc)
            self.end()

    def fail(self, exc: Exception) -> None:
        self.done = True
        self.pipeline.failed(self.head, exc)
        self.end()
        call = self.call
        if call is not None:  # the iterator (in the traceback) holds this block
            call.last_exc = None
        try:
            raise exc
        finally:
            exc = None  # type: ignore[assignment]  # no cycle through this frame

    def end(self) -> None:
        token = self.token
        if token is not None:
            self.token = None
            try:
                SCOPE.reset(token)
            except ValueError:  # ended in another context than it started in
                pass
            self.head[HEAD_STATE] = FINISHED


def attempts(policy: Policy | str | None = None, /, **fields: Unpack[PolicyFields]) -> Attempts:
    """Retry a block: ``for attempt in retryx.attempts(attempts=3): with attempt: ...``.

    Takes what ``@retry`` takes: a ``Policy``, a named policy (``"payments"``), or
    policy fields as keywords. ``async for`` waits with the running event loop
    (asyncio or trio); plain ``for`` sleeps. ``name=`` (allowed beside a policy too)
    labels logs, events and ``retryx.stats(name)`` (default: the policy's name, else
    the calling function's qualified name).

    Raises:
        ConfigError: for bad fields, or ``attempt_timeout`` (a block cannot be
            interrupted from outside: use ``asyncio.timeout`` inside it).
    """
    given: dict[str, Any] = dict(fields)
    name: str | None = given.pop("name", None)  # labels the block, with or without a policy
    if isinstance(policy, Policy | str) and given:
        raise ConfigError("retryx.attempts: pass a policy or policy fields, not both")
    if policy is None:
        policy = _policy_of(given)
    elif not isinstance(policy, Policy | str):
        raise ConfigError(
            f"retryx.attempts: policy must be a Policy or a policy name, got {policy!r}"
        )
    if isinstance(policy, Policy) and policy.attempt_timeout is not None:
        raise ConfigError(
            "retryx.attempts: attempt_timeout cannot bound a block; "
            "use asyncio.timeout (or trio.fail_after) inside it"
        )
    if name is None:
        if isinstance(policy, Policy) and policy.name:
            name = policy.name
        else:
            name = sys._getframe(1).f_code.co_qualname
    # Keyed by the policy's identity: hashing a Policy (its strategies included) costs
    # more than the rest of a block's happy path. The entry keeps the policy alive,
    # so its id is not reused while the entry exists.
    entry = _pipelines.get((name, id(policy)))
    if entry is None or entry[0] is not policy:
        return Attempts(_make_pipeline(name, policy))
    return Attempts(entry[1])


_DEFAULT = Policy()
# Field sets seen in blocks -> their Policy: a block in a function body is made per
# call, and its policy must be the same object each time (pipelines are keyed by it).
_from_fields: dict[tuple[tuple[str, Any], ...], Policy] = {}


def _policy_of(fields: dict[str, Any]) -> Policy:
    if not fields:
        return _DEFAULT
    try:
        key = tuple(sorted(fields.items()))
        found = _from_fields.get(key)
    except TypeError:  # an unhashable value (a list): made per call
        return Policy(**fields)
    if found is None:
        found = Policy(**fields)
        with _lock:
            if len(_from_fields) >= _MAX_NAMES:
                _from_fields.pop(next(iter(_from_fields)))
            _from_fields[key] = found
    return found


def _make_pipeline(name: str, policy: Policy | str) -> Pipeline:
    # Checked as a sync pipeline: a block cannot await a predicate (async ones are refused).
    pipeline = Pipeline({"retry": policy}, name, is_async=False)
    with _lock:
        recorder = block_recorder(name, _MAX_NAMES)
        pipeline.recorder = recorder
        pipeline.pending = recorder.pending
        if len(_pipelines) >= _MAX_NAMES:
            _pipelines.pop(next(iter(_pipelines)))
        _pipelines[(name, id(policy))] = (policy, pipeline)
    return pipeline
