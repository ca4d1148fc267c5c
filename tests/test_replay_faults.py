"""Replay queues under real storage faults: a full disk, a frozen Redis, a deleted file."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from retryx.replay import ReplayQueue
from retryx.testing import fake_time

from _redis import RedisServer, serve  # isort: skip
from tests import _replay_workers as workers  # isort: skip

ROOT = Path(__file__).resolve().parents[1]


def defer(queue: ReplayQueue, target: str, down: Path, *args: object, count: int = 3) -> None:
    """Store ``count`` calls of ``target`` (it fails while ``down`` exists)."""
    down.write_text("1")
    workers.use(queue)
    try:
        with fake_time():
            for _ in range(count):
                assert getattr(workers, target)(str(down), *args) is None
    finally:
        workers.use(None)
    down.unlink()


def replay_run(url: str) -> subprocess.CompletedProcess[str]:
    """``python -m retryx replay run URL`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "retryx", "replay", "run", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=workers.worker_env(),
    )


def test_a_full_disk_mid_run_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    """The disk filling up after the queue opened: one line on stderr, exit 1, no
    traceback, and every entry is still there.
    """
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with ReplayQueue(url) as queue:
        defer(queue, "fills_disk", tmp_path / "down")
        stored = [e.call_id for e in queue.pending()]
    done = replay_run(url)
    assert 1 == done.returncode
    assert "" == done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("retryx replay run: error: the queue at sqlite:///")
    assert "failed after 0 replayed" in line
    assert "sqlite3.OperationalError" in line
    with ReplayQueue(url) as queue:
        assert stored == [e.call_id for e in queue.pending()]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from serve(tmp_path)


@pytest.mark.redis
def test_a_frozen_redis_mid_run_is_one_line_and_loses_nothing(
    tmp_path: Path, server: RedisServer
) -> None:
    """Redis stopping to answer mid-run: one line, exit 1, and the entries not yet
    replayed are still pending once it answers again.
    """
    assert server.proc is not None
    url = f"{server.url}?socket_timeout=0.5"
    with ReplayQueue(url) as queue:
        defer(queue, "stops_redis", tmp_path / "down", server.proc.pid)
        stored = [e.call_id for e in queue.pending()]
    try:
        done = replay_run(url)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert 1 == done.returncode
    [line] = done.stderr.splitlines()
    assert line.startswith("retryx replay run: error: the queue at redis://")
    assert "Timeout" in line
    with ReplayQueue(url) as queue:
        pending = [e.call_id for e in queue.pending()]
    assert stored[1:] == pending[-2:]  # the first one ran; whether it is gone or not
