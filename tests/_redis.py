"""A throwaway ``redis-server`` for the Redis tests (see ``retryx.testing._redis_server``).

When the binary is missing the tests skip, unless ``RETRYX_REQUIRE_REDIS=1`` (CI)
makes it a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from retryx.testing._redis_server import REDIS_SERVER, RedisServer, free_port, start_server

__all__ = ["REQUIRED", "RedisServer", "free_port", "require_server", "serve"]

REQUIRED = os.environ.get("RETRYX_REQUIRE_REDIS") == "1"


def require_server() -> None:
    """Skip the test without redis-server (or the redis package), or fail when required."""
    reason = None
    if REDIS_SERVER is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            reason = "the redis package is not installed (pip install retryx[redis])"
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"RETRYX_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(f"{reason} (set RETRYX_REQUIRE_REDIS=1 to fail instead)")


def serve(workdir: Path, args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """Generator body for fixtures: a server for the fixture's scope, killed after."""
    require_server()
    try:
        server = start_server(workdir, args=args)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
