"""``retryx run``: retrying a command by its exit status, timeouts, signals and waits."""

from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retryx import testing
from retryx._cli import main

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# A child that appends one line per run to the file in argv[1] and exits with
# the status in argv[2] until its run number reaches argv[3], then exits 0.
FLAKY = (
    "import sys, pathlib\n"
    "p = pathlib.Path(sys.argv[1])\n"
    "runs = len(p.read_text().splitlines()) + 1 if p.exists() else 1\n"
    "p.write_text('run\\n' * runs)\n"
    "sys.exit(0 if runs >= int(sys.argv[3]) else int(sys.argv[2]))\n"
)

# A child that records its start, forwards nothing, and waits (bounded) for a signal.
# With argv[2] == "trap", SIGTERM is handled: it records "term" and exits 7.
WAITER = (
    "import signal, sys, time, pathlib\n"
    "p = pathlib.Path(sys.argv[1])\n"
    "def on_term(signum, frame):\n"
    "    with p.open('a') as fh: fh.write('term\\n')\n"
    "    sys.exit(7)\n"
    "if sys.argv[2] == 'trap':\n"
    "    signal.signal(signal.SIGTERM, on_term)\n"
    "with p.open('a') as fh: fh.write('start\\n')\n"
    "for _ in range(200):\n"
    "    time.sleep(0.05)\n"
    "sys.exit(1)\n"
)


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m retryx ...`` from the source tree."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [PY, "-m", "retryx", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m retryx ...`` to completion."""
    proc = spawn(*args)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def lines(path: Path) -> list[str]:
    """The lines written to ``path`` so far (none when it does not exist)."""
    return path.read_text().splitlines() if path.exists() else []


def wait_for_line(path: Path, line: str, timeout: float = 10.0) -> None:
    """Poll ``path`` until it contains ``line`` (bounded)."""
    for _ in range(int(timeout / 0.02)):
        if line in lines(path):
            return
        time.sleep(0.02)
    raise AssertionError(f"{line!r} never appeared in {path}")


# --------------------------------------------------------------------------- end to end


def test_succeeds_on_third_try(tmp_path: Path) -> None:
    """A command that fails twice then succeeds is run three times and ``run`` exits 0."""
    state = tmp_path / "state"
    proc = run_cli(
        "run", "--attempts", "5", "--backoff", "none", "--", PY, "-c", FLAKY, str(state), "1", "3"
    )
    assert proc.returncode == 0, proc.stderr
    assert len(lines(state)) == 3
    assert proc.stderr.splitlines() == [
        "retryx: attempt 1/5 failed (exit 1); retrying now",
        "retryx: attempt 2/5 failed (exit 1); retrying now",
    ]


def test_always_failing_command_exits_with_its_last_status(tmp_path: Path) -> None:
    """When attempts run out, ``run`` exits with the last attempt's status."""
    state = tmp_path / "state"
    proc = run_cli(
        "run", "--attempts", "3", "--backoff", "none", "--", PY, "-c", FLAKY, str(state), "9", "99"
    )
    assert proc.returncode == 9
    assert len(lines(state)) == 3
    assert proc.stderr.splitlines()[-1] == "retryx: attempt 3/3 failed (exit 9); giving up"


def test_timeout_exits_124(tmp_path: Path) -> None:
    """An attempt that outlives ``--timeout`` is stopped and the status is 124, like timeout(1)."""
    start = time.monotonic()
    proc = run_cli(
        "run", "--attempts", "1", "--timeout", "0.3", "--", PY, "-c", "import time; time.sleep(20)"
    )
    assert proc.returncode == 124
    assert time.monotonic() - start < 10
    assert "timed out after 0.3s, exit 124" in proc.stderr


def test_sigterm_to_retryx_is_forwarded_and_not_retried(tmp_path: Path) -> None:
    """SIGTERM sent to ``retryx run`` reaches the child, which is not run again."""
    state = tmp_path / "state"
    proc = spawn(
        "run", "--attempts", "5", "--backoff", "none", "--", PY, "-c", WAITER, str(state), "trap"
    )
    try:
        wait_for_line(state, "start")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 7  # the child's own status after handling the signal
    assert lines(state) == ["start", "term"]


def test_child_killed_by_forwarded_sigterm_gives_143(tmp_path: Path) -> None:
    """A child that dies of the forwarded SIGTERM makes ``run`` exit 128+15, without a retry."""
    state = tmp_path / "state"
    proc = spawn(
        "run", "--attempts", "5", "--backoff", "none", "--", PY, "-c", WAITER, str(state), "-"
    )
    try:
        wait_for_line(state, "start")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert lines(state) == ["start"]


def test_sigterm_during_a_wait_stops_at_once(tmp_path: Path) -> None:
    """SIGTERM while waiting between attempts ends ``run`` with 143 instead of retrying."""
    state = tmp_path / "state"
    proc = spawn(
        "run", "--attempts", "3", "--initial", "30", "--jitter", "none", "--",
        PY, "-c", FLAKY, str(state), "1", "99",
    )  # fmt: skip
    start = time.monotonic()
    try:
        wait_for_line(state, "run")
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 10)
        assert ready, "retryx never reported its wait"
        assert "retrying in 30.0s" in proc.stderr.readline()  # now waiting
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert lines(state) == ["run"]
    assert time.monotonic() - start < 20


