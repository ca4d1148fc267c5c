"""The caller gets its own exception: never one raised by retryx's logging or waiting."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from types import SimpleNamespace

import pytest

from retryx import Policy, backoff, events, retry
from retryx.testing import FakeClock


class Unprintable(ConnectionError):
    """A transient fault whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize(("level", "retry_on"), [(logging.ERROR, None), (logging.DEBUG, KeyError)])
def test_an_exception_whose_str_raises_reaches_the_caller(
    level: int, retry_on: type[Exception] | None, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Giving up on an unprintable exception (retried or permanent) re-raises it unchanged."""
    fields = {} if retry_on is None else {"retry_on": retry_on}

    @retry(attempts=2, backoff="none", **fields)
    def fetch() -> None:
        raise Unprintable()

    with caplog.at_level(logging.DEBUG, logger="retryx"), pytest.raises(Unprintable):
        fetch()
    (record,) = [r for r in caplog.records if r.levelno == level]
    assert record.getMessage().endswith("Unprintable: <str() failed: RuntimeError>")


def test_the_give_up_line_is_formatted_only_when_a_handler_asks(clock: FakeClock) -> None:
    """The record keeps the exception's text unformatted until it is emitted."""
    formatted = 0

    class Counted(ConnectionError):
        def __str__(self) -> str:
            nonlocal formatted
            formatted += 1
            return "counted"

    @retry(attempts=1)
    def fetch() -> None:
        raise Counted()

    logger = logging.getLogger("retryx")
    logger.setLevel(logging.ERROR)
    handler = logging.NullHandler()  # emits nothing, formats nothing
    logger.addHandler(handler)
    logger.propagate = False  # (pytest's own handlers format every record)
    try:
        with pytest.raises(Counted):
            fetch()
    finally:
        logger.propagate = True
        logger.removeHandler(handler)
    assert 0 == formatted


# --- waits too long to sleep (item 9) ----------------------------------------------------


class Throttled(ConnectionError):
    """A 503 answer carrying a Retry-After header (an HTTP-date or seconds)."""

    def __init__(self, retry_after: str) -> None:
        super().__init__("throttled")
        self.response = SimpleNamespace(status_code=503, headers={"Retry-After": retry_after})


HUGE_WAITS = {
    "fixed 1e10": (Policy(attempts=2, backoff=backoff.fixed(1e10), jitter="none"), None),
    "exponential max 1e300": (
        Policy(attempts=3, backoff=backoff.exponential(1e200, 1e50, max=1e300), jitter="full"),
        None,
    ),
    "huge hint": (Policy(attempts=2, retry_after_max=math.inf), "1000000000000"),
    "year 9999": (Policy(attempts=2, retry_after_max=math.inf), "Fri, 31 Dec 9999 23:59:59 GMT"),
}


@pytest.mark.parametrize("case", list(HUGE_WAITS))
def test_a_wait_too_long_to_sleep_gives_up_with_the_original_exception(case: str) -> None:
    """On the real clock: gives up at once with reason deadline, the fault re-raised."""
    policy, header = HUGE_WAITS[case]
    reasons: list[str] = []
    events.subscribe(lambda e: reasons.append(e.reason) if isinstance(e, events.GaveUp) else None)

    @retry(policy)
    def fetch() -> None:
        raise Throttled(header) if header is not None else ConnectionError("down")

    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        fetch()
    assert (["deadline"], True) == (reasons, time.monotonic() - started < 5.0)
    assert type(raised.value) in (Throttled, ConnectionError)


@pytest.mark.parametrize("case", list(HUGE_WAITS))
def test_an_async_wait_too_long_to_sleep_gives_up_with_the_original_exception(case: str) -> None:
    """The same on a real event loop, where such a wait would hang instead of raising."""
    policy, header = HUGE_WAITS[case]
    reasons: list[str] = []
    events.subscribe(lambda e: reasons.append(e.reason) if isinstance(e, events.GaveUp) else None)

    @retry(policy)
    async def fetch() -> None:
        raise Throttled(header) if header is not None else ConnectionError("down")

    async def main() -> None:
        await asyncio.wait_for(fetch(), 5.0)  # bounded: a hang fails the test

    with pytest.raises(ConnectionError):
        asyncio.run(main())
    assert ["deadline"] == reasons
