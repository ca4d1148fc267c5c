"""The contract between a shared object (a breaker, a budget) and its store.

A store (``retryx.redis.RedisStore``) keeps the state of a ``CircuitBreaker`` or a
``RetryBudget`` outside the process. Each side calls the other only through the
methods named here: the breaker and the budget call their ``BreakerStore`` /
``BudgetStore``; the store calls back a ``SharedBreaker`` / ``SharedBudget`` and
trades a breaker's state as a ``BreakerSnapshot`` value. This module imports
neither side, so neither imports the other.
"""

from __future__ import annotations

import inspect
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from ._errors import ConfigError

__all__ = [
    "STORE_LOCAL",
    "BreakerSnapshot",
    "BreakerStore",
    "BudgetStore",
    "Change",
    "CountingWindow",
    "Phase",
    "SharedBreaker",
    "SharedBudget",
    "check_store",
]

# What a store's ``_breaker_acquire`` returns when it cannot decide (Redis unreachable
# under on_error="local", or the store closed): the in-process state decides instead.
STORE_LOCAL = -1

# A breaker's state as stores share it: "forced" is open by hand (until closed by hand).
Phase = Literal["closed", "open", "half_open", "forced"]

# A state change to announce, as (old, new) public state names; None when none.
Change = tuple[str, str] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSnapshot:
    """A breaker's state as a store reads it from the breaker or hands it back.

    ``opened_age`` is the seconds since it last opened (only meaningful while not
    closed), ``successes`` the half-open successes so far, ``calls`` the failure-rate
    window, oldest first (``True``: a failed call; empty without ``failure_rate``).
    """

    state: Phase
    generation: int
    opened_age: float
    failures: int
    successes: int
    calls: tuple[bool, ...] = ()


class CountingWindow(deque[bool]):
    """A shared breaker's failure-rate window, which also counts the successes to report.

    The breaker's closed-state success path appends ``False`` without a lock; the
    count uses ``itertools.count``, whose ``next`` is atomic, so none is lost.
    ``extend`` (adopting the shared window) bypasses ``append``: it counts nothing.
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
        """The successes appended since the last take (the caller holds a lock)."""
        # next() returns the number of earlier next() calls: appends plus our reads.
        total = next(self._appended) - self._reads
        self._reads += 1
        taken, self._taken = total - self._taken, total
        return taken

    def give_back(self, count: int) -> None:
        """Count ``count`` taken successes again (their report failed)."""
        self._taken -= count


class SharedBreaker(Protocol):
    """What a store uses of a ``CircuitBreaker``: its name, settings and these methods."""

    @property
    def name(self) -> str: ...
    @property
    def failure_threshold(self) -> int: ...
    @property
    def failure_rate(self) -> float | None: ...
    @property
    def window(self) -> int: ...
    @property
    def minimum_calls(self) -> int: ...
    @property
    def recovery_timeout(self) -> float: ...
    @property
    def half_open_max_calls(self) -> int: ...
    @property
    def success_threshold(self) -> int: ...

    def _shared_view(self) -> BreakerSnapshot:
        """The breaker's state now, as one consistent snapshot."""

    def _adopt_shared(self, shared: BreakerSnapshot) -> Change:
        """Take ``shared`` as the breaker's state; the change for ``_announce``."""

    def _assume(self, state: Literal["closed", "forced"]) -> Change:
        """Move to ``state`` unless already there; the change for ``_announce``."""

    def _announce(self, change: Change) -> None:
        """Log and emit a state change (call it outside the store's locks)."""

    def _refuse_while_open(self) -> None:
        """Raise ``CircuitOpenError`` while the breaker's own state refuses calls."""

    def _take_successes(self) -> int:
        """The closed-state successes (window only) to report since the last take."""

    def _give_back_successes(self, count: int) -> None:
        """Take back ``count`` successes whose report failed, to report them again."""


class SharedBudget(Protocol):
    """What a store uses of a ``RetryBudget``: its name, settings and these methods."""

    @property
    def name(self) -> str | None: ...
    @property
    def max_tokens(self) -> float: ...
    @property
    def token_ratio(self) -> float: ...
    @property
    def tokens(self) -> float: ...

    def _take_successes(self) -> int:
        """The successes to report since the last take."""

    def _give_back_successes(self, count: int) -> None:
        """Take back ``count`` successes whose report failed, to report them again."""

    def _adopt_shared(self, shared: float) -> None:
        """Take the shared count, plus the successes made since it was computed."""


class BreakerStore(Protocol):
    """What a ``CircuitBreaker`` calls on its ``store``.

    The booking methods return True when the store handled the call (the breaker's
    state has been updated through ``_adopt_shared``), False to let the breaker's
    in-process state decide.
    """

    def attach_breaker(self, breaker: SharedBreaker) -> None:
        """Share ``breaker`` (called once, by its constructor)."""

    def _breaker_acquire(self, breaker: SharedBreaker) -> int | None:
        """Admit a call on a breaker not closed: its token, or ``STORE_LOCAL``."""

    def _breaker_failure(self, breaker: SharedBreaker, token: int | None) -> bool:
        """Book a counted failure of a call admitted with ``token``."""

    def _breaker_success(self, breaker: SharedBreaker, token: int) -> bool:
        """Book the success of a trial call admitted with ``token``."""

    def _breaker_release(self, breaker: SharedBreaker, token: int) -> bool:
        """Give back a trial slot without a verdict."""

    def _breaker_set(
        self, breaker: SharedBreaker, state: Literal["open", "closed", "half_open"]
    ) -> bool:
        """Open (until closed by hand), close or half-open the breaker by hand."""


class BudgetStore(Protocol):
    """What a ``RetryBudget`` calls on its ``store`` (True: handled, False: go local)."""

    def attach_budget(self, budget: SharedBudget) -> None:
        """Share ``budget`` (called once, by its constructor)."""

    def _budget_failure(self, budget: SharedBudget) -> bool:
        """Take a token from the shared count."""

    def _budget_reset(self, budget: SharedBudget) -> bool:
        """Refill the shared count."""


def check_store(store: object, protocol: type, field: str) -> None:
    """Raise ``ConfigError`` naming ``field`` unless ``store`` has ``protocol``'s methods."""
    lacking = [
        name
        for name, member in vars(protocol).items()
        if inspect.isfunction(member)
        and not name.startswith("__")
        and not callable(getattr(store, name, None))
    ]
    if lacking:
        raise ConfigError(
            f"{field} must be a retryx store (a {protocol.__name__}), got {store!r}, "
            f"which lacks {', '.join(lacking)}"
        )
