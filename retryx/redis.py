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

import contextlib
import inspect
import itertools
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Literal

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError("retryx.redis needs the redis package: pip install 'retryx[redis]'") from _exc

from . import _clock, _faults_rpc
from ._breaker import _CLOSED, _FORCED, _HALF_OPEN, _NAMES, _OPEN, STORE_LOCAL, CircuitBreaker
from ._budget import RetryBudget
from ._errors import CircuitOpenError, ConfigError, RetryxError
from ._redis_scripts import BREAKER, BUDGET

__all__ = ["RedisStore"]

logger = logging.getLogger("retryx")

OnError = Literal["local", "raise"]
FallbackState = Literal["closed", "open"] | None

# Keys outlive any breaker timing by far; every script touching a key renews it, and
# every live process touches its keys on each sync, so only abandoned keys expire.
_TTL_MIN_MS = 86_400_000
# A trial slot whose holder never reports (its process died) is reclaimed after
# max(recovery_timeout, this): long enough for any sane trial call to finish.
_LEASE_MIN_MS = 10_000
# Socket timeouts of the clients retryx builds itself: an unreachable Redis must
# not block a caller for long (a URL's own options win).
_TIMEOUT = 1.0
# While one round trip has hung for this long (Redis frozen: it accepts, never answers),
# other threads stop queueing behind it and use their local state at once, so an outage
# costs a process one socket timeout, not one per waiting thread (capped at half the
# client's socket timeout). Far above a healthy round trip, even on a loaded host: a
# thread that goes local keeps its report from the fleet.
_STALL = 0.5

_ERRORS = (redis.RedisError, OSError)
_CODES = {"c": _CLOSED, "o": _OPEN, "h": _HALF_OPEN, "f": _FORCED}
_LETTERS = {code: letter for letter, code in _CODES.items()}
# Connection settings carried over from an asyncio client to the private sync one.
_PORTABLE = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "credential_provider",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "client_name",
    }
)


class _SharedWindow(deque[bool]):
    """A shared breaker's local window, which also counts the successes to report.

    The breaker's closed-state success path appends ``False`` without a lock; the
    count uses ``itertools.count``, whose ``next`` is atomic, so none is lost.
    """

    __slots__ = ("_appended", "_reads", "_taken")

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self._appended = itertools.count()
        self._reads = 0
        self._taken = 0

    def append(self, failed: bool, /) -> None:
        deque.append(self, failed)
        if not failed:
            next(self._appended)

    def take(self) -> int:
        """The successes appended since the last take (the caller holds the view lock)."""
        # next() returns the number of earlier next() calls: appends plus our reads.
        total = next(self._appended) - self._reads
        self._reads += 1
        taken, self._taken = total - self._taken, total
        return taken

    def give_back(self, count: int) -> None:
        self._taken -= count

    def load(self, calls: str) -> None:
        """Replace the contents with the shared window (``"1"`` a failure), uncounted."""
        self.clear()
        self.extend(c == "1" for c in calls)


