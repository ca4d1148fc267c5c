"""Replay targets importable by name (``tests._replay_workers:...``), the worker
entry point the replay tests run in subprocesses, and a throwaway redis-server.

The targets defer to ``QUEUE``, a switch that forwards to the ``ReplayQueue``
chosen with ``use()`` (by a test, or by a worker process from its arguments).
Their behaviour is steered by files, so separate processes can share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import retryx
from retryx.replay import ReplayQueue
from retryx.testing import _redis_server

ROOT = Path(__file__).resolve().parent.parent


class _Switch:
    """Forwards ``defer`` to the queue picked with ``use()``."""

    queue: ReplayQueue | None = None

    def defer(self, *args: Any) -> None:
        assert self.queue is not None, "call tests._replay_workers.use(queue) first"
        self.queue.defer(*args)


QUEUE = _Switch()


def use(queue: ReplayQueue | None) -> None:
    """Make the targets below defer to ``queue``."""
    QUEUE.queue = queue


def _log(path: str, **fields: Any) -> None:
    ctx = retryx.current()
    fields.update(call_id=None if ctx is None else ctx.call_id, pid=os.getpid())
    with open(path, "a") as f:
        f.write(json.dumps(fields) + "\n")


# --- targets ---------------------------------------------------------------------------


@retryx.fallback(defer_to=QUEUE)
@retryx.retry(attempts=2, backoff="none", jitter="none")
def record(log: str, down: str, value: Any = None) -> str:
    """Fails with ConnectionError while the file ``down`` exists, else logs a line."""
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")
    _log(log, value=value)
    return "ok"


@retryx.fallback(defer_to=QUEUE)
async def record_async(log: str, down: str) -> str:
    """The coroutine twin of ``record`` (logs the running loop's id too)."""
    await asyncio.sleep(0)
    if os.path.exists(down):
        raise TimeoutError("service slow")
    _log(log, loop=id(asyncio.get_running_loop()))
    return "ok"


@retryx.fallback(defer_to=QUEUE)
def always_down(x: int) -> None:
    """Always fails with a transient fault."""
    raise ConnectionResetError(f"reset while sending {x}")


@retryx.fallback(defer_to=QUEUE)
def refuses(x: int) -> None:
    """Always fails with a permanent fault."""
    raise ValueError(f"bad request {x}")


@retryx.fallback(defer_to=QUEUE)
def stops(down: str) -> None:
    """Fails while ``down`` exists; replayed, it raises SystemExit (an interruption)."""
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")
    raise SystemExit(3)


@retryx.fallback(defer_to=QUEUE)
def hold(log: str, down: str, started: str, holding: str) -> None:
    """Fails while ``down`` exists; replayed, it marks ``started`` and waits while
    ``holding`` exists (at most 20 s), so a test can kill it mid-call.
    """
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + 20.0
    while os.path.exists(holding) and time.monotonic() < deadline:
        time.sleep(0.01)
    _log(log)


@retryx.fallback(defer_to=QUEUE)
def exclusive(directory: str, i: int) -> None:
    """Fails while ``directory/down`` exists; replayed, it proves no other process runs
    entry ``i`` at the same time (an O_EXCL lock file) and logs the run.
    """
    base = Path(directory)
    if (base / "down").exists():
        raise ConnectionRefusedError(111, "service down")
    lock = base / f"running-{i}"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        with open(base / "overlaps", "a") as f:
            f.write(f"{i}\n")
        raise
    try:
        time.sleep(0.001)
        _log(str(base / f"runs-{os.getpid()}"), i=i)
    finally:
        os.close(fd)
        os.unlink(lock)


@retryx.fallback(defer_to=QUEUE)
@retryx.retry(attempts=2, backoff="none", jitter="none", deadline=0.5)
def hurried(down: str) -> None:
    """Fails while ``down`` exists, under a 0.5 s deadline."""
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")


@retryx.fallback(defer_to=QUEUE)
def fills_disk(down: str) -> None:
    """Fails while ``down`` exists; replayed, it succeeds, leaving the process unable to
    grow any file (RLIMIT_FSIZE 0, SIGXFSZ ignored): the next commit finds the disk full.
    """
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@retryx.fallback(defer_to=QUEUE)
def stops_redis(down: str, pid: int) -> None:
    """Fails while ``down`` exists; replayed, it succeeds after freezing the redis-server
    ``pid`` (SIGSTOP): the queue's next step gets no answer.
    """
    if os.path.exists(down):
        raise ConnectionRefusedError(111, "service down")
    import signal

    os.kill(pid, signal.SIGSTOP)


class Billing:
    """Static and class methods are importable by name; instance methods are not."""

    @retryx.fallback(defer_to=QUEUE)
    @staticmethod
    def static(log: str, down: str) -> None:
        if os.path.exists(down):
            raise ConnectionRefusedError(111, "service down")
        _log(log, kind="static")

    @classmethod
    @retryx.fallback(defer_to=QUEUE)
    def klass(cls, log: str, down: str) -> None:
        if os.path.exists(down):
            raise ConnectionRefusedError(111, "service down")
        _log(log, kind="class", cls=cls.__qualname__)

    @retryx.fallback(defer_to=QUEUE)
    def method(self, x: int) -> None:
        raise ConnectionRefusedError(111, "service down")


class Invoices(Billing):
    """A subclass: its classmethod calls replay through the subclass."""


# --- worker entry point (python -c "import tests._replay_workers as w; w.main()") --------


def main() -> None:
    """``ACTION URL CLAIM_TIMEOUT [NAME ARGS_JSON]``: ``replay`` prints the report as
    JSON; ``call`` calls the target ``NAME`` with ``ARGS_JSON`` and prints the
    result and the call ids of ``Deferred`` events. With ``$RETRYX_TEST_GO`` set,
    it creates ``GO.ready-PID`` and waits (at most 10 s) for ``GO`` to exist.
    """
    action, url, claim_timeout, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    queue = ReplayQueue(url, claim_timeout=float(claim_timeout), max_replays=3)
    use(queue)
    go = os.environ.get("RETRYX_TEST_GO")
    if go:  # a start line, so workers really run side by side
        Path(f"{go}.ready-{os.getpid()}").touch()
        deadline = time.monotonic() + 10.0
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.005)
    if action == "replay":
        report = queue.replay()
        print(json.dumps(dataclasses.asdict(report)), flush=True)
    elif action == "call":
        name, args = extra[0], json.loads(extra[1])
        deferred: list[str] = []
        retryx.events.subscribe(
            lambda e: deferred.append(e.call_id) if isinstance(e, retryx.events.Deferred) else None
        )
        result = globals()[name](*args)
        print(json.dumps({"result": result, "deferred": deferred}), flush=True)
    else:
        raise SystemExit(f"unknown action {action!r}")
    queue.close()


def worker(action: str, url: str, *args: str, claim_timeout: float = 60.0) -> list[str]:
    """The argv of a worker subprocess running ``main()``."""
    code = "import tests._replay_workers as w; w.main()"
    return [sys.executable, "-c", code, action, url, str(claim_timeout), *args]


def worker_env() -> dict[str, str]:
    """The environment of a worker subprocess: the repository on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# --- a throwaway redis-server -------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A redis-server on a free 127.0.0.1 port, no persistence; yields its URL, or
    ``None`` when redis-server or the redis package is missing.
    """
    try:
        import redis  # noqa: F401
    except ImportError:
        yield None
        return
    with _redis_server.redis_server() as url:
        yield url
