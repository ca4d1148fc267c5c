"""``RetryBudget``: gRPC-style retry throttling, a token bucket shared by policies."""

from __future__ import annotations

import threading
from typing import Any

from ._errors import ConfigError

__all__ = ["RetryBudget"]


class RetryBudget:
    """A token bucket that stops retries when too many attempts fail.

    It starts full with ``max_tokens``; every failed attempt classified transient
    takes 1 token, every successful call gives back ``token_ratio`` (never above
    ``max_tokens``); a retry is allowed only while tokens stay above
    ``max_tokens / 2``. One budget may be shared by many policies; with
    ``store=`` (and a ``name``) by many processes.

    Raises:
        ConfigError: for a bad setting, or a store without a name.
    """

    __slots__ = ("_lock", "_tokens", "max_tokens", "name", "store", "token_ratio")

    def __init__(
        self,
        max_tokens: float = 100,
        token_ratio: float = 0.1,
        name: str | None = None,
        store: Any = None,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int | float):
            raise ConfigError(f"RetryBudget.max_tokens must be a number, got {max_tokens!r}")
        if not max_tokens > 0:
            raise ConfigError(f"RetryBudget.max_tokens must be > 0, got {max_tokens!r}")
        if isinstance(token_ratio, bool) or not isinstance(token_ratio, int | float):
            raise ConfigError(f"RetryBudget.token_ratio must be a number, got {token_ratio!r}")
        if not 0 < token_ratio <= max_tokens:
            raise ConfigError(f"RetryBudget.token_ratio must be > 0, got {token_ratio!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"RetryBudget.name must be a non-empty str, got {name!r}")
        if store is not None and name is None:
            raise ConfigError("RetryBudget.name is required with a store (the shared key)")
        self.max_tokens = float(max_tokens)
        self.token_ratio = float(token_ratio)
        self.name = name
        self.store = store
        self._tokens = self.max_tokens
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        """The tokens left now."""
        if self.store is not None:
            return float(self.store.budget_tokens(self))
        return self._tokens

    def record_failure(self) -> None:
        """A failed attempt classified transient: take 1 token (never below 0)."""
        if self.store is not None:
            self.store.budget_failure(self)
            return
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def record_success(self) -> None:
        """A successful call: give back ``token_ratio`` tokens (never above the max)."""
        if self.store is not None:
            self.store.budget_success(self)
            return
        tokens = self._tokens
        if tokens < self.max_tokens:
            with self._lock:
                self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def allows_retry(self) -> bool:
        """True while the tokens are above half of ``max_tokens``."""
        return self.tokens > self.max_tokens / 2

    def reset(self) -> None:
        """Refill to ``max_tokens``."""
        if self.store is not None:
            self.store.budget_reset(self)
            return
        with self._lock:
            self._tokens = self.max_tokens

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<RetryBudget{label} tokens={self.tokens:g}/{self.max_tokens:g}>"


RetryBudget.__module__ = "retryx"