class _View:
    """Per shared object: its key, and a lock serialising its round trips in order."""

    __slots__ = ("key", "lock", "seen_failures")

    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.seen_failures = 0  # the shared consecutive count as last seen


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _sync_client(client_or_url: Any) -> tuple[redis.Redis, bool]:
    """The synchronous client the store uses, and whether the store owns it."""
    no_retry = Retry(NoBackoff(), 0)  # the sync loop is the retry: fail fast
    if isinstance(client_or_url, str):
        try:
            client = redis.Redis.from_url(
                client_or_url,
                socket_timeout=_TIMEOUT,
                socket_connect_timeout=_TIMEOUT,
                retry=no_retry,
            )
        except ValueError as exc:
            raise ConfigError(
                f"RedisStore.client_or_url is not a Redis URL: {client_or_url!r} ({exc})"
            ) from exc
        return client, True
    if isinstance(client_or_url, redis.Redis):
        return client_or_url, False
    if isinstance(client_or_url, redis.asyncio.Redis):
        # The breaker protocol is synchronous (the drivers call it inline), and the
        # sync thread cannot use a client bound to an event loop: connect a private
        # sync client with the same connection settings.
        pool = client_or_url.connection_pool
        kwargs = {
            key: value
            for key, value in pool.connection_kwargs.items()
            if key in _PORTABLE or key.startswith("ssl_")
        }
        kwargs["socket_timeout"] = kwargs.get("socket_timeout") or _TIMEOUT
        kwargs["socket_connect_timeout"] = kwargs.get("socket_connect_timeout") or _TIMEOUT
        name = pool.connection_class.__name__
        connection_class = getattr(redis.connection, name, redis.connection.Connection)
        # Drop what the sync class does not take (the asyncio one has a few more).
        accepted: set[str] = set()
        for klass in connection_class.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                accepted.update(inspect.signature(init).parameters)
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
        sync_pool = redis.ConnectionPool(
            connection_class=connection_class, retry=no_retry, **kwargs
        )
        return redis.Redis(connection_pool=sync_pool), True
    raise ConfigError(
        "RedisStore.client_or_url must be a redis.Redis, a redis.asyncio.Redis or a "
        f"redis:// URL, got {client_or_url!r}"
    )


