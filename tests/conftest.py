"""Shared fixtures: every test starts from a clean retryx (no subscribers, seeded
jitter, default configuration, the real clock) and may ask for a fake ``clock``.

The fake clock is not autouse: integration tests (servers, sockets) need real time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from retryx import _clock, events, testing
from retryx.testing import FakeClock


@pytest.fixture(autouse=True)
def _clean_retryx() -> Iterator[None]:
    """Reset retryx's global state before and after every test."""
    events.clear()
    saved_rng = _clock.rng.getstate()
    testing.seed(1234)
    saved_clock = (
        _clock.monotonic,
        _clock.now,
        _clock.sleep,
        _clock.async_sleep,
        _clock.zero_wait,
    )
    _reset_config()
    logger = logging.getLogger("retryx")
    saved_level = logger.level
    yield
    events.clear()
    _clock.rng.setstate(saved_rng)
    (
        _clock.monotonic,
        _clock.now,
        _clock.sleep,
        _clock.async_sleep,
        _clock.zero_wait,
    ) = saved_clock
    _reset_config()
    logger.setLevel(saved_level)


def _reset_config() -> None:
    try:
        from retryx import _config
    except ImportError:  # pragma: no cover - the configuration module is optional here
        return
    reset = getattr(_config, "reset_for_tests", None)
    if reset is not None:
        reset()


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock driving every retryx wait: ``clock.sleeps`` records them."""
    with testing.fake_time() as fake:
        yield fake


@pytest.fixture(scope="session")
def redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server for the session, or a skip (a failure with RETRYX_REQUIRE_REDIS=1)."""
    from tests._redis import serve

    workdir: Path = tmp_path_factory.mktemp("redis")
    for server in serve(workdir):
        yield server.url
