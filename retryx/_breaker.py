"""``CircuitBreaker``: stop calling a dependency that keeps failing, probe it later."""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import _bus, _clock, _guard, events
from ._classify import Classifier, classify, to_classifier
from ._errors import MAX_INT, CircuitOpenError, ConfigError, shown, to_float
from ._store import STORE_LOCAL, BreakerSnapshot, BreakerStore, CountingWindow, Phase, check_store

__all__ = ["SETTINGS", "CircuitBreaker", "State", "breakers"]

if TYPE_CHECKING:  # typing_extensions is for type checkers only: no import cost
    from typing_extensions import ParamSpec

    P = ParamSpec("P")
R = TypeVar("R")

State = Literal["closed", "open", "half_open"]

_CLOSED = _guard.CLOSED
_OPEN = _guard.OPEN  # opened by failures: half-open once recovery_timeout has passed
_HALF_OPEN = _guard.HALF_OPEN
_FORCED = _guard.FORCED  # opened by hand: stays open until close() / reset()
_NAMES: dict[int, State] = {_CLOSED: "closed", _OPEN: "open", _HALF_OPEN: "half_open"}
_NAMES[_FORCED] = "open"
_PHASES: dict[int, Phase] = {_CLOSED: "closed", _OPEN: "open", _HALF_OPEN: "half_open"}
_PHASES[_FORCED] = "forced"
_CODES = {phase: code for code, phase in _PHASES.items()}

# Tokens handed out by _acquire: None for a call admitted while closed (the hot
# path allocates nothing), else the generation of the half-open phase it probes.
Token = int | None

# The admission tokens of the ``with breaker:`` blocks open in this context, each with
# its breaker: blocks of different breakers may exit out of order (generators read in
# turn), and each exit must book its own breaker's token.
_cm_tokens: ContextVar[tuple[tuple[CircuitBreaker, Token], ...]] = ContextVar(
    "retryx_breaker_cm", default=()
)


