"""Deferred replay: calls stored by @fallback(defer_to=queue) and replayed later.

Behavioural tests run on a real SQLite file and (marked ``redis``) on a real
redis-server; worker processes import their targets from ``tests._replay_workers``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the workers are imported as tests._replay_workers
    sys.path.insert(0, str(ROOT))

import retryx  # noqa: E402
from retryx import ConfigError, events, fallback  # noqa: E402
from retryx.replay import ReplayEntry, ReplayQueue, ReplayReport, cli_list, cli_run  # noqa: E402
from tests import _replay_workers as w  # noqa: E402

MakeQueue = Callable[..., ReplayQueue]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh queue URL: a SQLite file in tmp_path, or a uniquely named Redis queue."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replay.db'}"
    base: str = request.getfixturevalue("redis_base")
    return f"{base}?queue={uuid.uuid4().hex}"


@pytest.fixture
def make_queue(url: str) -> Iterator[MakeQueue]:
    """Build queues on ``url`` (the first one becomes the workers' queue); closed after."""
    made: list[ReplayQueue] = []

    def make(**settings: Any) -> ReplayQueue:
        queue = ReplayQueue(url, **settings)
        if not made:
            w.use(queue)
        made.append(queue)
        return queue

    yield make
    w.use(None)
    for queue in made:
        queue.close()


@pytest.fixture
def down(tmp_path: Path) -> Path:
    """The marker file that makes the targets fail; removed to let replays succeed."""
    path = tmp_path / "down"
    path.touch()
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_worker(*argv: str, cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        argv, cwd=cwd, env=w.worker_env(), capture_output=True, text=True, timeout=30
    )
    assert 0 == proc.returncode, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- storing ------------------------------------------------------------------------------


def test_failing_call_is_stored_and_returns_none(
    make_queue: MakeQueue, tmp_path: Path, down: Path
) -> None:
    """A final transient failure stores target, JSON args, call_id and error, returns None
    and emits Deferred.
    """
    queue = make_queue()
    seen: list[Any] = []
    events.subscribe(seen.append)
    before = time.time()
    log = str(tmp_path / "log")

    assert w.record(log, str(down), value={"n": (1, 2)}) is None

    [entry] = queue.pending()
    [deferred] = [e for e in seen if isinstance(e, events.Deferred)]
    assert "tests._replay_workers:record" == entry.target
    assert (log, str(down)) == entry.args
    assert {"value": {"n": [1, 2]}} == entry.kwargs
    assert 0 == entry.attempts
    assert entry.last_error.startswith("ConnectionRefusedError: ")
    assert before <= entry.created_at <= time.time()
    assert ("record", entry.call_id, w.QUEUE) == (deferred.name, deferred.call_id, deferred.queue)
    assert isinstance(deferred.exception, ConnectionRefusedError)
    assert [] == queue.dead()


def test_permanent_fault_is_raised_and_never_stored(make_queue: MakeQueue) -> None:
    """A permanent fault reaches the caller and nothing is stored."""
    queue = make_queue()
    with pytest.raises(ValueError, match="bad request 1"):
        w.refuses(1)
    assert [] == queue.pending()


@pytest.mark.parametrize(
    "bad",
    [object(), {1: "int key"}, float("nan"), {"a": {1, 2}}, b"bytes"],
    ids=["object", "int-key", "nan", "set", "bytes"],
)
def test_non_json_argument_is_config_error_and_nothing_stored(
    make_queue: MakeQueue, tmp_path: Path, down: Path, bad: Any
) -> None:
    """A non-JSON argument is a ConfigError at the call, chained from the fault."""
    queue = make_queue()
    with pytest.raises(ConfigError, match="record") as info:
        w.record(str(tmp_path / "log"), str(down), value=bad)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert [] == queue.pending()


def test_target_not_importable_by_name_is_config_error(make_queue: MakeQueue) -> None:
    """Functions defined inside a function and instance methods cannot be deferred."""
    queue = make_queue()

    @fallback(defer_to=queue)
    def local() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConfigError, match="inside a function") as info:
        local()
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(ConfigError, match="method of an instance"):
        w.Billing().method(1)
    assert [] == queue.pending()


def test_store_failure_raises_the_fault_with_a_note(tmp_path: Path) -> None:
    """When the store cannot be written the caller gets its own fault, with a note."""
    folder = tmp_path / "gone"
    folder.mkdir()
    queue = ReplayQueue(f"sqlite:///{folder / 'q.db'}")
    folder.rmdir()
    w.use(queue)
    try:
        with pytest.raises(ConnectionResetError) as info:
            w.always_down(1)
    finally:
        w.use(None)
        queue.close()
    assert any("could not defer" in note for note in info.value.__notes__)


# --- replaying ----------------------------------------------------------------------------


