"""Replay queues under real storage faults: a full disk, a frozen Redis, a deleted file."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
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


# --- a deferral is bounded by the time left, and its note says what failed where --------


def hurried_call(queue: ReplayQueue, tmp_path: Path) -> tuple[BaseException | None, float]:
    """Call ``hurried`` (0.5 s deadline) while its service is down: (raised, seconds)."""
    down = tmp_path / "down"
    down.write_text("1")
    workers.use(queue)
    start = time.monotonic()
    try:
        workers.hurried(str(down))
    except ConnectionRefusedError as exc:
        return exc, time.monotonic() - start
    finally:
        workers.use(None)
    return None, time.monotonic() - start


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def test_a_locked_sqlite_file_costs_at_most_the_time_left(tmp_path: Path) -> None:
    """Another process holding the SQLite lock: the deferral gives up within the policy's
    deadline (it waited 30 s), and the note says what failed, where, and why it stopped.
    """
    path = tmp_path / "q.db"
    with ReplayQueue(f"sqlite:///{path}") as queue:
        assert [] == queue.pending()  # the file exists, the connection is open
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert locker.stdout is not None
            assert "locked" == locker.stdout.readline().strip()
            raised, took = hurried_call(queue, tmp_path)
        finally:
            locker.communicate(timeout=10)
        assert raised is not None
        assert took < 0.5 + 1.5  # was 30 s
        note = raised.__notes__[-1]
        where = f"storing it in the replay queue at sqlite:///{path} failed after "
        assert note.startswith(f"retryx: could not defer the call: {where}")
        assert "database is locked" in note
        assert "left before the policy's deadline" in note
        assert [] == queue.pending()


@pytest.mark.redis
def test_a_frozen_redis_costs_at_most_the_time_left(tmp_path: Path, server: RedisServer) -> None:
    """A frozen Redis (30 s socket timeout): the deferral gives up within the deadline."""
    assert server.proc is not None
    with ReplayQueue(server.url) as queue:
        assert [] == queue.pending()
        server.proc.send_signal(signal.SIGSTOP)
        try:
            raised, took = hurried_call(queue, tmp_path)
        finally:
            server.proc.send_signal(signal.SIGCONT)
    assert raised is not None
    assert took < 0.5 + 1.5  # was 30 s
    note = raised.__notes__[-1]
    assert f"replay queue at {server.url} failed after" in note
    assert "redis.exceptions.TimeoutError" in note
    assert "Redis may still store it" in note


@pytest.mark.redis
def test_a_failed_deferral_to_redis_says_what_failed_and_where(
    tmp_path: Path, server: RedisServer
) -> None:
    """Redis killed: the note names the queue and the client's error with its message."""
    with ReplayQueue(server.url) as queue:
        assert [] == queue.pending()
        server.stop()
        raised, _ = hurried_call(queue, tmp_path)
    assert raised is not None
    note = raised.__notes__[-1]
    assert f"storing it in the replay queue at {server.url} failed after" in note
    assert "(redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:" in note


# --- a queue file deleted while the application runs --------------------------------------


def listed(url: str) -> str:
    """``retryx replay list URL`` from another process."""
    done = subprocess.run(
        [sys.executable, "-m", "retryx", "replay", "list", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=workers.worker_env(),
    )
    assert 0 == done.returncode, done.stderr
    return done.stdout


def test_a_deleted_queue_file_is_reopened_not_written_into_the_void(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQLite file deleted under an open queue: the next deferral goes to a new file
    at the path (another process lists it), with an ERROR log saying the file was lost.
    """
    path = tmp_path / "q.db"
    url = f"sqlite:///{path}"
    with ReplayQueue(url) as queue:
        assert [] == queue.pending()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        defer(queue, "hurried", tmp_path / "down", count=1)
        [entry] = queue.pending()
    assert entry.call_id in listed(url)
    assert any("deleted or replaced while open" in r.message for r in caplog.records)


def test_a_deleted_queue_directory_fails_loudly(tmp_path: Path) -> None:
    """The queue's directory deleted under an open queue: the deferral is not reported
    (the caller gets its fault, noted), instead of vanishing with the unlinked file.
    """
    folder = tmp_path / "queue"
    folder.mkdir()
    with ReplayQueue(f"sqlite:///{folder / 'q.db'}") as queue:
        assert [] == queue.pending()
        shutil.rmtree(folder)
        raised, _ = hurried_call(queue, tmp_path)
    assert raised is not None
    assert "could not defer the call" in raised.__notes__[-1]