def _int(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an int >= {minimum}, got {value!r}")
    if value > MAX_INT:
        raise ConfigError(f"{owner}.{name} must be <= 2**63-1, got {shown(value)}")
    return value


# Every live breaker, by creation number (``breakers()``): weak, so a breaker goes
# when its last user does; creation order is kept for breakers of the same name.
_live: weakref.WeakValueDictionary[int, CircuitBreaker] = weakref.WeakValueDictionary()
_live_numbers = itertools.count()
_live_lock = threading.Lock()


def breakers() -> list[CircuitBreaker]:
    """Every live ``CircuitBreaker`` of this process, sorted by name.

    All of them: those made by hand, by ``@circuit_breaker`` (bare or with settings),
    the process-wide ones of ``@circuit_breaker("name")``, and failover's endpoint
    breakers. Held weakly: a breaker nobody uses any more is not listed. Breakers with
    the same name (and no shared store) are distinct and all listed, oldest first.
    """
    with _live_lock:
        found = list(_live.values())
    return sorted(found, key=lambda breaker: breaker.name)


def _detached(exc: BaseException) -> BaseException:
    """A copy of ``exc`` without its traceback, cause and context: what a breaker keeps.

    A breaker lives as long as the process; keeping the failed call's exception would
    keep its traceback, so every frame and local of that call (see tests/test_leaks.py).
    The copy has the same type, ``args`` and attributes (a shallow copy of its
    ``__dict__``); ``__init__`` is not run again. A type that cannot be copied so
    gives a plain ``Exception`` with the original's text.
    """
    kind = type(exc)
    try:
        twin = kind.__new__(kind, *exc.args)
        twin.args = exc.args
        vars(twin).update(vars(exc))
        if hasattr(exc, "__notes__"):  # a list: not shared with the original
            twin.__notes__ = list(exc.__notes__)
    except Exception:
        try:
            text = f"{kind.__qualname__}: {exc}"
        except Exception:
            text = kind.__qualname__
        return Exception(text)
    return twin


# The breaker's settings, in one place: copy(), a configure() reload (which replaces
# them and keeps the state) and @circuit_breaker(**settings)'s check all read it.
SETTINGS = (
    "failure_threshold",
    "failure_rate",
    "window",
    "minimum_calls",
    "recovery_timeout",
    "half_open_max_calls",
    "success_threshold",
    "counts",
)


class CircuitBreaker:
    """A circuit breaker, shared by every call that goes through it.

    Opens after ``failure_threshold`` consecutive counted failures or, with
    ``failure_rate`` set instead, when the failure ratio over the last ``window``
    calls reaches it with at least ``minimum_calls`` calls seen. While open it
    rejects calls with ``CircuitOpenError``; after ``recovery_timeout`` seconds
    it is half-open and admits ``half_open_max_calls`` concurrent trial calls;
    ``success_threshold`` successes close it, one failure re-opens it. Only
    faults that ``counts`` calls transient count as failures.

    Use it as a decorator (``@breaker``), through ``@circuit_breaker(breaker)``,
    or as a (async) context manager.

    Raises:
        ConfigError: naming the bad setting.
    """

    __slots__ = (
        "__weakref__",
        "_failures",
        "_generation",
        "_last_failure",
        "_lock",
        "_opened_at",
        "_opened_wall",
        "_state",
        "_successes",
        "_trials",
        "_window",
        "counts",
        "failure_rate",
        "failure_threshold",
        "half_open_max_calls",
        "minimum_calls",
        "name",
        "recovery_timeout",
        "store",
        "success_threshold",
        "window",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window: int = 20,
        minimum_calls: int = 10,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        counts: Any = classify,
        store: BreakerStore | None = None,
    ) -> None:
        owner = "CircuitBreaker"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{owner}.name must be a non-empty str, got {name!r}")
        self.name = name
        self.failure_threshold = _int(owner, "failure_threshold", failure_threshold, 1)
        if failure_rate is not None:
            if (
                isinstance(failure_rate, bool)
                or not isinstance(failure_rate, int | float)
                or not 0 < failure_rate <= 1
            ):
                raise ConfigError(f"{owner}.failure_rate must be in (0, 1], got {failure_rate!r}")
            failure_rate = float(failure_rate)
        self.failure_rate = failure_rate
        self.window = _int(owner, "window", window, 1)
        self.minimum_calls = _int(owner, "minimum_calls", minimum_calls, 1)
        if failure_rate is not None and self.window < self.minimum_calls:
            raise ConfigError(
                f"{owner}.window ({window}) must be >= minimum_calls ({minimum_calls}) "
                "when failure_rate is set"
            )
        if (
            isinstance(recovery_timeout, bool)
            or not isinstance(recovery_timeout, int | float)
            or not (
                recovery_timeout >= 0
                and math.isfinite(to_float(f"{owner}.recovery_timeout", recovery_timeout))
            )
        ):
            raise ConfigError(
                f"{owner}.recovery_timeout must be >= 0 seconds, got {recovery_timeout!r}"
            )
        self.recovery_timeout = float(recovery_timeout)
        self.half_open_max_calls = _int(owner, "half_open_max_calls", half_open_max_calls, 1)
        self.success_threshold = _int(owner, "success_threshold", success_threshold, 1)
        self.counts: Classifier = to_classifier(counts, field=f"{owner}.counts")
        if store is not None:
            check_store(store, BreakerStore, f"{owner}.store")
        self.store: BreakerStore | None = store
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._opened_at = 0.0
        self._opened_wall: float | None = None  # wall clock of the last opening
        self._last_failure: BaseException | None = None  # detached (see _detached)
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._generation = 0
        self._window: deque[bool] | None = None
        if failure_rate is not None:
            # Shared through a store: the window also counts the successes to report.
            shared = store is not None
            self._window = CountingWindow(self.window) if shared else deque(maxlen=self.window)
        if self.store is not None:
            self.store.attach_breaker(self)
        with _live_lock:
            _live[next(_live_numbers)] = self

    # --- public surface -----------------------------------------------------------

    @property
    def state(self) -> State:
        """``"closed"``, ``"open"`` or ``"half_open"``, derived from the clock."""
        state = self._state
        if state == _OPEN and _clock.monotonic() >= self._opened_at + self.recovery_timeout:
            return "half_open"
        return _NAMES[state]

    @property
    def retry_after(self) -> float:
        """Seconds until a trial call is let through (0 when closed or half-open)."""
        state = self._state
        if state == _FORCED:
            return math.inf
        if state == _OPEN:
            return max(0.0, self._opened_at + self.recovery_timeout - _clock.monotonic())
        return 0.0

    @property
    def failure_count(self) -> int:
        """The counted failures: the current run of consecutive ones or, with
        ``failure_rate``, those in the window. Cleared by every state change."""
        window = self._window
        if window is not None:
            return list(window).count(True)  # list() copies in one C call (no race)
        return self._failures

    @property
    def last_failure(self) -> BaseException | None:
        """The last failure it counted (a fault ``counts`` calls transient), or ``None``.

        A copy of that exception, with its type, ``args`` and attributes but without
        its traceback, cause and context: the breaker outlives the call, and keeping
        the exception itself would keep every frame (and local) of the failed call
        alive. Kept across state changes; ``reset()`` clears it.
        """
        return self._last_failure

    @property
    def opened_at(self) -> float | None:
        """When it last opened, wall-clock epoch seconds (``time.time()``), or ``None``
        if it never did. Kept once it closes again; ``reset()`` clears it."""
        return self._opened_wall

    def open(self) -> None:
        """Open the breaker by hand; it stays open until ``close()`` or ``reset()``."""
        if self.store is not None and self.store._breaker_set(self, "open"):
            return
        with self._lock:
            change = self._move(_FORCED)
        self._announce(change)

    def close(self) -> None:
        """Close the breaker by hand and clear its counts."""
        if self.store is not None and self.store._breaker_set(self, "closed"):
            return
        with self._lock:
            change = self._move(_CLOSED)
        self._announce(change)

    def half_open(self) -> None:
        """Move to half-open by hand: the next ``half_open_max_calls`` calls are trials;
        ``success_threshold`` successes close it, a failure opens it again."""
        if self.store is not None and self.store._breaker_set(self, "half_open"):
            return
        with self._lock:
            change = self._move(_HALF_OPEN)
        self._announce(change)

    def reset(self) -> None:
        """Back to a fresh closed breaker: state closed, counts, ``last_failure`` and
        ``opened_at`` cleared."""
        self.close()
        self._last_failure = None
        self._opened_wall = None

    def copy(self, name: str) -> CircuitBreaker:
        """A new breaker with the same settings (and store) under another name."""
        settings = {slot: getattr(self, slot) for slot in SETTINGS}
        return CircuitBreaker(name, store=self.store, **settings)

    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...
    @overload
    def __call__(self, func: Any) -> Any: ...
    def __call__(self, func: Any) -> Any:
        """Decorate ``func`` so every call goes through this breaker."""
        from ._decorators import circuit_breaker

        return circuit_breaker(self)(func)

    def __enter__(self) -> CircuitBreaker:
        token = self._acquire()
        _cm_tokens.set((*_cm_tokens.get(), (self, token)))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        stack = _cm_tokens.get()
        token: Token = None
        if stack and stack[-1][0] is self:  # blocks that nest: the last one entered
            token = stack[-1][1]
            _cm_tokens.set(stack[:-1])
        else:
            for index in range(len(stack) - 2, -1, -1):  # this breaker's innermost block
                if stack[index][0] is self:
                    token = stack[index][1]
                    _cm_tokens.set(stack[:index] + stack[index + 1 :])
                    break
        if exc is None:
            self._on_success(token)
        elif isinstance(exc, Exception) and not isinstance(exc, CircuitOpenError):
            self._on_failure(token, exc)
        else:
            # Cancelled, interrupted, or an inner breaker refusing: no verdict on
            # this breaker's dependency (as in the decorator's guard).
            self._release(token)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.name!r} state={self.state} failures={self._failures} "
            f"threshold={self.failure_threshold}>"
        )

    def _take_settings(self, fresh: CircuitBreaker) -> None:
        """Take ``fresh``'s settings, keeping the state (``configure()`` reloaded).

        All at once under the lock, so no locked step sees half of them: a window
        without a failure rate, or the reverse.
        """
        with self._lock:
            for slot in SETTINGS:
                setattr(self, slot, getattr(fresh, slot))
            if (self._window is None) != (fresh._window is None) or (
                self._window is not None and self._window.maxlen != self.window
            ):
                self._window = fresh._window

    # --- the protocol the pipeline drives ---------------------------------------------

    def _acquire(self) -> Token:
        """Admit a call or raise ``CircuitOpenError``; the token goes back on exit."""
        if self._state == _CLOSED:
            return None  # hot path: no lock, no allocation
        try:
            return self._admit()
        except CircuitOpenError:
            if _bus._subscribers:
                self._tell("rejected")
            raise

    def _admit(self) -> Token:
        """``_acquire`` past its closed-state check (which a concurrent change may undo)."""
        if self.store is not None:
            # Shared state: the store decides (a trial slot is claimed in Redis).
            shared: Token = self.store._breaker_acquire(self)
            if shared != STORE_LOCAL:
                return shared
        change = None
        with self._lock:
            state = self._state
            if state == _CLOSED:
                return None
            self._refuse_while_open()
            if state == _OPEN:  # and its recovery time has passed: half-open now
                change = self._move(_HALF_OPEN)
            if self._trials >= self.half_open_max_calls:
                error = CircuitOpenError(self.name, 0.0)
            else:
                self._trials += 1
                error = None
            token = self._generation
        self._announce(change)
        if error is not None:
            raise error
        return token

    def _refuse_while_open(self) -> None:
        """Raise ``CircuitOpenError`` while the state refuses calls: opened by hand, or
        open with recovery time left (the in-process and the Redis admission share it).
        """
        state = self._state
        if state == _FORCED:
            raise CircuitOpenError(self.name, math.inf)
        if state == _OPEN:
            wait = self._opened_at + self.recovery_timeout - _clock.monotonic()
            if wait > 0:
                raise CircuitOpenError(self.name, wait)

    def _on_success(self, token: Token, outcome: str = "success") -> None:
        """Book a call that returned (``outcome``: the ``BreakerCall`` to tell)."""
        if token is None:
            self._closed_success(outcome)
            return
        if _bus._subscribers:
            self._tell(outcome)
        if self.store is not None and self.store._breaker_success(self, token):
            return
        change = None
        with self._lock:
            if token != self._generation or self._state != _HALF_OPEN:
                return  # a stale trial from before a reset or re-open
            self._trials -= 1
            self._successes += 1
            if self._successes >= self.success_threshold:
                change = self._move(_CLOSED)
        self._announce(change)

    def _on_failure(self, token: Token, exc: BaseException, transient: bool | None = None) -> None:
        """Book a failed call; ``transient``: the ``counts`` verdict when the caller
        has it already (judged once for several breakers, see ``Failover.counted``)."""
        if transient is None:
            try:
                transient = self.counts(exc).transient
            except BaseException:
                # The classifier raised, or its answer is no Fault: no verdict, but the
                # trial slot goes back, or the breaker would stay half-open for good.
                self._release(token)
                raise
        if not transient:
            # The dependency answered: a permanent fault is a success.
            self._on_success(token, "ignored")
            return
        self._last_failure = _detached(exc)  # (first: a subscriber told below may read it)
        if _bus._subscribers:
            self._tell("failure")
        if self.store is not None and self.store._breaker_failure(self, token):
            return  # reported at once; the store updated the local view from Redis
        change = None
        with self._lock:
            if token is None:
                if self._state != _CLOSED:
                    return  # the call was admitted before the breaker opened
                if self._window is not None:
                    self._window.append(True)
                    calls = len(self._window)
                    assert self.failure_rate is not None
                    if (
                        calls >= self.minimum_calls
                        and sum(self._window) / calls >= self.failure_rate
                    ):
                        change = self._move(_OPEN)
                else:
                    self._failures += 1
                    if self._failures >= self.failure_threshold:
                        change = self._move(_OPEN)
            elif token == self._generation and self._state == _HALF_OPEN:
                change = self._move(_OPEN)
        self._announce(change)

    def _release(self, token: Token) -> None:
        """Give a trial slot back without a verdict (the call was cancelled)."""
        if token is None:
            return
        if self.store is not None and self.store._breaker_release(self, token):
            return
        with self._lock:
            if token == self._generation and self._state == _HALF_OPEN:
                self._trials -= 1

    if TYPE_CHECKING:  # generated below the class (_CALL_TEMPLATE), from _guard's closed path

        def _call(self, fn: Callable[..., Any], args: Any, kwargs: Any, recorder: Any) -> Any:
            """Run ``fn`` through the breaker (the pipeline's sync guard)."""

        async def _call_async(
            self, fn: Callable[..., Any], args: Any, kwargs: Any, recorder: Any
        ) -> Any:
            """``_call`` for coroutine functions."""

        def _call_with(
            self,
            inner: CircuitBreaker,
            fn: Callable[..., Any],
            args: Any,
            kwargs: Any,
            recorder: Any,
        ) -> Any:
            """``self._call(inner._call, ...)``, in one frame while both are closed."""

        async def _call_with_async(
            self,
            inner: CircuitBreaker,
            fn: Callable[..., Any],
            args: Any,
            kwargs: Any,
            recorder: Any,
        ) -> Any:
            """``_call_with`` for coroutine functions."""

    def _closed_success(self, outcome: str = "success") -> None:
        """``_on_success(None)``: a call admitted while closed returned."""
        if _bus._subscribers:
            self._tell(outcome)
        window = self._window
        if window is not None:
            window.append(False)  # deque.append is atomic under the GIL
        elif self._failures:
            # Unlocked on purpose: a success ends a run of consecutive failures;
            # racing with a concurrent failure can only under-count that run.
            self._failures = 0

    # --- transitions -------------------------------------------------------------------

    def _move(self, new: int) -> tuple[str, str] | None:
        """Change state (lock held); returns (old, new) names when it changed."""
        old_name = _NAMES[self._state]
        self._generation += 1
        self._trials = 0
        self._successes = 0
        self._failures = 0
        if self._window is not None:
            self._window.clear()
        if new in (_OPEN, _FORCED):
            self._opened_at = _clock.monotonic()
            self._opened_wall = _clock.now()
        self._state = new
        new_name = _NAMES[new]
        if old_name == new_name:
            return None
        return (old_name, new_name)

    def _tell(self, outcome: str) -> None:
        """Emit ``BreakerCall`` (callers check ``_bus._subscribers`` first: no record
        is made while nobody listens)."""
        _bus.emit(events.BreakerCall(self.name, outcome))

    def _announce(self, change: tuple[str, str] | None) -> None:
        """Log and emit a state change, outside the lock."""
        if change is None:
            return
        old, new = change
        # The contract's record.retryx keys only: the new state is in the level and message.
        extra = {"retryx": {"breaker": self.name}}
        if new == "open":
            _bus.logger.warning("circuit breaker %s opened (was %s)", self.name, old, extra=extra)
        else:
            _bus.logger.info("circuit breaker %s is %s (was %s)", self.name, new, old, extra=extra)
        if _bus._subscribers:
            _bus.emit(events.CircuitStateChanged(self.name, old, new))

    # --- the store's side: what a store reads and hands back (``_store.SharedBreaker``) --

    def _shared_view(self) -> BreakerSnapshot:
        """The state now, as one snapshot taken under the lock (what a store shares)."""
        with self._lock:
            window = self._window
            return BreakerSnapshot(
                state=_PHASES[self._state],
                generation=self._generation,
                opened_age=_clock.monotonic() - self._opened_at,
                failures=self._failures,
                successes=self._successes,
                calls=() if window is None else tuple(window),  # one C call: no race
            )

    def _adopt_shared(self, shared: BreakerSnapshot) -> tuple[str, str] | None:
        """Take ``shared`` (the store's state) as this breaker's own; the change to
        announce with ``_announce``, outside the store's locks."""
        state = _CODES[shared.state]
        with self._lock:
            old = self._state
            self._state = state
            self._generation = shared.generation
            # The store reports the age of the opening (Redis: its own clock); anchoring
            # it on the local clock lets ``state``/``retry_after`` derive half-open here.
            self._opened_at = _clock.monotonic() - shared.opened_age
            if state in (_OPEN, _FORCED):  # (the shared opening is only meaningful then)
                self._opened_wall = _clock.now() - shared.opened_age
            self._failures = shared.failures
            self._successes = shared.successes
            self._trials = 0  # slots are counted by the store; this counts local fallbacks
            window = self._window
            if window is not None:
                window.clear()
                window.extend(shared.calls)  # (extend: not counted as successes to report)
        old_name, new_name = _NAMES[old], _NAMES[state]
        return None if old_name == new_name else (old_name, new_name)

    def _assume(self, state: Literal["closed", "forced"]) -> tuple[str, str] | None:
        """Move to ``state`` unless already there (a store that cannot reach the shared
        state falls back to it); the change to announce with ``_announce``."""
        new = _CODES[state]
        with self._lock:
            return None if self._state == new else self._move(new)

    def _take_successes(self) -> int:
        """The closed-state successes appended to a shared window since the last take
        (0 without one: a store reports a run of failures ended, not each success)."""
        window = self._window
        if not isinstance(window, CountingWindow):
            return 0
        with self._lock:
            return window.take()

    def _give_back_successes(self, count: int) -> None:
        """Count again ``count`` successes taken for a report that failed."""
        window = self._window
        if count and isinstance(window, CountingWindow):
            with self._lock:
                window.give_back(count)