def test_new_process_replays_with_the_same_call_id(url: str, tmp_path: Path, down: Path) -> None:
    """A call deferred by a process that then exits is replayed by another process, whose
    target sees the original call_id in retryx.current().
    """
    log = tmp_path / "log"
    called = run_worker(
        *w.worker("call", url, "record", json.dumps([str(log), str(down)])), cwd=tmp_path
    )
    assert called["result"] is None
    [call_id] = called["deferred"]
    down.unlink()

    report = run_worker(*w.worker("replay", url), cwd=tmp_path)

    assert {"replayed": 1, "succeeded": 1, "failed": 0, "dead": 0} == report
    [line] = lines(log)
    assert call_id == line["call_id"]
    assert os.getpid() != line["pid"]
    with ReplayQueue(url) as queue:
        assert [] == queue.pending()


def test_failed_replay_keeps_entry_with_attempts_and_last_error(make_queue: MakeQueue) -> None:
    """A failed replay counts against the stored entry and stores no new one."""
    queue = make_queue(max_replays=5)
    w.always_down(7)
    [before] = queue.pending()

    assert ReplayReport(1, 0, 1, 0) == queue.replay()

    [after] = queue.pending()
    assert (before.call_id, 1) == (after.call_id, after.attempts)
    assert "ConnectionResetError: reset while sending 7" == after.last_error


def test_dead_letters_after_max_replays(make_queue: MakeQueue) -> None:
    """The max_replays-th failed replay moves the entry to the dead letters."""
    queue = make_queue(max_replays=3)
    w.always_down(1)

    reports = [queue.replay() for _ in range(3)]

    assert [ReplayReport(1, 0, 1, 0)] * 2 + [ReplayReport(1, 0, 1, 1)] == reports
    assert [] == queue.pending()
    [dead] = queue.dead()
    assert 3 == dead.attempts
    assert ReplayReport(0, 0, 0, 0) == queue.replay()


def test_success_removes_entry_and_runs_through_the_pipeline(
    make_queue: MakeQueue, tmp_path: Path, down: Path
) -> None:
    """A replay runs the decorated pipeline (its retries included) and removes the entry."""
    queue = make_queue()
    log = tmp_path / "log"
    w.record(str(log), str(down), value=3)
    [entry] = queue.pending()
    down.unlink()
    calls: list[Any] = []
    events.subscribe(calls.append)

    assert ReplayReport(1, 1, 0, 0) == queue.replay()

    assert [] == queue.pending()
    assert [{"value": 3, "call_id": entry.call_id, "pid": os.getpid()}] == lines(log)
    assert any(isinstance(e, events.Succeeded) and e.name == "record" for e in calls)


def test_static_and_class_methods_replay(make_queue: MakeQueue, tmp_path: Path, down: Path) -> None:
    """Staticmethods and classmethods are stored by name; a subclass replays as itself."""
    queue = make_queue()
    log = tmp_path / "log"
    w.Billing.static(str(log), str(down))
    w.Invoices.klass(str(log), str(down))
    targets = [e.target for e in queue.pending()]
    down.unlink()

    assert ReplayReport(2, 2, 0, 0) == queue.replay()

    assert ["tests._replay_workers:Billing.static", "tests._replay_workers:Invoices.klass"] == (
        targets
    )
    assert [("static", None), ("class", "Invoices")] == [
        (line["kind"], line.get("cls")) for line in lines(log)
    ]


def test_coroutine_functions_replay_in_a_fresh_event_loop(
    make_queue: MakeQueue, tmp_path: Path, down: Path
) -> None:
    """An async target is replayed with asyncio.run, also when replay() runs inside a loop."""
    queue = make_queue()
    log = tmp_path / "log"
    for _ in range(2):
        assert asyncio.run(w.record_async(str(log), str(down))) is None
    first, second = (e.call_id for e in queue.pending())
    down.unlink()

    assert ReplayReport(1, 1, 0, 0) == queue.replay(limit=1)

    async def from_async_code() -> ReplayReport:
        return queue.replay()

    assert ReplayReport(1, 1, 0, 0) == asyncio.run(from_async_code())
    assert [first, second] == [line["call_id"] for line in lines(log)]


def test_limit_and_order(make_queue: MakeQueue) -> None:
    """replay(limit=n) replays the n oldest entries; a bad limit is a ConfigError."""
    queue = make_queue(max_replays=5)
    for i in range(5):
        w.always_down(i)
    assert [(i,) for i in range(5)] == [e.args for e in queue.pending()]

    assert ReplayReport(0, 0, 0, 0) == queue.replay(limit=0)
    assert ReplayReport(2, 0, 2, 0) == queue.replay(limit=2)
    assert [1, 1, 0, 0, 0] == [e.attempts for e in queue.pending()]
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="limit"):
            queue.replay(limit=bad)  # type: ignore[arg-type]