def test_child_dying_of_its_own_sigterm_is_a_failed_attempt(tmp_path: Path) -> None:
    """A child killed by a SIGTERM retryx did not send is retried like any failure (exit 143)."""
    state = tmp_path / "state"
    code = (
        "import os, signal, sys\n"
        "open(sys.argv[1], 'a').write('run\\n')\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    proc = run_cli("run", "--attempts", "3", "--backoff", "none", "--", PY, "-c", code, str(state))
    assert proc.returncode == 128 + signal.SIGTERM
    assert len(lines(state)) == 3
    assert "killed by SIGTERM, exit 143" in proc.stderr


# --------------------------------------------------------------------------- in process


def test_retry_exit_codes_limits_what_is_retried(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With ``--retry-exit-codes`` a status outside the list ends the run at once."""
    state = tmp_path / "state"
    argv = ["run", "--attempts", "4", "--backoff", "none", "--retry-exit-codes", "1,75"]
    assert main([*argv, "--", PY, "-c", FLAKY, str(state), "3", "99"]) == 3
    assert len(lines(state)) == 1
    assert "not retrying: 3 is not in --retry-exit-codes" in capfd.readouterr().err
    state.unlink()
    assert main([*argv, "--", PY, "-c", FLAKY, str(state), "75", "3"]) == 0
    assert len(lines(state)) == 3


def test_quiet_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """``--quiet`` silences retryx's own progress lines."""
    state = tmp_path / "state"
    argv = ["run", "-q", "--attempts", "2", "--backoff", "none", "--"]
    assert main([*argv, PY, "-c", FLAKY, str(state), "4", "99"]) == 4
    assert capfd.readouterr().err == ""


def test_waits_go_through_the_retryx_clock(tmp_path: Path) -> None:
    """The waits between attempts are the policy's delays, taken with the retryx clock."""
    state = tmp_path / "state"
    argv = ["run", "-q", "--attempts", "4", "--initial", "0.5", "--jitter", "none", "--"]
    with testing.fake_time() as clock:
        assert main([*argv, PY, "-c", FLAKY, str(state), "1", "99"]) == 1
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_jittered_waits_stay_within_bounds(tmp_path: Path) -> None:
    """With full jitter each wait lies between 0 and the backoff delay."""
    state = tmp_path / "state"
    argv = ["run", "-q", "--attempts", "4", "--initial", "0.5", "--jitter", "full", "--"]
    with testing.fake_time() as clock, testing.seed(3):
        assert main([*argv, PY, "-c", FLAKY, str(state), "1", "99"]) == 1
    assert len(clock.sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, [0.5, 1.0, 2.0], strict=True))


def test_never_sleeps_past_the_deadline(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """When the next wait would cross the deadline, ``run`` gives up at once."""
    state = tmp_path / "state"
    argv = ["run", "--attempts", "5", "--initial", "0.4", "--jitter", "none", "--deadline", "1"]
    with testing.fake_time() as clock:
        assert main([*argv, "--", PY, "-c", FLAKY, str(state), "2", "99"]) == 2
    assert clock.sleeps == [0.4]  # 0.4 + 0.8 would cross 1 s
    assert len(lines(state)) == 2
    assert "would cross the 1s deadline" in capfd.readouterr().err


def test_countdown_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """On a TTY the wait is a live countdown line, rewritten in place and cleared at the end."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    state = tmp_path / "state"
    argv = ["run", "--attempts", "2", "--initial", "0.35", "--jitter", "none", "--"]
    with testing.fake_time() as clock:
        assert main([*argv, PY, "-c", FLAKY, str(state), "1", "2"]) == 0
    text = term.getvalue()
    shown = [part.split("retrying in ")[1] for part in text.split("\r") if "retrying" in part]
    assert shown == ["0.4s\x1b[K", "0.3s\x1b[K", "0.2s\x1b[K", "0.1s\x1b[K"]
    assert text.startswith("\rretryx: attempt 1/2 failed (exit 1); retrying in 0.4s")
    assert text.endswith("\r\x1b[K")
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1, 0.05])


def test_command_not_found_is_127(capsys: pytest.CaptureFixture[str]) -> None:
    """A command that does not exist exits 127 with one error line and is not retried."""
    assert main(["run", "--backoff", "none", "--", "retryx-no-such-command-xyz"]) == 127
    err = capsys.readouterr().err
    assert err.startswith("retryx: error: command not found: retryx-no-such-command-xyz")
    assert len(err.splitlines()) == 1


def test_command_not_executable_is_126(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be executed exits 126."""
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    assert main(["run", "--backoff", "none", "--", str(plain)]) == 126
    assert capsys.readouterr().err.startswith("retryx: error: cannot run")


def test_attempt_timeout_is_capped_by_the_deadline(capfd: pytest.CaptureFixture[str]) -> None:
    """Without ``--timeout`` an attempt still stops when the deadline is reached (status 124)."""
    start = time.monotonic()
    status = main(["run", "--deadline", "0.3", "--", PY, "-c", "import time; time.sleep(20)"])
    assert status == 124
    assert time.monotonic() - start < 10
    assert "giving up" in capfd.readouterr().err


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--"],
        ["--attempts", "0", "--", "true"],
        ["--retry-exit-codes", "0", "--", "true"],
        ["--retry-exit-codes", "1,x", "--", "true"],
        ["--retry-exit-codes", "256", "--", "true"],
        ["--timeout", "0", "--", "true"],
        ["--timeout", "-1", "--", "true"],
        ["--timeout", "soon", "--", "true"],
        ["--deadline", "0", "--", "true"],
        ["--jitter", "bogus", "--", "true"],
        ["--policy", "nosuchpolicy", "--", "true"],
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    """Every invalid ``run`` option prints one ``retryx: error:`` line and exits 2."""
    assert main(["run", *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("retryx: error: ")


def test_options_after_the_command_belong_to_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Everything after ``--`` (or after the command name) is passed to the command untouched."""
    code = "import sys; print(sys.argv[1:])"
    assert main(["run", "--", PY, "-c", code, "--attempts", "0"]) == 0
    assert main(["run", PY, "-c", code, "--", "-x"]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out == ["['--attempts', '0']", "['--', '-x']"]
