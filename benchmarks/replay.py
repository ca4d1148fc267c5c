#!/usr/bin/env python
"""Replay queue throughput: ``python benchmarks/replay.py [--quick] [-n N] [--dir DIR]``.

Measures, for SQLite and Redis:

- enqueue: calls of a ``@fallback(defer_to=queue)`` function that fails with a
  transient fault (exception, classification, JSON, one durable write each);
- replay, 1 worker: ``queue.replay()`` of N stored calls whose target succeeds
  (claim, call through the pipeline, delete: three round trips each);
- replay, 2 processes: two worker processes draining the same N entries.

Redis runs on a throwaway ``redis-server`` (127.0.0.1, no persistence) when one is
installed, or on ``--redis URL``. SQLite writes to ``--dir`` (default: a temporary
directory), so the numbers depend on that file system's fsync. The script imports
itself as the module ``replay`` so the targets are importable by name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import retryx  # noqa: E402
from retryx.replay import ReplayQueue  # noqa: E402
from retryx.testing._redis_server import redis_server  # noqa: E402


class _Switch:
    """Forwards ``defer`` to the queue being measured."""

    queue: ReplayQueue | None = None

    def defer(self, *args: Any) -> None:
        assert self.queue is not None
        self.queue.defer(*args)


QUEUE = _Switch()


@retryx.fallback(defer_to=QUEUE)
def send(invoice: int, customer: str, lines: list[dict[str, Any]]) -> None:
    """The benchmarked target: fails while deferring, succeeds when replayed."""
    if os.environ.get("RETRYX_BENCH_DOWN") == "1":
        raise ConnectionRefusedError(111, "service down")


def _args(i: int) -> tuple[int, str, list[dict[str, Any]]]:
    return i, f"customer-{i % 97}", [{"sku": "A-1", "qty": 2, "price": 9.5}]


def _enqueue(queue: ReplayQueue, n: int) -> float:
    QUEUE.queue = queue
    os.environ["RETRYX_BENCH_DOWN"] = "1"
    start = time.perf_counter()
    for i in range(n):
        send(*_args(i))
    elapsed = time.perf_counter() - start
    os.environ["RETRYX_BENCH_DOWN"] = "0"
    return elapsed


def _replay_one(queue: ReplayQueue, n: int) -> float:
    start = time.perf_counter()
    report = queue.replay()
    elapsed = time.perf_counter() - start
    assert report.succeeded == n, report
    return elapsed


def _replay_two(url: str, n: int) -> float:
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import replay; replay._worker()"
    env = {**os.environ, "RETRYX_BENCH_DOWN": "0", "RETRYX_BENCH_URL": url}
    go = Path(tempfile.mkdtemp()) / "go"
    env["RETRYX_BENCH_GO"] = str(go)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    while len(list(go.parent.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    start = time.perf_counter()
    go.touch()
    total = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        total += int(out.split()[-1])
    elapsed = time.perf_counter() - start
    shutil.rmtree(go.parent, ignore_errors=True)
    assert total == n, (total, n)
    return elapsed


def _worker() -> None:
    """A worker process: wait for the start line, drain the queue, print the count."""
    go = Path(os.environ["RETRYX_BENCH_GO"])
    queue = ReplayQueue(os.environ["RETRYX_BENCH_URL"])
    QUEUE.queue = queue
    queue.pending()  # connect before the start line
    (go.parent / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    print(queue.replay().succeeded, flush=True)
    queue.close()


@contextlib.contextmanager
def _redis_server() -> Iterator[str | None]:
    try:
        import redis  # noqa: F401
    except ImportError:
        yield None
        return
    with redis_server() as url:
        yield url


def _measure(label: str, url: str, n: int) -> list[tuple[str, str, int, float]]:
    rows = []
    with ReplayQueue(url) as queue:
        rows.append((label, "enqueue (deferred call)", n, _enqueue(queue, n)))
        rows.append((label, "replay, 1 worker", n, _replay_one(queue, n)))
        _enqueue(queue, n)
        rows.append((label, "replay, 2 worker processes", n, _replay_two(url, n)))
        assert queue.pending() == []
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 entries: a smoke test")
    parser.add_argument("-n", type=int, default=2000, help="entries per measurement")
    parser.add_argument("--dir", help="directory for the SQLite file (default: a temp dir)")
    parser.add_argument("--redis", help="use this Redis URL instead of a throwaway server")
    options = parser.parse_args(argv)
    n = 200 if options.quick else options.n
    directory = Path(options.dir or tempfile.mkdtemp(prefix="retryx-replay-bench-"))
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"sqlite file in {directory}; {n} entries per row")
    rows = []
    db = directory / f"bench-{uuid.uuid4().hex}.db"
    try:
        rows += _measure("sqlite", f"sqlite:///{db}", n)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        if not options.dir:
            shutil.rmtree(directory, ignore_errors=True)
    with contextlib.ExitStack() as stack:
        url = options.redis or stack.enter_context(_redis_server())
        if url is None:
            print("redis: skipped (no redis-server or redis package)")
        else:
            rows += _measure("redis", f"{url}?queue=bench-{uuid.uuid4().hex}", n)
    print()
    print(f"{'backend':8} {'operation':28} {'n':>6} {'seconds':>8} {'ops/s':>9} {'us/op':>8}")
    for backend, operation, count, seconds in rows:
        print(
            f"{backend:8} {operation:28} {count:6d} {seconds:8.3f} "
            f"{count / seconds:9.0f} {seconds / count * 1e6:8.1f}"
        )
    return 0


if __name__ == "__main__":
    # Run the copy imported by name: targets defined in __main__ cannot be deferred.
    import importlib

    sys.exit(importlib.import_module("replay").main())
