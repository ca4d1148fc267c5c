"""The link of a ``retryx.redis.RedisStore`` to Redis: its round trips and outages.

One round trip at a time per shared object (``Entry.lock``, so answers apply in
order), no thread queued behind one that hung, the server clock learnt from the
answers (so a request a frozen Redis runs late is ignored), and an outage noticed
once: one warning, then the ``on_error`` rule.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, Literal, TypeVar

import redis

from ._errors import RetryxError

__all__ = ["Entry", "FallbackState", "Link", "OnError", "Registry"]

logger = logging.getLogger("retryx")

OnError = Literal["local", "raise"]
FallbackState = Literal["closed", "open"] | None

# While one round trip has hung for this long (Redis frozen: it accepts, never answers),
# other threads stop queueing behind it and use their local state at once, so an outage
# costs a process one socket timeout, not one per waiting thread (capped at half the
# client's socket timeout). Far above a healthy round trip, even on a loaded host: a
# thread that goes local keeps its report from the fleet.
_STALL = 0.5


class Entry:
    """Per shared object: its key, and a lock serialising its round trips in order."""

    __slots__ = ("key", "lock", "seen_failures")

    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.seen_failures = 0  # a breaker's shared consecutive count as last seen


T = TypeVar("T")


class Registry(Generic[T]):
    """The objects of one kind a store shares, each with its ``Entry``, held weakly."""

    def __init__(self, link: Link, script: Any, key_prefix: str) -> None:
        self.script = script  # the kind's Lua script, registered on the link's client
        self._link = link
        self._key_prefix = key_prefix
        self._entries: weakref.WeakKeyDictionary[T, Entry] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def entries(self) -> list[tuple[T, Entry]]:
        """Every object shared now, with its entry."""
        with self._lock:
            return list(self._entries.items())

    def _register(self, obj: T, name: str) -> None:
        with self._lock:
            self._entries[obj] = Entry(self._key_prefix + name)

    def _held(self, obj: T) -> Entry | None:
        """``obj``'s entry with its lock held for a round trip, or None to go local."""
        entry = self._entries.get(obj)
        if entry is None or not self._link.hold(entry):
            return None
        return entry

    def after_fork(self) -> None:
        """In a forked child: fresh locks (the parent's threads do not exist here)."""
        self._lock = threading.Lock()
        for _, entry in self.entries():
            entry.lock = threading.Lock()


