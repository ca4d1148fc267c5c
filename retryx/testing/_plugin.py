"""The retryx pytest plugin (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import FakeClock, fake_time


@pytest.fixture
def retryx_clock() -> Iterator[FakeClock]:
    """A fake clock driving every retryx wait for the test: no real sleeping."""
    with fake_time() as clock:
        yield clock
