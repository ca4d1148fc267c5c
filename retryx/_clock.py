"""The one clock every retryx wait and time read goes through.

``testing.fake_time()`` swaps the three functions below for a fake clock's, so
retry waits, deadlines and breaker recovery timeouts are driven by the test.
The hot path reads ``_clock.monotonic`` as a module attribute, so a swap is
seen at once without any per-call indirection.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["async_library", "async_sleep", "monotonic", "now", "rng", "sleep", "timeout_scope"]

monotonic: Callable[[], float] = time.monotonic
"""Seconds on a monotonic clock; deadlines, elapsed times and breaker timeouts."""

now: Callable[[], float] = time.time
"""Wall-clock epoch seconds; only used to read HTTP-date Retry-After hints."""

sleep: Callable[[float], None] = time.sleep
"""Blocking wait used by the sync driver; never called with a zero delay."""


def async_library() -> str:
    """``"trio"`` inside a running trio run (anyio's trio backend too), else ``"asyncio"``.

    Detected without importing trio when nobody loaded it (as sniffio does).
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and asyncio._get_running_loop() is not None:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    return "asyncio"


def library_sleep(delay: float) -> Awaitable[None]:
    """The running async library's own ``sleep(delay)``."""
    if async_library() == "trio":
        trio: Any = sys.modules["trio"]
        return trio.sleep(delay)  # type: ignore[no-any-return]
    import asyncio  # imported lazily: ``import retryx`` must not pull asyncio in

    return asyncio.sleep(delay)


def timeout_scope(seconds: float) -> Any:
    """An async context manager raising ``TimeoutError`` after ``seconds``, in the
    running library (``asyncio.timeout`` or trio's ``fail_after``)."""
    if async_library() == "trio":
        return _trio_timeout(seconds)
    import asyncio

    return asyncio.timeout(seconds)


class _trio_timeout:
    """``trio.fail_after`` with the stdlib's ``TimeoutError`` (trio raises TooSlowError)."""

    def __init__(self, seconds: float) -> None:
        trio: Any = sys.modules["trio"]
        self._trio = trio
        self._cm = trio.fail_after(seconds)

    async def __aenter__(self) -> None:
        self._cm.__enter__()

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        try:
            return bool(self._cm.__exit__(kind, exc, tb))
        except self._trio.TooSlowError as timeout:
            raise TimeoutError() from timeout


async def _real_async_sleep(delay: float) -> None:
    await library_sleep(delay)


async_sleep: Callable[[float], Awaitable[None]] = _real_async_sleep
"""Awaitable wait used by the async driver."""

rng = random.Random()
"""The one random source (jitter, random failover order, fault injection)."""


zero_wait: Callable[[float], object] | None = None
"""Called with each zero wait instead of sleeping, when set: a fake clock records
them. ``None`` with the real clock, where a zero wait is nothing at all."""
