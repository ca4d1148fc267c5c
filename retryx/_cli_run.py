"""``retryx run``: run a command (no shell), retrying failing exit statuses per the policy."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import IO

from . import _clock, _engine, _explain
from ._cli_options import HELP_FMT, PROG, Parser, UsageError, build_policy, positive_float
from ._fault import Fault
from ._policy import Policy

__all__ = ["add_parser"]

KILL_GRACE = 5.0
"""Seconds a timed-out child gets between SIGTERM and SIGKILL."""
DEADLINE_GRACE = 0.1
"""Under ``--deadline``, the share of it kept for the kill grace (at most ``KILL_GRACE``):
an attempt the deadline ends gets SIGTERM that long before it and SIGKILL at it."""
_COUNTDOWN_STEP = 0.1
_GROUP_POLL = 0.02
_FAILED = Fault(True, "explicit")  # a failed attempt of `retryx run`, for the retry engine


def _exit_codes(text: str) -> frozenset[int]:
    codes: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 255:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated exit codes 1-255, got {text!r}"
            )
        codes.add(int(part))
    return frozenset(codes)


class _Interrupted(Exception):
    """Raised by the signal handler to cut a wait short."""


def _describe_status(status: int, timed_out: float | None) -> str:
    if timed_out is not None:
        return f"timed out after {_explain.fmt_seconds(timed_out)}, exit {status}"
    if status > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(status - 128).name}, exit {status}"
    return f"exit {status}"


class _CommandRetrier:
    """Runs one command with retries; see ``retryx run --help``."""

    def __init__(
        self,
        cmd: list[str],
        policy: Policy,
        *,
        timeout: float | None,
        retry_codes: frozenset[int] | None,
        quiet: bool,
        err: IO[str],
        foreground: bool = False,
    ) -> None:
        self.cmd = cmd
        self.foreground = foreground
        self.policy = policy
        self.timeout = timeout if timeout is not None else policy.attempt_timeout
        self.retry_codes = retry_codes
        self.quiet = quiet
        self.err = err
        self.tty = not quiet and _isatty(err)
        self.child: subprocess.Popen[bytes] | None = None
        self.signum: int | None = None
        self.waiting = False

    # Signals ------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self._forward()
        if self.waiting:
            self.waiting = False
            raise _Interrupted

    def _forward(self) -> None:
        child = self.child
        if child is not None and self.signum is not None:
            if self.foreground:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(self.signum)
            else:
                _signal_group(child.pid, self.signum)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        saved = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in saved.items():
                # None: a handler not installed from Python; the default is the best guess.
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    # Output -------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.err.write(f"{PROG}: {text}\n")
            self.err.flush()

    # One attempt ----------------------------------------------------------------

    def _attempt(self, limit: float | None, grace: float) -> tuple[int, float | None]:
        """Run the command once; ``(status, timeout that expired or None)``.

        The command runs in a process group of its own (as under GNU ``timeout``), so
        what it starts gets the same signals: on timeout SIGTERM goes to the group,
        then SIGKILL to whatever is left of it after ``grace`` seconds. With
        ``--foreground`` it stays in retryx's group and only it is signalled.
        """
        try:
            proc = subprocess.Popen(self.cmd, process_group=None if self.foreground else 0)
        except FileNotFoundError as exc:
            raise _ExecError(127, f"command not found: {self.cmd[0]} ({exc.strerror})") from None
        except OSError as exc:
            raise _ExecError(126, f"cannot run {self.cmd[0]}: {exc.strerror or exc}") from None
        self.child = proc
        try:
            if self.signum is not None:  # a signal came between fork and here
                self._forward()
            try:
                rc = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                if self.foreground:
                    proc.terminate()
                    try:
                        proc.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                else:
                    _stop_group(proc, grace)
                return 124, limit
        finally:
            self.child = None
        return (128 - rc if rc < 0 else rc), None

    def _wait(self, delay: float, message: str) -> None:
        """Wait ``delay`` seconds through the retryx clock, with a countdown on a TTY."""
        if delay <= 0:
            self._say(f"{message}; retrying now")
            if _clock.zero_wait is not None:  # a fake clock records it
                _clock.zero_wait(0.0)
            return
        self.waiting = True
        try:
            if not self.tty:
                self._say(f"{message}; retrying in {delay:.1f}s")
                _clock.sleep(delay)
                return
            end = _clock.monotonic() + delay
            # One step per tenth of a second, plus slack in case the clock lags.
            for _ in range(math.ceil(delay / _COUNTDOWN_STEP) + 2):
                left = end - _clock.monotonic()
                if left <= 0:
                    break
                shown = math.ceil(round(left * 10, 6)) / 10  # count down to 0.1, never 0.0
                self.err.write(f"\r{PROG}: {message}; retrying in {shown:.1f}s\x1b[K")
                self.err.flush()
                _clock.sleep(min(_COUNTDOWN_STEP, left))
        except _Interrupted:
            pass
        finally:
            self.waiting = False
            if self.tty:
                self.err.write("\r\x1b[K")
                self.err.flush()

    # The loop -----------------------------------------------------------------

    def run(self) -> int:
        """Run until success, a non-retryable status, a signal, or the policy gives up."""
        with self._signals():
            try:
                return self._loop()
            except _ExecError as exc:
                sys.stderr.write(f"{PROG}: error: {exc.message}\n")
                return exc.status

    def _loop(self) -> int:
        p = self.policy
        start = _clock.monotonic()
        previous: float | None = None  # the jitter's memory (decorrelated)
        status = 0
        for attempt in itertools.count(1) if p.attempts is None else range(1, p.attempts + 1):
            limit = self.timeout
            grace = KILL_GRACE
            if p.deadline is not None:
                left = p.deadline - (_clock.monotonic() - start)
                if left <= 0:
                    self._say(f"deadline of {_explain.fmt_seconds(p.deadline)} reached; giving up")
                    return status
                # SIGKILL at the latest at the deadline, SIGTERM a grace before it.
                kill_at = left if limit is None else min(limit + KILL_GRACE, left)
                reserve = min(KILL_GRACE, p.deadline * DEADLINE_GRACE)
                limit = max(0.0, left - reserve if limit is None else min(limit, left - reserve))
                grace = kill_at - limit
            if self.signum is not None:
                return 128 + self.signum
            status, timed_out = self._attempt(limit, grace)
            if self.signum is not None:
                return status  # interrupted: never retried
            if status == 0:
                return 0
            of = p.attempts or "unlimited"
            what = f"attempt {attempt}/{of} failed ({_describe_status(status, timed_out)})"
            if self.retry_codes is not None and status not in self.retry_codes:
                self._say(f"{what}; not retrying: {status} is not in --retry-exit-codes")
                return status
            time_left = None if p.deadline is None else p.deadline - (_clock.monotonic() - start)
            decision = _engine.decide(
                p, _FAILED, idempotent=True, attempt=attempt, previous=previous, remaining=time_left
            )
            if isinstance(decision, _engine.GiveUp):
                if decision.delay is not None and p.deadline is not None:
                    self._say(
                        f"{what}; giving up: waiting {decision.delay:.1f}s would cross the "
                        f"{_explain.fmt_seconds(p.deadline)} deadline"
                    )
                else:
                    self._say(f"{what}; giving up")
                return status
            previous = decision.previous
            self._wait(decision.delay, what)
            if self.signum is not None:
                return 128 + self.signum
        return status  # pragma: no cover - the loop always returns


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when nobody is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its credentials (setuid): it is alive
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """True while a live process (zombies do not count) is in the process group."""
    proc = "/proc"
    if not os.path.isdir(f"{proc}/self"):
        return _signal_group(pgid, 0)  # no /proc: zombies count, the grace bounds it
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        # After the command name: state, ppid, pgrp.
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the attempt's process group, SIGKILL what is left of it after ``grace``.

    Waits for the whole group, not only the command: a grandchild still holding the
    output pipe would keep a reader of ``retryx run`` waiting, and overlap the retry.
    """
    _signal_group(proc.pid, signal.SIGTERM)
    end = time.monotonic() + grace
    for _ in range(math.ceil(grace / _GROUP_POLL) + 2):  # bounded: one step per poll
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(_GROUP_POLL, left))
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


