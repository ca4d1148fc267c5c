"""Worker processes for the Redis tests: each runs commands sent over a pipe.

Spawned (not forked) processes need an importable target, hence this module. A
worker owns one ``RedisStore`` and the breakers and budgets the test asks for, and
answers every command with ``("ok", result)`` or ``("error", repr)``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from typing import Any

import retryx
from retryx import CircuitBreaker, CircuitOpenError, Policy, RetryBudget
from retryx.redis import RedisStore


class _Worker:
    def __init__(self, url: str, sync_interval: float) -> None:
        self.store = RedisStore(url, sync_interval=sync_interval)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.budgets: dict[str, RetryBudget] = {}
        self.tokens: dict[str, int | None] = {}

    def breaker(self, name: str, **settings: Any) -> None:
        self.breakers[name] = CircuitBreaker(name, store=self.store, **settings)

    def budget(self, name: str, max_tokens: float, token_ratio: float) -> None:
        self.budgets[name] = RetryBudget(max_tokens, token_ratio, name=name, store=self.store)

    def call(self, name: str, fail: bool) -> str:
        """One call through ``@circuit_breaker``: "ok", "failed" or "rejected"."""

        @retryx.circuit_breaker(self.breakers[name])
        def work() -> None:
            if fail:
                raise ConnectionError("down")

        try:
            work()
        except CircuitOpenError:
            return "rejected"
        except ConnectionError:
            return "failed"
        return "ok"

    def acquire(self, name: str) -> str:
        """Claim admission without finishing the call: "admitted" or the rejection."""
        try:
            self.tokens[name] = self.breakers[name]._acquire()
        except CircuitOpenError as exc:
            return f"rejected {exc.retry_after:g}"
        return "admitted"

    def succeed(self, name: str) -> None:
        self.breakers[name]._on_success(self.tokens.pop(name))

    def state(self, name: str) -> str:
        return self.breakers[name].state

    def retry_failing(self, name: str, attempts: int) -> tuple[int, str]:
        """A retried call that always fails: (attempts made, the note's give-up reason)."""
        calls = 0

        @retryx.retry(Policy(attempts=attempts, backoff="none", budget=self.budgets[name]))
        def work() -> None:
            nonlocal calls
            calls += 1
            raise ConnectionError("down")

        try:
            work()
        except ConnectionError as exc:
            note = (exc.__notes__ or [""])[-1]
            return calls, note.rsplit("reason: ", 1)[-1].rstrip(")")
        raise AssertionError("the call cannot succeed")

    def succeed_calls(self, name: str, count: int) -> None:
        """``count`` successful retried calls: each gives back ``token_ratio``."""

        @retryx.retry(Policy(attempts=3, backoff="none", budget=self.budgets[name]))
        def work() -> None:
            return None

        for _ in range(count):
            work()

    def budget_tokens(self, name: str) -> float:
        return self.budgets[name].tokens


def serve(conn: multiprocessing.connection.Connection, url: str, sync_interval: float) -> None:
    """The worker's command loop; ends on ``("stop",)`` or when the pipe closes."""
    worker = _Worker(url, sync_interval)
    try:
        while True:
            try:
                command, args, kwargs = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(("ok", None))
                return
            method: Callable[..., Any] = getattr(worker, command)
            try:
                conn.send(("ok", method(*args, **kwargs)))
            except Exception as exc:
                conn.send(("error", repr(exc)))
    finally:
        worker.store.close()
