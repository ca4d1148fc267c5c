"""The one clock every retryx wait and time read goes through.

``testing.fake_time()`` swaps the three functions below for a fake clock's, so
retry waits, deadlines and breaker recovery timeouts are driven by the test.
The hot path reads ``_clock.monotonic`` as a module attribute, so a swap is
seen at once without any per-call indirection.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

__all__ = ["async_sleep", "monotonic", "now", "rng", "sleep"]

monotonic: Callable[[], float] = time.monotonic
"""Seconds on a monotonic clock; deadlines, elapsed times and breaker timeouts."""

now: Callable[[], float] = time.time
"""Wall-clock epoch seconds; only used to read HTTP-date Retry-After hints."""

sleep: Callable[[float], None] = time.sleep
"""Blocking wait used by the sync driver; never called with a zero delay."""


async def _real_async_sleep(delay: float) -> None:
    import asyncio  # imported lazily: ``import retryx`` must not pull asyncio in

    await asyncio.sleep(delay)


async_sleep: Callable[[float], Awaitable[None]] = _real_async_sleep
"""Awaitable wait used by the async driver."""

rng = random.Random()
"""The one random source (jitter, random failover order, fault injection)."""


zero_wait: Callable[[float], object] | None = None
"""Called with each zero wait instead of sleeping, when set: a fake clock records
them. ``None`` with the real clock, where a zero wait is nothing at all."""
