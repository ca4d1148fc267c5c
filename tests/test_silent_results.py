"""No silent wrong result: bad hosts, cancelled calls, coroutines from sync callables."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from retryx import ConfigError, failover, retry, stats
from retryx.testing import FakeClock


def primary_host() -> str:
    return "db1"


def no_hosts() -> None:
    return None


@pytest.mark.parametrize("hosts", [primary_host, no_hosts, lambda: b"db1", lambda: 5])
def test_a_hosts_callable_returning_no_sequence_is_a_config_error_naming_it(hosts: Any) -> None:
    """A hosts callable returning a str (or None, bytes, a number) fails the call clearly."""
    called: list[str] = []

    @failover(hosts)
    def connect(host: str) -> None:
        called.append(host)

    with pytest.raises(ConfigError, match="must return a sequence") as raised:
        connect()
    assert ([], True) == (called, hosts.__qualname__ in str(raised.value))


# --- a call ending in CancelledError or KeyboardInterrupt (item 16) -------------------


@pytest.mark.parametrize("failed_first", [True, False])
def test_an_interrupted_call_is_booked_like_its_attempts(
    failed_first: bool, clock: FakeClock
) -> None:
    """KeyboardInterrupt ends the call, not retried, and the call counts as a failure."""
    outcomes: list[BaseException] = [KeyboardInterrupt()]
    if failed_first:
        outcomes.insert(0, ConnectionError("down"))

    @retry(attempts=3, backoff="none")
    def fetch() -> None:
        raise outcomes.pop(0)

    with pytest.raises(KeyboardInterrupt):
        fetch()
    counted = stats(fetch)
    expected = (1, 0, 1, 2 if failed_first else 1)
    assert expected == (counted.calls, counted.successes, counted.failures, counted.attempts)
    assert ({"connection": 1} if failed_first else {}) == counted.by_cause


@pytest.mark.parametrize("failed_first", [True, False])
def test_a_cancelled_async_call_is_booked_like_its_attempts(failed_first: bool) -> None:
    """A task cancelled in its retry wait (or its first attempt) counts as one failed call."""

    @retry(attempts=3, backoff="fixed")
    async def fetch(event: asyncio.Event) -> None:
        event.set()
        if failed_first:
            raise ConnectionError("down")  # then it waits 1 s, cancelled there
        await asyncio.sleep(60)

    async def main() -> None:
        event = asyncio.Event()
        task = asyncio.get_running_loop().create_task(fetch(event))
        await asyncio.wait_for(event.wait(), 5.0)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    counted = stats(fetch)
    assert (1, 1, 1) == (counted.calls, counted.failures, counted.attempts)
    assert ({"connection": 1} if failed_first else {}) == counted.by_cause


def test_a_call_ending_in_system_exit_is_booked() -> None:
    """SystemExit from attempt 1 is not retried, and the call counts as a failure."""

    @retry(attempts=2)
    def leave() -> None:
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        leave()
    assert (1, 1) == (stats(leave).calls, stats(leave).failures)


# --- a sync callable returning an awaitable (item 13) -------------------------------------


async def fetch(url: str) -> str:
    raise ConnectionError(f"{url} is down")


class Caller:
    """A callable object whose sync ``__call__`` returns a coroutine."""

    def __call__(self) -> Any:
        return fetch("http://b")


@pytest.mark.parametrize(
    "make",
    [lambda: retry(attempts=3)(lambda: fetch("http://a")), lambda: retry(attempts=3)(Caller())],
    ids=["lambda", "callable object"],
)
def test_a_sync_callable_returning_a_coroutine_is_refused_at_its_first_call(make: Any) -> None:
    """The first call raises a ConfigError naming the callable; the coroutine is closed."""
    decorated = make()

    async def main() -> None:
        for _ in range(2):  # and again: it never starts passing silently
            with pytest.raises(ConfigError, match="not a coroutine function"):
                decorated()

    asyncio.run(main())
    assert 0 == stats(decorated).successes


def test_a_sync_callable_returning_a_future_is_refused_too() -> None:
    """Any awaitable (here an asyncio Future) is refused the same way."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        decorated = retry(attempts=2)(loop.create_future)
        with pytest.raises(ConfigError, match="create_future"):
            decorated()

    asyncio.run(main())


def test_a_sync_callable_returning_plain_values_is_untouched(clock: FakeClock) -> None:
    """Plain results pass as always, first call included."""
    decorated = retry(attempts=2)(lambda: 42)
    assert [42, 42] == [decorated(), decorated()]
