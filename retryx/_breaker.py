"""``CircuitBreaker``: stop calling a dependency that keeps failing, probe it later."""

from __future__ import annotations

import math
import sys
import threading
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _breaker_registry, _clock, _guard
from ._breaker_settings import SETTINGS, count, rate, seconds
from ._breaker_state import _CLOSED, _FORCED, _HALF_OPEN, _NAMES, _OPEN, BreakerState, State, Token
from ._classifiers import to_classifier
from ._classify import Classifier, classify
from ._errors import CircuitOpenError, ConfigError

__all__ = ["SETTINGS", "CircuitBreaker", "State"]

if TYPE_CHECKING:  # typing_extensions is for type checkers only: no import cost
    from typing_extensions import ParamSpec

    from ._store import BreakerStore

    P = ParamSpec("P")
R = TypeVar("R")

# The admission tokens of the ``with breaker:`` blocks open in this context, each with
# its breaker and the id of the frame running the block: blocks may exit out of order
# (generators read in turn), and each exit must book its own block's token.
_cm_tokens: ContextVar[tuple[tuple[CircuitBreaker, int, Token], ...]] = ContextVar(
    "retryx_breaker_cm", default=()
)


class CircuitBreaker(BreakerState):
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

    __slots__ = ()

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
        self.failure_threshold = count(owner, "failure_threshold", failure_threshold)
        self.failure_rate = rate(owner, failure_rate)
        self.window = count(owner, "window", window)
        self.minimum_calls = count(owner, "minimum_calls", minimum_calls)
        if failure_rate is not None and self.window < self.minimum_calls:
            raise ConfigError(
                f"{owner}.window ({window}) must be >= minimum_calls ({minimum_calls}) "
                "when failure_rate is set"
            )
        self.recovery_timeout = seconds(owner, "recovery_timeout", recovery_timeout)
        self.half_open_max_calls = count(owner, "half_open_max_calls", half_open_max_calls)
        self.success_threshold = count(owner, "success_threshold", success_threshold)
        self.counts: Classifier = to_classifier(counts, field=f"{owner}.counts")
        if store is not None:
            from ._store import BreakerStore, check_store  # (not loaded without a store)

            check_store(store, BreakerStore, f"{owner}.store")
        self.store: BreakerStore | None = store
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._opened_at = 0.0
        self._opened_wall: float | None = None  # wall clock of the last opening
        self._last_failure: BaseException | None = None  # detached (see _errors.detached)
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._generation = 0
        self._window: deque[bool] | None = None
        if failure_rate is not None:
            # Shared through a store: the window also counts the successes to report.
            shared = store is not None
            self._window = deque(maxlen=self.window)
            if shared:
                from ._store import CountingWindow

                self._window = CountingWindow(self.window)
        if self.store is not None:
            self.store.attach_breaker(self)
        _breaker_registry.register(self)

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
        self._enter(id(sys._getframe(1)))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._exit(id(sys._getframe(1)), exc)

    async def __aenter__(self) -> CircuitBreaker:
        self._enter(id(sys._getframe(1)))  # (the frame awaiting this one)
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._exit(id(sys._getframe(1)), exc)

    def _enter(self, frame: int) -> None:
        """Admit a ``with`` block run by ``frame`` (an id); its token waits for the exit."""
        token = self._acquire()
        _cm_tokens.set((*_cm_tokens.get(), (self, frame, token)))

    def _exit(self, frame: int, exc: BaseException | None) -> None:
        """Book the end of the block of this breaker that ``frame`` runs.

        Blocks of one frame nest, so its innermost one is leaving. Blocks of several
        frames in one context (generators read in turn) may leave in any order: the
        frame tells them apart. A block left from another frame than it was entered
        from (``__exit__`` called by hand) is this breaker's innermost one.
        """
        stack = _cm_tokens.get()
        found = None
        for index in range(len(stack) - 1, -1, -1):
            breaker, entered_from, _ = stack[index]
            if breaker is self:
                if entered_from == frame:
                    found = index
                    break
                if found is None:
                    found = index  # the innermost, should no block match the frame
        token: Token = None
        if found is not None:
            token = stack[found][2]
            _cm_tokens.set(stack[:found] + stack[found + 1 :])
        if exc is None:
            self._on_success(token)
        elif isinstance(exc, Exception) and not isinstance(exc, CircuitOpenError):
            self._on_failure(token, exc)
        else:
            # Cancelled, interrupted, or an inner breaker refusing: no verdict on
            # this breaker's dependency (as in the decorator's guard).
            self._release(token)

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


CircuitBreaker.__module__ = "retryx"

# Generated on first use (a compile each: not paid by ``import retryx``).
_guard.generated_lazily(
    CircuitBreaker,
    ("_call", "_call_async", "_call_with", "_call_with_async"),
    _guard.generate_breaker_calls,
)
