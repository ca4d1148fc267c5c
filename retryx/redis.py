"""Share circuit breakers and retry budgets across processes and machines through Redis.

``RedisStore(client_or_url)`` is passed as ``store=`` to ``CircuitBreaker`` and
``RetryBudget``. Their state lives in Redis, updated by atomic Lua scripts that
read the server clock; each process keeps a local view that a background thread
refreshes every ``sync_interval`` seconds, so calls on the happy path never wait
for Redis. Failures are reported at once (one round trip, which also returns the
new shared state); successes are batched into the next sync. See
``docs/distributed.md`` for the consistency guarantees.

Needs the optional ``redis`` package (``pip install 'retryx[redis]'``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from types import TracebackType
from typing import Any, Literal

try:
    import redis  # noqa: F401  # (the message below, rather than a bare ImportError)
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError("retryx.redis needs the redis package: pip install 'retryx[redis]'") from _exc

from . import _faults_rpc
from ._errors import ConfigError, RetryxError, to_float
from ._redis_breakers import SharedBreakers
from ._redis_budgets import SharedBudgets
from ._redis_client import ERRORS, sync_client, where
from ._redis_link import Entry, FallbackState, Link, OnError
from ._redis_scripts import BREAKER, BUDGET
from ._store import Change, SharedBreaker, SharedBudget

__all__ = ["RedisStore"]

logger = logging.getLogger("retryx")


class RedisStore:
    """Shared state for breakers and budgets in Redis, with a local view per process.

    Pass it as ``store=`` to ``CircuitBreaker`` and ``RetryBudget`` (a shared budget
    needs a ``name``). Objects with the same name and prefix share state in every
    process that uses the same Redis; they should use the same settings.

    Args:
        client_or_url: a ``redis.Redis``, a ``redis.asyncio.Redis`` (a private sync
            client with the same connection settings is used) or a URL such as
            ``"redis://127.0.0.1:6379/0"``.
        prefix: prepended to every key.
        on_error: ``"local"`` keeps working on the in-process state while Redis is
            unreachable (one warning per outage, resynchronised when it answers);
            ``"raise"`` raises ``RetryxError`` from every operation that needs Redis.
        sync_interval: seconds between two refreshes of the local view; other
            processes see a change within about this delay.
        fallback_state: the state breakers assume when Redis cannot tell. ``None``
            (the default): their in-process state. ``"closed"``: during an outage
            (under ``on_error="local"``) every call is admitted and no failure is
            counted; ``"open"``: every call is rejected (``CircuitOpenError`` with
            ``retry_after=sync_interval``, when Redis is asked again); either way
            the shared state is adopted again when Redis answers. And a key Redis
            lost (restarted empty, expired) is re-created in that state (``"open"``:
            opened then, half-open after ``recovery_timeout``) instead of the
            local one. The key is created when a breaker is attached, so only a
            breaker first attached during an outage cannot tell a lost key from a
            new one.

    Raises:
        ConfigError: naming the bad argument.
    """

    def __init__(
        self,
        client_or_url: Any,
        *,
        prefix: str = "retryx:",
        on_error: OnError = "local",
        sync_interval: float = 0.5,
        fallback_state: FallbackState = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise ConfigError(f"RedisStore.prefix must be a str, got {prefix!r}")
        if on_error not in ("local", "raise"):
            raise ConfigError(f"RedisStore.on_error must be 'local' or 'raise', got {on_error!r}")
        if fallback_state not in (None, "closed", "open"):
            raise ConfigError(
                "RedisStore.fallback_state must be None, 'closed' or 'open', "
                f"got {fallback_state!r}"
            )
        if (
            isinstance(sync_interval, bool)
            or not isinstance(sync_interval, int | float)
            or not (
                sync_interval > 0
                and math.isfinite(to_float("RedisStore.sync_interval", sync_interval))
            )
        ):
            raise ConfigError(
                f"RedisStore.sync_interval must be > 0 seconds, got {sync_interval!r}"
            )
        self.prefix = prefix
        self.on_error: OnError = on_error
        self.sync_interval = float(sync_interval)
        self.fallback_state: FallbackState = fallback_state
        self._client, self._owns_client = sync_client(client_or_url)
        self._where = where(self._client)
        if not self._owns_client:  # the user's client: its own retries would run under ours
            _faults_rpc.warn_client_retries(self._client, f"RedisStore({self._where})")
        self._link = Link(self._client, self._where, on_error, fallback_state)
        self._breakers = SharedBreakers(
            self._link, self._client.register_script(BREAKER), prefix, self.sync_interval
        )
        self._budgets = SharedBudgets(
            self._link, self._client.register_script(BUDGET), f"{prefix}budget:"
        )
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._crash_logged = False
        _STORES.add(self)

    # --- public surface -------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False during an outage (from the first failed round trip to the next success)."""
        return not self._link.down

    def sync(self) -> None:
        """Refresh every local view now: one pipelined round trip for all objects.

        Flushes batched successes, adopts the shared state and, when a key was lost
        (Redis restarted empty), seeds it from the local state. The background
        thread calls it every ``sync_interval``.

        Raises:
            RetryxError: with ``on_error="raise"``, when Redis is unreachable.
        """
        if self._link.closed:
            return
        breakers = self._breakers.entries()
        budgets = self._budgets.entries()
        with self._sync_lock:  # one sync at a time: it is the only holder of many entry locks
            changes = self._sync(breakers, budgets)
        if changes is None:
            return
        self._link.recovered()
        for breaker, change in changes:
            breaker._announce(change)

    def _sync(
        self,
        breakers: list[tuple[SharedBreaker, Entry]],
        budgets: list[tuple[SharedBudget, Entry]],
    ) -> list[tuple[SharedBreaker, Change]] | None:
        """The sync round trip; the state changes to announce, or None when it failed."""
        held: list[Entry] = []
        link = self._link
        try:
            pipe = self._client.pipeline(transaction=False)
            for _, entry in [*breakers, *budgets]:
                entry.lock.acquire()  # waits for a round trip in flight, to apply in order
                held.append(entry)
            until = link.valid_until()
            b_items = self._breakers.queue(breakers, pipe, until)
            g_items = self._budgets.queue(budgets, pipe, until)
            if not b_items and not g_items:
                return []
            try:
                with link.round_trip() as sent:
                    rows = pipe.execute()
            except ERRORS as exc:
                self._breakers.give_back(b_items)
                self._budgets.give_back(g_items)
                link.failed(exc)
                return None
            link.calibrate(sent, int(rows[0][-1] if b_items else rows[0][1]))
            changes = self._breakers.apply(b_items, rows[: len(b_items)])
            self._budgets.apply(g_items, rows[len(b_items) :])
        finally:
            for entry in held:
                entry.lock.release()
        return changes

    def close(self) -> None:
        """Stop the sync thread, flush batched successes, close a client it created.

        Objects using a closed store carry on with their in-process state.
        """
        if self._link.closed:
            return
        thread = self._thread
        self._thread = None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        try:
            self.sync()  # last flush of the batched successes
        except RetryxError:
            pass
        self._link.close()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        status = "closed" if self._link.closed else ("down" if self._link.down else "up")
        return (
            f"<RedisStore {self._where} prefix={self.prefix!r} on_error={self.on_error!r} "
            f"sync_interval={self.sync_interval:g} {status}>"
        )

    # --- registration (``_store.BreakerStore`` / ``BudgetStore``) -----------------------

    def attach_breaker(self, breaker: SharedBreaker) -> None:
        """Share ``breaker`` through this store (called by ``CircuitBreaker(store=...)``)."""
        try:
            self._breakers.attach(breaker)  # reads the fleet's state: first use sees it
        except RetryxError:
            pass  # on_error="raise": logged; the operations that need Redis will raise
        self._start()

    def attach_budget(self, budget: SharedBudget) -> None:
        """Share ``budget`` through this store (called by ``RetryBudget(store=...)``)."""
        try:
            self._budgets.attach(budget)  # the first use sees the fleet's count
        except RetryxError:
            pass
        self._start()

    # --- the breaker protocol (``_store.BreakerStore``) -----------------------------------

    def _breaker_acquire(self, breaker: SharedBreaker) -> int | None:
        """Admit a call on a breaker whose local view is not closed (a token, or
        ``STORE_LOCAL`` to let the in-process state decide)."""
        return self._breakers.acquire(breaker)

    def _breaker_failure(self, breaker: SharedBreaker, token: int | None) -> bool:
        """Report a counted failure at once, with the successes batched before it."""
        return self._breakers.failure(breaker, token)

    def _breaker_success(self, breaker: SharedBreaker, token: int) -> bool:
        """Report a trial call's success (closed-state successes are batched)."""
        return self._breakers.op(breaker, "ok", token) is not None

    def _breaker_release(self, breaker: SharedBreaker, token: int) -> bool:
        """Give a trial slot back without a verdict."""
        return self._breakers.op(breaker, "rel", token) is not None

    def _breaker_set(
        self, breaker: SharedBreaker, state: Literal["open", "closed", "half_open"]
    ) -> bool:
        """Open (until closed by hand), close or half-open the breaker for every process."""
        return self._breakers.by_hand(breaker, state)

    # --- the budget protocol (``_store.BudgetStore``) -------------------------------------

    def _budget_failure(self, budget: SharedBudget) -> bool:
        """Take a token in Redis at once; the budget adopts the shared count."""
        return self._budgets.op(budget, "fail")

    def _budget_reset(self, budget: SharedBudget) -> bool:
        """Refill the shared budget for every process."""
        return self._budgets.op(budget, "reset")

    # --- the sync thread ----------------------------------------------------------------

    def _start(self) -> None:
        """Start the sync thread (once), and make it sync now for a new object."""
        with self._lock:
            if self._link.closed:
                return
            if self._thread is None or not self._thread.is_alive():
                self._wake = threading.Event()
                self._thread = threading.Thread(
                    target=_sync_loop,
                    args=(weakref.ref(self), self._wake, self.sync_interval),
                    name="retryx-redis-sync",
                    daemon=True,
                )
                self._thread.start()
        self._wake.set()

    def _after_fork(self) -> None:
        """In a forked child: fresh locks and a new sync thread (threads do not survive fork)."""
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._link.after_fork()
        self._breakers.after_fork()
        self._budgets.after_fork()
        self._thread = None
        if not self._link.closed and (self._breakers.entries() or self._budgets.entries()):
            self._start()

    def _syncing(self) -> bool:
        """True while the calling thread is this store's sync thread (not replaced, open)."""
        return not self._link.closed and self._thread is threading.current_thread()

    def _log_crash(self) -> None:
        if not self._crash_logged:
            self._crash_logged = True
            logger.error("Redis store sync failed unexpectedly", exc_info=True)


def _sync_loop(ref: weakref.ref[RedisStore], wake: threading.Event, interval: float) -> None:
    """The sync thread: holds the store weakly, so a forgotten store ends it."""
    while True:
        wake.wait(interval)
        wake.clear()
        store = ref()
        if store is None or not store._syncing():
            return
        try:
            store.sync()
        except RetryxError:
            pass  # on_error="raise": already logged once for this outage
        except Exception:  # a bug must not kill the thread: log it once
            store._log_crash()
        del store


_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

RedisStore.__module__ = "retryx.redis"
