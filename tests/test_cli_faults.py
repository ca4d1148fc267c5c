"""The CLI under misbehaving children and endpoints, through ``python -m retryx``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retryx.testing._redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SLACK = 1.0  # interpreter start-up and scheduling on a loaded 2-core machine

# A command that starts two background sleepers (recording their pids in argv[1]) and
# waits for them; with "ignore" as argv[2], it and its sleepers ignore SIGTERM. It first
# notes in argv[1].overlaps any sleeper of an earlier attempt still running (not a zombie),
# and its start time (epoch seconds) in argv[1].started.
FAMILY = (
    'date +%s.%N >> "$1.started"\n'
    'for p in $(cat "$1" 2>/dev/null); do\n'
    '  if [ -e /proc/$p ] && ! grep -q ") Z" /proc/$p/stat 2>/dev/null; then\n'
    '    echo $p >> "$1.overlaps"\n'
    "  fi\n"
    "done\n"
    'if [ "$2" = ignore ]; then trap "" TERM; fi\n'
    'sleep 30 & echo $! >> "$1"\n'
    'sleep 30 & echo $! >> "$1"\n'
    "wait\n"
)


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [PY, "-m", "retryx", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def family(pids: Path, mode: str = "-") -> list[str]:
    return ["--", "sh", "-c", FAMILY, "family", str(pids), mode]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def survivors(pids: Path) -> list[int]:
    """The recorded grandchildren still running, after a short (bounded) settling time."""
    recorded = [int(line) for line in pids.read_text().split()] if pids.exists() else []
    for _ in range(25):
        running = [pid for pid in recorded if alive(pid)]
        if not running:
            return []
        time.sleep(0.02)
    for pid in running:  # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    return running


def wait_for_pids(pids: Path, count: int, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pids.exists() and len(pids.read_text().split()) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} pids never appeared in {pids}")


def test_a_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    """Timed-out attempts take their grandchildren with them: none survives, the retry does
    not overlap them, and a reader of retryx's output is not kept waiting.
    """
    pids = tmp_path / "pids"
    start = time.monotonic()
    proc = spawn("run", "--attempts", "2", "--backoff", "none", "--timeout", "0.3", *family(pids))
    try:
        _, err = proc.communicate(timeout=20)  # reads stdout to EOF, as a pipe reader does
    finally:
        proc.kill()
    elapsed = time.monotonic() - start
    assert 124 == proc.returncode, err
    assert 4 == len(pids.read_text().split())  # two attempts, two grandchildren each
    assert not Path(f"{pids}.overlaps").exists()  # the retry started after they were gone
    assert [] == survivors(pids)
    assert elapsed < 15  # the reader was not kept waiting for the 30 s sleepers


def test_a_forwarded_signal_reaches_the_whole_group(tmp_path: Path) -> None:
    """SIGTERM sent to retryx reaches the command's own children too."""
    pids = tmp_path / "pids"
    proc = spawn("run", "--attempts", "3", "--backoff", "none", *family(pids))
    try:
        wait_for_pids(pids, 2)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert 128 + signal.SIGTERM == proc.returncode
    assert [] == survivors(pids)


def test_the_kill_grace_fits_inside_the_deadline(tmp_path: Path) -> None:
    """A command that ignores SIGTERM is killed, with its group, by the deadline."""
    pids = tmp_path / "pids"
    deadline = 1.5
    # Output to a file: no reader waits here, only retryx's own exit counts.
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(
            [PY, "-m", "retryx", "run", "--deadline", str(deadline), *family(pids, "ignore")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        try:
            proc.wait(timeout=20)
        finally:
            proc.kill()
    ended = time.time()
    running = survivors(pids)  # (kills any, so none outlives the test)
    assert 124 == proc.returncode, (tmp_path / "err").read_text()
    # Measured from the command's start (after retryx's own start-up, which the deadline
    # also follows): it was the deadline plus the 5 s kill grace.
    started = float(Path(f"{pids}.started").read_text().split()[0])
    assert ended - started < deadline + SLACK
    assert [] == running


def test_foreground_keeps_the_command_in_retryx_group() -> None:
    """--foreground runs the command in retryx's process group (so it can read a terminal)."""
    same_group = "import os; print(os.getpgid(0) == os.getpgid(os.getppid()))"
    outputs = []
    for options in ([], ["--foreground"]):
        proc = spawn("run", *options, "--", PY, "-c", same_group)
        out, err = proc.communicate(timeout=20)
        assert 0 == proc.returncode, err
        outputs.append(out.strip())
    assert ["False", "True"] == outputs


@pytest.mark.parametrize("count", [1, 2])
def test_connect_never_waits_on_its_own_breakers_longer_than_the_policy(count: int) -> None:
    """Against refusing endpoints, connect waits no longer than the policy's backoff allows
    (it waited the breaker's 30 s recovery); a single endpoint gets all its attempts.
    """
    endpoints = [f"127.0.0.1:{free_port()}" for _ in range(count)]
    proc = spawn("connect", *endpoints, "--attempts", "6", "--max", "0.2", "--json")
    out, err = proc.communicate(timeout=60)
    assert 1 == proc.returncode, err
    result = json.loads(out)
    elapsed = result["elapsed"]  # seconds, measured by connect itself
    tried = [a for a in result["attempts"] if "endpoint" in a]
    if count == 1:
        assert ["ConnectionRefusedError"] * 6 == [a["error"].split(":")[0] for a in tried]
    assert all(a["retry_in"] <= 0.2 for a in result["attempts"] if "retry_in" in a)
    assert elapsed < 5 * 0.2 + SLACK + 0.5