def test_purge(make_queue: MakeQueue) -> None:
    """purge(call_id) removes a pending or dead entry and says whether it did."""
    queue = make_queue(max_replays=1)
    w.always_down(1)
    queue.replay()
    w.always_down(2)
    [dead], [pending] = queue.dead(), queue.pending()

    assert queue.purge(dead.call_id)
    assert queue.purge(pending.call_id)
    assert not queue.purge(pending.call_id)
    assert ([], []) == (queue.pending(), queue.dead())


def test_unimportable_stored_target_counts_as_a_failed_replay(make_queue: MakeQueue) -> None:
    """A stored target that no longer imports fails its replay like any other fault."""
    queue = make_queue()
    queue._backend.enqueue("c0ffee", "tests._replay_workers:gone", "[]", "{}", "E: x", 1.0)

    assert ReplayReport(1, 0, 1, 0) == queue.replay()
    [entry] = queue.pending()
    assert ("c0ffee", 1) == (entry.call_id, entry.attempts)
    assert entry.last_error.startswith("AttributeError")


def test_interrupted_replay_gives_the_entry_back(make_queue: MakeQueue, down: Path) -> None:
    """SystemExit (or KeyboardInterrupt) in a replay propagates and leaves the entry as it
    was, unclaimed.
    """
    queue = make_queue()
    w.stops(str(down))
    down.unlink()

    with pytest.raises(SystemExit):
        queue.replay()

    [entry] = queue.pending()
    assert 0 == entry.attempts
    down.touch()
    assert ReplayReport(1, 0, 1, 0) == queue.replay()  # claimable again at once


