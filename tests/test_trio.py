"""Async pipelines under trio: waits, attempt timeouts and the fake clock use trio's own."""

from __future__ import annotations

import time

import pytest

import retryx
from retryx import Policy
from retryx.testing import FaultSequence, fake_time

trio = pytest.importorskip("trio")


def test_retry_waits_with_trio_sleep() -> None:
    """A real non-zero wait under trio sleeps through trio (it used to fail: no asyncio loop)."""
    seq = FaultSequence(ConnectionError(), "ok")

    @retryx.retry(attempts=2, backoff=retryx.backoff.fixed(0.02), jitter="none")
    async def call() -> str:
        await trio.sleep(0)
        return seq()

    started = time.monotonic()
    assert "ok" == trio.run(call)
    assert time.monotonic() - started >= 0.02
    assert 2 == seq.calls


def test_fake_clock_works_under_trio() -> None:
    """``fake_time()`` records trio waits without sleeping."""
    seq = FaultSequence(ConnectionError(), TimeoutError(), "ok")

    @retryx.retry(attempts=3, backoff=retryx.backoff.fixed(30.0), jitter="none")
    async def call() -> str:
        return seq()

    with fake_time() as clock:
        assert "ok" == trio.run(call)
    assert [30.0, 30.0] == clock.sleeps


def test_attempt_timeout_under_trio_is_a_timeout_error() -> None:
    """``attempt_timeout`` cuts a hanging attempt with ``TimeoutError``, then retries."""
    calls = 0

    @retryx.retry(Policy(attempts=2, attempt_timeout=0.05, backoff="none"))
    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep(5)
        return "ok"

    started = time.monotonic()
    assert "ok" == trio.run(call)
    assert 2 == calls
    assert time.monotonic() - started < 2


def test_attempt_timeout_gives_up_with_the_timeout_error() -> None:
    """When every attempt hangs, the caller gets ``TimeoutError`` with retryx's note."""

    @retryx.retry(Policy(attempts=2, attempt_timeout=0.02, backoff="none"))
    async def hang() -> None:
        await trio.sleep(5)

    with pytest.raises(TimeoutError) as info:
        trio.run(hang)
    assert "gave up after 2 attempts" in "".join(info.value.__notes__)


def test_trio_cancellation_is_never_retried() -> None:
    """trio's ``Cancelled`` (a BaseException) ends the call at once: one attempt."""
    calls = 0

    @retryx.retry(attempts=5, backoff="none")
    async def call() -> None:
        nonlocal calls
        calls += 1
        await trio.sleep(5)

    async def main() -> None:
        with trio.move_on_after(0.02):
            await call()

    trio.run(main)
    assert 1 == calls


def test_breaker_and_failover_under_trio() -> None:
    """A failover sweep with per-endpoint breakers runs under trio like under asyncio."""
    seen: list[str] = []

    @retryx.retry(attempts=1)
    @retryx.failover(hosts=["a", "b"])
    async def call(*, host: str) -> str:
        seen.append(host)
        if host == "a":
            raise ConnectionRefusedError(host)
        await trio.sleep(0)
        return host

    assert "b" == trio.run(call)
    assert ["a", "b"] == seen


def test_anyio_on_trio_backend() -> None:
    """anyio code on its trio backend gets trio waits."""
    anyio = pytest.importorskip("anyio")
    seq = FaultSequence(ConnectionError(), "ok")

    @retryx.retry(attempts=2, backoff=retryx.backoff.fixed(0.01), jitter="none")
    async def call() -> str:
        await anyio.sleep(0)
        return seq()

    assert "ok" == anyio.run(call, backend="trio")
    assert "ok" == FaultSequence("ok")()


def test_anyio_on_asyncio_backend() -> None:
    """anyio code on its asyncio backend gets asyncio waits."""
    anyio = pytest.importorskip("anyio")
    seq = FaultSequence(ConnectionError(), "ok")

    @retryx.retry(attempts=2, backoff=retryx.backoff.fixed(0.01), jitter="none")
    async def call() -> str:
        await anyio.sleep(0)
        return seq()

    assert "ok" == anyio.run(call, backend="asyncio")
