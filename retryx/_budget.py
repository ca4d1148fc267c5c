"""``RetryBudget``: gRPC-style retry throttling, a token bucket shared by policies."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, to_float

if TYPE_CHECKING:  # _store is imported once a budget has a store
    from ._store import BudgetStore

__all__ = ["RetryBudget"]


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"RetryBudget.{field} must be a finite number, got {value!r}")
    number = to_float(f"RetryBudget.{field}", value)
    if not math.isfinite(number):
        raise ConfigError(f"RetryBudget.{field} must be a finite number, got {value!r}")
    return number


class RetryBudget:
    """A token bucket that stops retries when too many attempts fail.

    It starts full with ``max_tokens``; every failed attempt classified transient
    takes 1 token, every successful call gives back ``token_ratio`` (never above
    ``max_tokens``); a retry is allowed only while tokens stay above
    ``max_tokens / 2``. One budget may be shared by many policies; with
    ``store=`` (and a ``name``, the shared key) by many processes.

    With a store, ``tokens`` and ``allows_retry()`` read a local view of the
    shared bucket: a failure is reported at once (one round trip that also
    returns the shared count), successes are batched and flushed with the
    store's next sync.

    Raises:
        ConfigError: for a bad setting, or a store without a name.
    """

    __slots__ = (
        "__weakref__",
        "_lock",
        "_pending",
        "_tokens",
        "max_tokens",
        "name",
        "store",
        "token_ratio",
    )

    def __init__(
        self,
        max_tokens: float = 100,
        token_ratio: float = 0.1,
        name: str | None = None,
        store: BudgetStore | None = None,
    ) -> None:
        max_tokens = _number("max_tokens", max_tokens)
        if not max_tokens > 0:
            raise ConfigError(f"RetryBudget.max_tokens must be > 0, got {max_tokens!r}")
        token_ratio = _number("token_ratio", token_ratio)
        if not 0 < token_ratio <= max_tokens:
            raise ConfigError(
                f"RetryBudget.token_ratio must be > 0 and <= max_tokens, got {token_ratio!r}"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"RetryBudget.name must be a non-empty str, got {name!r}")
        if store is not None:
            if name is None:
                raise ConfigError(
                    "RetryBudget.name is required with a store (it is the shared key)"
                )
            from ._store import BudgetStore, check_store  # (not loaded without a store)

            check_store(store, BudgetStore, "RetryBudget.store")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self.name = name
        self.store = store
        self._tokens = max_tokens
        self._pending = 0  # successes not yet reported to the store
        self._lock = threading.Lock()
        if store is not None:
            store.attach_budget(self)

    @property
    def tokens(self) -> float:
        """The tokens left now (with a store: as last seen, plus this process's successes)."""
        return self._tokens

    def record_failure(self) -> None:
        """A failed attempt classified transient: take 1 token (never below 0)."""
        # A store that handled it has already set _tokens from the shared count; it
        # declines while Redis is unreachable, and the local view carries on.
        if self.store is not None and self.store._budget_failure(self):
            return
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def record_success(self) -> None:
        """A successful call: give back ``token_ratio`` tokens (never above the max)."""
        if self.store is not None:
            with self._lock:
                self._pending += 1  # flushed with the store's next sync or failure report
                self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)
            return
        if self._tokens < self.max_tokens:  # a full bucket (the common case) takes no lock
            with self._lock:
                self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def allows_retry(self) -> bool:
        """True while the tokens are above half of ``max_tokens``."""
        return self._tokens > self.max_tokens / 2

    def reset(self) -> None:
        """Refill to ``max_tokens`` (with a store: for every process sharing it)."""
        if self.store is not None and self.store._budget_reset(self):
            return
        with self._lock:
            self._tokens = self.max_tokens
            self._pending = 0

    # --- the store's side: batched successes, the shared count (``_store.SharedBudget``) --

    def _take_successes(self) -> int:
        """Hand the batched successes to the store (it gives them back if Redis fails)."""
        with self._lock:
            pending, self._pending = self._pending, 0
        return pending

    def _give_back_successes(self, count: int) -> None:
        """Count again ``count`` successes taken for a report that failed."""
        if count:
            with self._lock:
                self._pending += count

    def _adopt_shared(self, shared: float) -> None:
        """Take the shared count, plus the successes made since it was computed."""
        with self._lock:
            self._tokens = min(self.max_tokens, shared + self._pending * self.token_ratio)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<RetryBudget{label} tokens={self._tokens:g}/{self.max_tokens:g}>"


RetryBudget.__module__ = "retryx"
