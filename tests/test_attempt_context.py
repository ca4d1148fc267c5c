"""Each attempt runs outside the previous attempt's handler: no artificial exception chain."""

from __future__ import annotations

import asyncio

import pytest

import retryx
from retryx.testing import FakeClock, FaultSequence


class Declined(Exception):
    """A permanent fault for the default classifier."""


def test_a_permanent_fault_after_a_transient_one_is_not_retried(clock: FakeClock) -> None:
    """Attempt 2's permanent fault does not inherit attempt 1's refusal as its context,
    so the classifier's chain walk does not make it transient."""
    seq = FaultSequence(ConnectionRefusedError(), Declined("no"), "ok")
    call = retryx.retry(attempts=5, backoff="none")(seq)
    with pytest.raises(Declined) as info:
        call()
    assert 2 == seq.calls
    assert info.value.__context__ is None


def test_async_attempts_do_not_chain_either(clock: FakeClock) -> None:
    """The same for a coroutine function."""
    seq = FaultSequence(ConnectionRefusedError(), Declined("no"), "ok")

    @retryx.retry(attempts=5, backoff="none")
    async def call() -> str:
        return seq()

    with pytest.raises(Declined) as info:
        asyncio.run(call())
    assert 2 == seq.calls
    assert info.value.__context__ is None


def test_the_last_fault_of_many_attempts_carries_no_chain(clock: FakeClock) -> None:
    """After three failed attempts the raised fault's context is empty (not attempts 1-2)."""
    call = retryx.retry(attempts=3, backoff="none")(FaultSequence(ConnectionResetError()))
    with pytest.raises(ConnectionResetError) as info:
        call()
    assert info.value.__context__ is None