class Link:
    """Round trips to one Redis, and whether it is reachable (see the module docstring).

    Args:
        client: the synchronous client.
        where: the server, for messages.
        on_error: ``"local"`` or ``"raise"`` (``RedisStore.on_error``).
        fallback_state: ``RedisStore.fallback_state``, handed to the ``watch`` callbacks
            when an outage begins under ``on_error="local"``.
    """

    def __init__(
        self,
        client: redis.Redis,
        where: str,
        on_error: OnError,
        fallback_state: FallbackState,
    ) -> None:
        self.client = client
        self.where = where
        self.on_error: OnError = on_error
        self.fallback_state: FallbackState = fallback_state
        self._watchers: list[Callable[[Literal["closed", "open"]], None]] = []
        self.down = False
        self.closed = False
        self._lock = threading.Lock()
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        # How long a request stays worth running on the server (see valid_until).
        self._timeout_ms: float | None = None if timeout is None else float(timeout) * 1000
        self._stall = _STALL if timeout is None else min(_STALL, float(timeout) / 2)
        # The server clock minus time.monotonic() (ms): an upper bound, off by at most
        # the round trip it was measured on; None until the first answer.
        self._offset_ms: float | None = None
        self._offset_rtt = math.inf
        self._offset_at = 0.0
        self._outages = 0  # failed round trips so far: waiters compare it (see hold)
        self._last_error: BaseException | None = None
        self._inflight: dict[int, float] = {}  # thread id -> start of its round trip

    def local(self) -> bool:
        """True when operations must use the in-process state instead of Redis."""
        return self.closed or (self.down and self.on_error == "local")

    def assumed(self) -> FallbackState:
        """``fallback_state`` while an outage lasts (under ``on_error="local"``), else None."""
        if self.down and not self.closed and self.on_error == "local":
            return self.fallback_state
        return None

    def watch(self, callback: Callable[[Literal["closed", "open"]], None]) -> None:
        """Call ``callback(fallback_state)`` when an outage begins (``on_error="local"``
        and a ``fallback_state`` set), before the warning is logged."""
        self._watchers.append(callback)

    def close(self) -> None:
        """From now on every operation uses the in-process state."""
        self.closed = True

    def hold(self, entry: Entry) -> bool:
        """Take ``entry.lock`` for a round trip; False (not held) to use the local state.

        Under ``on_error="local"``, a thread does not queue behind a round trip that has
        hung for ``_stall`` seconds (Redis frozen): it goes local at once. In every mode,
        a round trip that failed while this thread waited for the lock stands for it:
        the waiter does not spend a second socket timeout finding the same outage.

        Raises:
            RetryxError: under ``on_error="raise"``, when that round trip failed.
        """
        if self.local():
            return False
        outages = self._outages
        if self.on_error == "local":
            if self._stalled() or not entry.lock.acquire(timeout=self._stall):
                return False
        else:
            entry.lock.acquire()
        failed_meanwhile = self._outages != outages
        if failed_meanwhile or self.local():
            entry.lock.release()
            if failed_meanwhile and self.on_error == "raise" and not self.closed:
                raise RetryxError(
                    f"Redis store at {self.where} is unreachable: {self._last_error}"
                ) from self._last_error
            return False
        return True

    def _stalled(self) -> bool:
        """True while some round trip has been waiting for Redis longer than ``_stall``."""
        try:
            starts = list(self._inflight.values())
        except RuntimeError:  # changed while copied (free-threaded builds): ask again later
            return False
        return bool(starts) and time.monotonic() - min(starts) > self._stall

    @contextlib.contextmanager
    def round_trip(self) -> Iterator[float]:
        """Mark this thread's round trip in flight; yields its start (time.monotonic())."""
        ident = threading.get_ident()
        start = time.monotonic()
        self._inflight[ident] = start
        try:
            yield start
        finally:
            self._inflight.pop(ident, None)

    def valid_until(self) -> str | int:
        """When a request sent now stops being worth running, on the server clock (ms).

        The caller waits for the answer at most its socket timeout; past that it has
        gone local, so the scripts ignore the request (a frozen Redis that resumes runs
        its queue late). "" (no limit) without a timeout or before the first answer.
        """
        if self._offset_ms is None or self._timeout_ms is None:
            return ""
        return math.ceil(time.monotonic() * 1000 + self._offset_ms + self._timeout_ms)

    def calibrate(self, sent: float, server_ms: int) -> None:
        """Learn the server clock from an answer to a request sent at ``sent``.

        ``server_ms - sent`` bounds the offset from above (the server read its clock
        after the send), so errors only make the limit more lenient. The sample from
        the quickest round trip is kept; a newer one replaces it after 30 s, in case the
        server's clock was stepped.
        """
        now = time.monotonic()
        rtt = now - sent
        offset = server_ms - sent * 1000
        if (
            self._offset_ms is None
            or offset <= self._offset_ms
            or rtt <= self._offset_rtt
            or now - self._offset_at > 30.0
        ):
            self._offset_ms, self._offset_rtt, self._offset_at = offset, rtt, now

    def failed(self, exc: BaseException) -> None:
        """Redis did not answer: warn once per outage; raise under ``on_error="raise"``."""
        with self._lock:
            first = not self.down
            self.down = True
            self._outages += 1
            self._last_error = exc
        if first and self.fallback_state is not None and self.on_error == "local":
            for callback in self._watchers:
                callback(self.fallback_state)
        if first:
            if self.on_error == "local":
                consequence = "breakers and budgets use their in-process state until it answers"
            else:
                consequence = "operations that need it raise RetryxError"
            logger.warning(
                "Redis store at %s is unreachable (%s: %s); %s",
                self.where,
                type(exc).__name__,
                exc,
                consequence,
            )
        if self.on_error == "raise":
            raise RetryxError(f"Redis store at {self.where} is unreachable: {exc}") from exc

    def recovered(self) -> None:
        """Redis answered: end the outage, if one was on."""
        if self.down:
            with self._lock:
                was_down, self.down = self.down, False
            if was_down:
                logger.info("Redis store at %s answers again; state resynchronised", self.where)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock, and none of the parent's round trips."""
        self._lock = threading.Lock()
        self._inflight = {}