def _where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


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
            or not (sync_interval > 0 and math.isfinite(sync_interval))
        ):
            raise ConfigError(
                f"RedisStore.sync_interval must be > 0 seconds, got {sync_interval!r}"
            )
        self.prefix = prefix
        self.on_error: OnError = on_error
        self.sync_interval = float(sync_interval)
        self.fallback_state: FallbackState = fallback_state
        self._client, self._owns_client = _sync_client(client_or_url)
        self._where = _where(self._client)
        if not self._owns_client:  # the user's client: its own retries would run under ours
            _faults_rpc.warn_client_retries(self._client, f"RedisStore({self._where})")
        self._breaker_script = self._client.register_script(BREAKER)
        self._budget_script = self._client.register_script(BUDGET)
        self._breakers: weakref.WeakKeyDictionary[CircuitBreaker, _View] = (
            weakref.WeakKeyDictionary()
        )
        self._budgets: weakref.WeakKeyDictionary[RetryBudget, _View] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._down = False
        self._closed = False
        self._crash_logged = False
        timeout = self._client.connection_pool.connection_kwargs.get("socket_timeout")
        # How long a request stays worth running on the server (see _valid_until).
        self._timeout_ms: float | None = None if timeout is None else float(timeout) * 1000
        self._stall = _STALL if timeout is None else min(_STALL, float(timeout) / 2)
        # The server clock minus time.monotonic() (ms): an upper bound, off by at most
        # the round trip it was measured on; None until the first answer.
        self._offset_ms: float | None = None
        self._offset_rtt = math.inf
        self._offset_at = 0.0
        self._outages = 0  # failed round trips so far: waiters compare it (see _hold)
        self._last_error: BaseException | None = None
        self._inflight: dict[int, float] = {}  # thread id -> start of its round trip
        _STORES.add(self)

    # --- public surface -------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False during an outage (from the first failed round trip to the next success)."""
        return not self._down

    def sync(self) -> None:
        """Refresh every local view now: one pipelined round trip for all objects.

        Flushes batched successes, adopts the shared state and, when a key was lost
        (Redis restarted empty), seeds it from the local state. The background
        thread calls it every ``sync_interval``.

        Raises:
            RetryxError: with ``on_error="raise"``, when Redis is unreachable.
        """
        if self._closed:
            return
        with self._lock:
            breakers = list(self._breakers.items())
            budgets = list(self._budgets.items())
        with self._sync_lock:  # one sync at a time: it is the only holder of many view locks
            changes = self._sync(breakers, budgets)
        if changes is None:
            return
        self._recovered()
        for breaker, change in changes:
            breaker._announce(change)

    def _sync(
        self,
        breakers: list[tuple[CircuitBreaker, _View]],
        budgets: list[tuple[RetryBudget, _View]],
    ) -> list[tuple[CircuitBreaker, tuple[str, str] | None]] | None:
        """The sync round trip; the state changes to announce, or None when it failed."""
        held: list[_View] = []
        changes: list[tuple[CircuitBreaker, tuple[str, str] | None]] = []
        try:
            pipe = self._client.pipeline(transaction=False)
            b_items: list[tuple[CircuitBreaker, _View, int]] = []
            for _, view in [*breakers, *budgets]:
                view.lock.acquire()  # waits for a round trip in flight, to apply in order
                held.append(view)
            until = self._valid_until()
            for breaker, view in breakers:
                reset, taken = self._batched(breaker, view)
                args = ["sync", until, *self._settings(breaker), reset, taken]
                args += self._seed(breaker)
                self._breaker_script(keys=[view.key], args=args, client=pipe)
                b_items.append((breaker, view, taken))
            g_items: list[tuple[RetryBudget, int]] = []
            for budget, view in budgets:
                taken = budget._take_pending()
                args = self._budget_args("sync", budget, taken, until)
                self._budget_script(keys=[view.key], args=args, client=pipe)
                g_items.append((budget, taken))
            if not b_items and not g_items:
                return changes
            try:
                with self._round_trip() as sent:
                    rows = pipe.execute()
            except _ERRORS as exc:
                for breaker, _, taken in b_items:
                    self._give_back(breaker, taken)
                for budget, taken in g_items:
                    budget._give_back(taken)
                self._failed(exc)
                return None
            self._calibrate(sent, int(rows[0][-1] if b_items else rows[0][1]))
            for (breaker, view, taken), row in zip(b_items, rows, strict=False):
                if int(row[0]) == -1:  # ignored as late: the successes were not counted
                    self._give_back(breaker, taken)
                changes.append((breaker, self._apply(breaker, view, row)))
            for (budget, taken), row in zip(g_items, rows[len(b_items) :], strict=True):
                if int(row[2]):
                    budget._give_back(taken)
                budget._adopt(float(_text(row[0])))
        finally:
            for view in held:
                view.lock.release()
        return changes

    def close(self) -> None:
        """Stop the sync thread, flush batched successes, close a client it created.

        Objects using a closed store carry on with their in-process state.
        """
        if self._closed:
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
        self._closed = True
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
        status = "closed" if self._closed else ("down" if self._down else "up")
        return (
            f"<RedisStore {self._where} prefix={self.prefix!r} on_error={self.on_error!r} "
            f"sync_interval={self.sync_interval:g} {status}>"
        )

    # --- registration -----------------------------------------------------------------

    def attach_breaker(self, breaker: CircuitBreaker) -> None:
        """Share ``breaker`` through this store (called by ``CircuitBreaker(store=...)``)."""
        if breaker.failure_rate is not None:
            window = _SharedWindow(breaker.window)
            window.extend(breaker._window or ())
            breaker._window = window
        with self._lock:
            self._breakers[breaker] = _View(f"{self.prefix}breaker:{breaker.name}")
        # The first use must see the fleet's state, not a pristine "closed" until the
        # next sync: read it now (one round trip; skipped during an outage).
        try:
            self._breaker_op(breaker, "sync", 0, 0, *self._seed(breaker, attaching=True))
        except RetryxError:
            pass  # on_error="raise": logged; the operations that need Redis will raise
        self._start()

    def attach_budget(self, budget: RetryBudget) -> None:
        """Share ``budget`` through this store (called by ``RetryBudget(store=...)``)."""
        with self._lock:
            self._budgets[budget] = _View(f"{self.prefix}budget:{budget.name}")
        try:
            self._budget_op(budget, "sync")  # the first use sees the fleet's count
        except RetryxError:
            pass
        self._start()

    # --- the breaker protocol ---------------------------------------------------------

    def _breaker_acquire(self, breaker: CircuitBreaker) -> int | None:
        """Admit a call on a breaker whose local view is not closed.

        An open view is rejected locally until its recovery time (as last seen in
        Redis); past it, one round trip claims a trial slot atomically, fleet-wide.
        Returns the token, or ``STORE_LOCAL`` to let the in-process state decide.
        """
        if self._local():
            if self._assumed() == "open":
                raise CircuitOpenError(breaker.name, self.sync_interval)
            return STORE_LOCAL
        breaker._refuse_while_open(breaker._state)
        row = self._breaker_op(breaker, "acq")
        if row is None or int(row[0]) == -1:
            return STORE_LOCAL
        code, wait_ms = int(row[0]), int(row[1])
        if code == 0:
            raise CircuitOpenError(breaker.name, math.inf if wait_ms < 0 else wait_ms / 1000)
        return int(row[3]) if code == 2 else None

    def _breaker_failure(self, breaker: CircuitBreaker, token: int | None) -> bool:
        """Report a counted failure at once, with the successes batched before it."""
        if self._assumed() == "closed":
            return True  # assumed closed through the outage: no failure is counted
        return self._breaker_op(breaker, "fail", -1 if token is None else token) is not None

    def _breaker_success(self, breaker: CircuitBreaker, token: int) -> bool:
        """Report a trial call's success (closed-state successes are batched)."""
        return self._breaker_op(breaker, "ok", token) is not None

    def _breaker_release(self, breaker: CircuitBreaker, token: int) -> bool:
        """Give a trial slot back without a verdict."""
        return self._breaker_op(breaker, "rel", token) is not None

    def _breaker_set(
        self, breaker: CircuitBreaker, state: Literal["open", "closed", "half_open"]
    ) -> bool:
        """Open (until closed by hand), close or half-open the breaker for every process."""
        letter = {"open": "f", "closed": "c", "half_open": "h"}[state]
        return self._breaker_op(breaker, "set", letter) is not None

    # --- the budget protocol ----------------------------------------------------------

    def _budget_failure(self, budget: RetryBudget) -> bool:
        """Take a token in Redis at once; the budget adopts the shared count."""
        return self._budget_op(budget, "fail")

    def _budget_reset(self, budget: RetryBudget) -> bool:
        """Refill the shared budget for every process."""
        return self._budget_op(budget, "reset")

    # --- internals ----------------------------------------------------------------------

    def _local(self) -> bool:
        """True when operations must use the in-process state instead of Redis."""
        return self._closed or (self._down and self.on_error == "local")

    def _assumed(self) -> FallbackState:
        """``fallback_state`` while an outage lasts (under ``on_error="local"``), else None."""
        if self._down and not self._closed and self.on_error == "local":
            return self.fallback_state
        return None

    def _assume(self, state: Literal["closed", "open"]) -> None:
        """An outage began: every breaker's local view takes ``state`` until Redis answers
        (its next sync adopts the shared state); opened here, it stays open meanwhile."""
        with self._lock:
            breakers = list(self._breakers.items())
        new = _FORCED if state == "open" else _CLOSED
        for breaker, view in breakers:
            with breaker._lock:
                change = None if breaker._state == new else breaker._move(new)
            # The cleared count is no success that ended the shared run (see _batched).
            view.seen_failures = 0
            breaker._announce(change)

    @staticmethod
    def _settings(breaker: CircuitBreaker) -> list[str | int]:
        recovery_ms = round(breaker.recovery_timeout * 1000)
        lease_ms = max(recovery_ms, _LEASE_MIN_MS)
        rate = breaker.failure_rate
        return [
            breaker.failure_threshold,
            "" if rate is None else repr(rate),
            breaker.window,
            breaker.minimum_calls,
            recovery_ms,
            breaker.half_open_max_calls,
            breaker.success_threshold,
            max(_TTL_MIN_MS, 2 * recovery_ms + lease_ms),
            lease_ms,
        ]

    @staticmethod
    def _batched(breaker: CircuitBreaker, view: _View) -> tuple[int, int]:
        """(reset, successes) to report: the caller holds the view lock.

        With a window, the shared window counts successes. Counting consecutive
        failures, a success only matters when it ended a run: the closed-state
        success path zeroes ``_failures``, which was the shared count when synced.
        """
        window = breaker._window
        if isinstance(window, _SharedWindow):
            return 0, window.take()
        # Only while closed: a view opened locally during an outage also has zero
        # failures (the opening cleared them), yet no success ended the run.
        ended = breaker._state == _CLOSED and breaker._failures == 0 and view.seen_failures > 0
        return (1 if ended else 0), 0

    @staticmethod
    def _give_back(breaker: CircuitBreaker, taken: int) -> None:
        window = breaker._window
        if taken and isinstance(window, _SharedWindow):
            window.give_back(taken)

    def _seed(self, breaker: CircuitBreaker, attaching: bool = False) -> list[str | int]:
        """The local state to write if the key is gone, or an empty seed when pristine.

        With ``fallback_state``: a key gone after the breaker was attached was lost, and
        is written in that state; at attach, the key is written even when pristine, so
        that a loss can be told from a first use.
        """
        fallback = self.fallback_state
        if fallback is not None and not attaching:
            return ["o" if fallback == "open" else "c", breaker._generation + 1, 0, 0, ""]
        state = breaker._state
        window = breaker._window
        # list() copies in one C call: iterating the live deque could race an append.
        calls = "".join("1" if failed else "0" for failed in list(window)) if window else ""
        if state == _CLOSED and breaker._failures == 0 and "1" not in calls:
            return ["c" if fallback else "", breaker._generation, 0, 0, calls if fallback else ""]
        age_ms = 0
        if state != _CLOSED:
            age_ms = max(0, round((_clock.monotonic() - breaker._opened_at) * 1000))
        return [_LETTERS[state], breaker._generation, age_ms, breaker._failures, calls]

    def _breaker_op(self, breaker: CircuitBreaker, op: str, *extra: str | int) -> Any:
        """One script call on ``breaker``'s key; its row, or None to go local."""
        view = self._breakers.get(breaker)
        if view is None or not self._hold(view):
            return None
        try:
            taken = 0
            args: list[str | int] = [op, self._valid_until(), *self._settings(breaker), *extra]
            if op == "fail":
                reset, taken = self._batched(breaker, view)
                args += [reset, taken]
            try:
                with self._round_trip() as sent:
                    row = self._breaker_script(keys=[view.key], args=args)
            except _ERRORS as exc:
                self._give_back(breaker, taken)
                self._failed(exc)
                return None
            self._calibrate(sent, int(row[-1]))
            if int(row[0]) == -1:
                self._give_back(breaker, taken)
            change = self._apply(breaker, view, row)
        finally:
            view.lock.release()
        self._recovered()
        breaker._announce(change)  # outside every lock: subscribers may call back
        return row

    def _apply(self, breaker: CircuitBreaker, view: _View, row: Any) -> tuple[str, str] | None:
        """Adopt a script's answer as the breaker's local view; the state change, if any."""
        state = _CODES[_text(row[2])]
        failures = int(row[5])
        with breaker._lock:
            old = breaker._state
            breaker._state = state
            breaker._generation = int(row[3])
            # Redis reports the age of the opening (server clock); anchoring it on the
            # local clock lets ``state``/``retry_after`` derive half-open locally.
            breaker._opened_at = _clock.monotonic() - int(row[4]) / 1000
            if state in (_OPEN, _FORCED):  # (the shared "at" is only meaningful then)
                breaker._opened_wall = _clock.now() - int(row[4]) / 1000
            breaker._failures = failures
            breaker._successes = int(row[8])
            breaker._trials = 0  # slots are counted in Redis; this counts local fallbacks
            window = breaker._window
            if isinstance(window, _SharedWindow):
                window.load(_text(row[6]))
        view.seen_failures = failures
        old_name, new_name = _NAMES[old], _NAMES[state]
        return None if old_name == new_name else (old_name, new_name)

    def _budget_args(
        self, op: str, budget: RetryBudget, taken: int, until: str | int
    ) -> list[str | int]:
        tokens = budget._tokens
        seed = repr(tokens) if tokens < budget.max_tokens else ""
        ratio = repr(budget.token_ratio)
        return [op, repr(budget.max_tokens), ratio, _TTL_MIN_MS, taken, seed, until]

    def _budget_op(self, budget: RetryBudget, op: str) -> bool:
        view = self._budgets.get(budget)
        if view is None or not self._hold(view):
            return False
        try:
            taken = budget._take_pending()
            args = self._budget_args(op, budget, taken, self._valid_until())
            try:
                with self._round_trip() as sent:
                    row = self._budget_script(keys=[view.key], args=args)
            except _ERRORS as exc:
                budget._give_back(taken)
                self._failed(exc)
                return False
            self._calibrate(sent, int(row[1]))
            if int(row[2]):
                budget._give_back(taken)
            budget._adopt(float(_text(row[0])))
        finally:
            view.lock.release()
        self._recovered()
        return True

    # --- one round trip at a time per object, and no queue behind a hung one -------------

    def _hold(self, view: _View) -> bool:
        """Take ``view.lock`` for a round trip; False (not held) to use the local state.

        Under ``on_error="local"``, a thread does not queue behind a round trip that has
        hung for ``_stall`` seconds (Redis frozen): it goes local at once. In every mode,
        a round trip that failed while this thread waited for the lock stands for it:
        the waiter does not spend a second socket timeout finding the same outage.

        Raises:
            RetryxError: under ``on_error="raise"``, when that round trip failed.
        """
        if self._local():
            return False
        outages = self._outages
        if self.on_error == "local":
            if self._stalled() or not view.lock.acquire(timeout=self._stall):
                return False
        else:
            view.lock.acquire()
        failed_meanwhile = self._outages != outages
        if failed_meanwhile or self._local():
            view.lock.release()
            if failed_meanwhile and self.on_error == "raise" and not self._closed:
                raise RetryxError(
                    f"Redis store at {self._where} is unreachable: {self._last_error}"
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
    def _round_trip(self) -> Iterator[float]:
        """Mark this thread's round trip in flight; yields its start (time.monotonic())."""
        ident = threading.get_ident()
        start = time.monotonic()
        self._inflight[ident] = start
        try:
            yield start
        finally:
            self._inflight.pop(ident, None)

    def _valid_until(self) -> str | int:
        """When a request sent now stops being worth running, on the server clock (ms).

        The caller waits for the answer at most its socket timeout; past that it has
        gone local, so the scripts ignore the request (a frozen Redis that resumes runs
        its queue late). "" (no limit) without a timeout or before the first answer.
        """
        if self._offset_ms is None or self._timeout_ms is None:
            return ""
        return math.ceil(time.monotonic() * 1000 + self._offset_ms + self._timeout_ms)

    def _calibrate(self, sent: float, server_ms: int) -> None:
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

    def _failed(self, exc: BaseException) -> None:
        """Redis did not answer: warn once per outage; raise under ``on_error="raise"``."""
        with self._lock:
            first = not self._down
            self._down = True
            self._outages += 1
            self._last_error = exc
        if first and self.fallback_state is not None and self.on_error == "local":
            self._assume(self.fallback_state)
        if first:
            if self.on_error == "local":
                consequence = "breakers and budgets use their in-process state until it answers"
            else:
                consequence = "operations that need it raise RetryxError"
            logger.warning(
                "Redis store at %s is unreachable (%s: %s); %s",
                self._where,
                type(exc).__name__,
                exc,
                consequence,
            )
        if self.on_error == "raise":
            raise RetryxError(f"Redis store at {self._where} is unreachable: {exc}") from exc

    def _recovered(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.info("Redis store at %s answers again; state resynchronised", self._where)

    def _start(self) -> None:
        """Start the sync thread (once), and make it sync now for a new object."""
        with self._lock:
            if self._closed:
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
        for view in self._views():
            view.lock = threading.Lock()
        self._thread = None
        self._inflight = {}  # the parent's round trips are not this process's
        if not self._closed and (self._breakers or self._budgets):
            self._start()

    def _views(self) -> Iterable[_View]:
        yield from list(self._breakers.values())
        yield from list(self._budgets.values())

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
        if store is None or store._closed or store._thread is not threading.current_thread():
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