class _ExecError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _cmd_run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("run needs a command: retryx run [options] -- CMD [ARGS ...]")
    policy = build_policy(args)
    retrier = _CommandRetrier(
        cmd,
        policy,
        timeout=args.timeout,
        retry_codes=args.retry_exit_codes,
        quiet=args.quiet,
        err=sys.stderr,
        foreground=args.foreground,
    )
    return retrier.run()


_RUN_EPILOG = """\
examples:
  retryx run -- curl -fsS https://example.com/health
  retryx run --attempts 5 --initial 1 --max 20 --retry-exit-codes 75 -- ./sync.sh
  retryx run --timeout 10 --deadline 60 --quiet -- make deploy

exit status: the last attempt's; 124 when an attempt timed out; 128+N when the
child was killed by signal N; 127/126 when the command cannot be run.
SIGINT/SIGTERM sent to retryx are forwarded to the command and never retried.
"""


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``run`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    run = sub.add_parser(
        "run",
        parents=[policy],
        help="run a command, retrying it when it fails",
        description="Run a command (no shell), retrying failing exit statuses per the policy.",
        epilog=_RUN_EPILOG,
        formatter_class=HELP_FMT,
    )
    run.add_argument(
        "--retry-exit-codes",
        type=_exit_codes,
        metavar="CODES",
        help="retry only these statuses, e.g. 1,75 (default: any non-zero; a timeout is 124)",
    )
    run.add_argument(
        "--timeout", type=positive_float, metavar="S", help="per-attempt timeout in seconds"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    run.add_argument(
        "--foreground",
        action="store_true",
        help="run the command in retryx's process group, so it can read the terminal "
        "(as timeout(1) --foreground: then only the command itself gets signals)",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    run.set_defaults(func=_cmd_run)
