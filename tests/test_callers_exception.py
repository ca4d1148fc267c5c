"""The caller gets its own exception: never one raised by retryx's logging or waiting."""

from __future__ import annotations

import logging

import pytest

from retryx import retry
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