def test_threads_never_replay_one_entry_twice(make_queue: MakeQueue, tmp_path: Path) -> None:
    """Two threads replaying one queue share the entries: each runs exactly once."""
    queue = make_queue()
    other = make_queue()
    (tmp_path / "down").touch()
    for i in range(40):
        w.exclusive(str(tmp_path), i)
    (tmp_path / "down").unlink()
    reports: list[ReplayReport] = []
    threads = [
        threading.Thread(target=lambda q=q: reports.append(q.replay())) for q in (queue, other)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert 40 == sum(r.succeeded for r in reports)
    runs = sorted(line["i"] for path in tmp_path.glob("runs-*") for line in lines(path))
    assert list(range(40)) == runs
    assert not (tmp_path / "overlaps").exists()


def test_two_worker_processes_replay_200_entries(
    make_queue: MakeQueue, url: str, tmp_path: Path
) -> None:
    """Two worker processes replay 200 entries: none lost, none run twice at once, each
    with its stored call_id.
    """
    queue = make_queue()
    (tmp_path / "down").touch()
    for i in range(200):
        w.exclusive(str(tmp_path), i)
    ids = {e.args[1]: e.call_id for e in queue.pending()}
    (tmp_path / "down").unlink()
    go = tmp_path / "go"
    env = {**w.worker_env(), "RETRYX_TEST_GO": str(go)}
    procs = [
        subprocess.Popen(
            w.worker("replay", url),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    wait_for(lambda: len(list(tmp_path.glob("go.ready-*"))) == 2)
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert 0 == proc.returncode, err
        reports.append(json.loads(out.splitlines()[-1]))

    assert 200 == sum(r["succeeded"] for r in reports)
    assert all(r["succeeded"] > 0 for r in reports)  # they did share the work
    assert 0 == sum(r["failed"] for r in reports)
    runs = [line for path in tmp_path.glob("runs-*") for line in lines(path)]
    assert ids == {line["i"]: line["call_id"] for line in runs}
    assert 200 == len(runs)
    assert not (tmp_path / "overlaps").exists()
    assert [] == queue.pending()


def test_killed_worker_leaves_entry_claimable_after_claim_expiry(
    make_queue: MakeQueue, url: str, tmp_path: Path, down: Path
) -> None:
    """A live worker keeps its claim past claim_timeout; once it is SIGKILLed mid-replay,
    the claim expires and another worker replays the call.
    """
    queue = make_queue(claim_timeout=0.5)
    log, started, holding = tmp_path / "log", tmp_path / "started", tmp_path / "holding"
    w.hold(str(log), str(down), str(started), str(holding))
    [entry] = queue.pending()
    down.unlink()
    holding.touch()
    proc = subprocess.Popen(
        w.worker("replay", url, claim_timeout=0.5),
        cwd=tmp_path,
        env=w.worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(started.exists)
        time.sleep(0.8)  # longer than claim_timeout: the worker's heartbeat renewed it
        assert ReplayReport(0, 0, 0, 0) == queue.replay()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    holding.unlink()
    assert [entry.call_id] == [e.call_id for e in queue.pending()]

    reports: list[ReplayReport] = []

    def replayed_one() -> bool:
        reports.append(queue.replay())
        return reports[-1].replayed == 1

    wait_for(replayed_one, timeout=5)

    assert ReplayReport(1, 1, 0, 0) == reports[-1]
    assert [entry.call_id] == [line["call_id"] for line in lines(log)]
    assert [] == queue.pending()


# --- the queue object ------------------------------------------------------------------------


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///rel.db is relative to the working directory, sqlite:////abs.db absolute."""
    monkeypatch.chdir(tmp_path)
    relative = ReplayQueue("sqlite:///rel.db")
    absolute = ReplayQueue(f"sqlite:///{tmp_path / 'abs.db'}")
    assert [] == relative.pending() == absolute.pending()
    assert (tmp_path / "rel.db").exists()
    assert (tmp_path / "abs.db").exists()
    relative.close()
    absolute.close()


@pytest.mark.parametrize(
    "bad",
    [
        "sqlite://host/x.db",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///no/such/dir/x.db",
        "sqlite:///x.db?mode=ro",
        "mysql://localhost/db",
        "replay.db",
        "redis://localhost/0?queue={x}",
        42,
    ],
)
def test_bad_urls_are_config_errors(bad: Any) -> None:
    """A URL that names no durable queue is a ConfigError."""
    with pytest.raises(ConfigError, match="ReplayQueue"):
        ReplayQueue(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_replays", 0),
        ("max_replays", True),
        ("max_replays", 1.5),
        ("claim_timeout", 0),
        ("claim_timeout", -1.0),
        ("claim_timeout", float("inf")),
        ("claim_timeout", "1"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, field: str, value: Any) -> None:
    """Settings are validated at construction, naming the field."""
    with pytest.raises(ConfigError, match=f"ReplayQueue.{field}"):
        ReplayQueue(f"sqlite:///{tmp_path / 'q.db'}", **{field: value})


def test_repr_and_defer_to_combinations(tmp_path: Path) -> None:
    """The repr shows settings but no password; defer_to excludes a handler or value."""
    queue = ReplayQueue(f"sqlite:///{tmp_path / 'q.db'}", max_replays=4, claim_timeout=2)
    assert f"ReplayQueue('sqlite:///{tmp_path / 'q.db'}', max_replays=4, claim_timeout=2.0)" == (
        repr(queue)
    )
    assert "secret" not in repr(ReplayQueue("redis://:secret@127.0.0.1:1/0"))
    with pytest.raises(ConfigError):
        cast(Any, fallback)(lambda e: None, defer_to=queue)
    with pytest.raises(ConfigError):
        cast(Any, fallback)(value=1, defer_to=queue)


def test_entries_are_importable_records() -> None:
    """ReplayEntry and ReplayReport are plain records from retryx.replay."""
    entry = ReplayEntry("id", "m:f", (1,), {"a": 2}, 0, "E: x", 1.5)
    assert ("id", 0, 1.5) == (entry.call_id, entry.attempts, entry.created_at)
    assert retryx.replay.ReplayReport(1, 1, 0, 0).succeeded == 1


def test_import_retryx_loads_no_backend() -> None:
    """import retryx (and retryx.replay) imports neither sqlite3 nor redis."""
    code = (
        "import sys, retryx, retryx.replay; "
        "print([m for m in ('sqlite3', 'redis') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "[]" == out.stdout.strip()


# --- command line ----------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_list_and_run(
    make_queue: MakeQueue,
    url: str,
    tmp_path: Path,
    down: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """list shows pending and dead entries; run replays, prints failures, and exits 1
    when a replay failed, else 0.
    """
    make_queue()
    w.record(str(tmp_path / "log"), str(down))
    w.always_down(5)
    down.unlink()

    assert 0 == cli_list(url)
    out = capsys.readouterr().out
    assert "pending: 2" in out
    assert "tests._replay_workers:always_down" in out
    assert "dead: 0" in out

    assert 1 == cli_run(url)
    out = capsys.readouterr().out
    assert "failed  " in out
    assert "replayed 2: 1 succeeded, 1 failed (0 moved to dead letters)" in out

    assert 0 == cli_run(url, limit=0)
    assert 2 == cli_run(url, limit=-1)
    assert 2 == cli_list("nope://x")
    assert "error" in capsys.readouterr().err


def test_cli_run_draws_a_progress_bar_on_a_terminal(
    make_queue: MakeQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """On a terminal, a long run shows a progress bar on stderr (and clears it)."""
    make_queue()
    (tmp_path / "down").touch()
    for i in range(30):
        w.exclusive(str(tmp_path), i)
    (tmp_path / "down").unlink()
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(retryx._cli_replay._ProgressBar, "delay", 0.0)

    assert 0 == cli_run(url)

    assert "30/30" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[2K")
