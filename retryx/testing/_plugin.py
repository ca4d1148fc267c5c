"""The retryx pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``retryx_clock``: a fake clock driving every retryx wait (no real sleeping).
- ``retryx_test_mode``: every retry policy capped at one attempt, no waits.
- ``retryx_echo``, ``retryx_refusing``, ``retryx_resetting``,
  ``retryx_accept_then_close``: a loopback fault server for the test, as
  ``("127.0.0.1", port)``.
- ``retryx_slow(delay)`` and ``retryx_http(script)``: factories starting a
  slow echo server or a scripted HTTP server; all are stopped after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from . import FakeClock, fake_time, test_mode

if TYPE_CHECKING:  # the servers module loads on first use
    from .servers import Address, HTTPAddress


@pytest.fixture
def retryx_clock() -> Iterator[FakeClock]:
    """A fake clock driving every retryx wait for the test: no real sleeping."""
    with fake_time() as clock:
        yield clock


@pytest.fixture
def retryx_test_mode() -> Iterator[None]:
    """Every retry policy capped at one attempt and every wait removed, for the test."""
    with test_mode(attempts=1):
        yield


def _serve(name: str) -> Iterator[Address]:
    from . import servers

    with getattr(servers, name)() as address:
        yield address


@pytest.fixture
def retryx_echo() -> Iterator[Address]:
    """A loopback server echoing every byte back."""
    yield from _serve("echo")


@pytest.fixture
def retryx_refusing() -> Iterator[Address]:
    """A loopback address that refuses connections."""
    yield from _serve("refusing")


@pytest.fixture
def retryx_resetting() -> Iterator[Address]:
    """A loopback server that resets (RST) every connection."""
    yield from _serve("resetting")


@pytest.fixture
def retryx_accept_then_close() -> Iterator[Address]:
    """A loopback server that accepts, then closes cleanly (EOF)."""
    yield from _serve("accept_then_close")


@pytest.fixture
def retryx_slow() -> Iterator[Callable[[float], Address]]:
    """A factory: ``retryx_slow(delay)`` starts an echo server answering after ``delay``."""
    from . import servers

    with contextlib.ExitStack() as stack:
        yield lambda delay: stack.enter_context(servers.slow(delay))


@pytest.fixture
def retryx_http() -> Iterator[Callable[[Iterable[tuple[int, Any, Any]]], HTTPAddress]]:
    """A factory: ``retryx_http(script)`` starts a scripted loopback HTTP server."""
    from . import servers

    with contextlib.ExitStack() as stack:
        yield lambda script: stack.enter_context(servers.http(script))