CircuitBreaker.__module__ = "retryx"

# The breaker's call methods, sync and async from the same lines. While closed they run
# _guard's closed path; else a token is taken (a trial slot when half-open) and given
# back with the verdict. A CircuitOpenError raised by ``fn`` (an inner breaker
# refusing) is no verdict on this breaker's dependency: the slot goes back unjudged.
_CALL_TEMPLATE = """\
{A}def _call(self, fn, args, kwargs, recorder):
    if {CLOSED_ONE}:
{PATH_ONE}
        return result
    try:
        token = self._acquire()
    except circuit_open:
        recorder.rejected()
        raise
    try:
        result = {W}fn(*args, **kwargs)
    except circuit_open:
        self._release(token)
        raise
    except error as exc:
        self._on_failure(token, exc)
        raise
    except base_error:
        self._release(token)
        raise
    self._on_success(token)
    return result


{A}def _call_with(self, inner, fn, args, kwargs, recorder):
    if {CLOSED_TWO}:
{PATH_TWO}
        return result
    return {W}self.{CALL}(inner.{CALL}, (fn, args, kwargs, recorder), {{}}, recorder)
"""


def _generate_calls() -> None:
    for is_async in (False, True):
        w = "await " if is_async else ""
        one = _guard.closed_path([("self", False)], call=f"{w}fn(*args, **kwargs)", indent=8)
        two = _guard.closed_path(
            [("self", False), ("inner", False)], call=f"{w}fn(*args, **kwargs)", indent=8
        )
        source = _CALL_TEMPLATE.format(
            A="async " if is_async else "",
            W=w,
            CALL="_call_async" if is_async else "_call",
            CLOSED_ONE=one[0],
            PATH_ONE=one[1],
            CLOSED_TWO=two[0],
            PATH_TWO=two[1],
        )
        flavour = "async" if is_async else "sync"
        namespace = {**_guard.names(), "base_error": BaseException}
        made = _guard.compile_source(source, f"<retryx breaker calls, {flavour}>", namespace)
        suffix = "_async" if is_async else ""
        for name in ("_call", "_call_with"):
            method = made[name]
            method.__qualname__ = f"CircuitBreaker.{name}{suffix}"
            method.__name__ = name + suffix
            setattr(CircuitBreaker, name + suffix, method)


_generate_calls()
