"""The ``retryx`` command line: explain, run, connect, simulate, config check.

``main(argv)`` returns the exit status. Bad usage and invalid policy options
print one line ``retryx: error: ...`` on stderr and return 2. Optional parts
(``_config``, ``sockets``, matplotlib) are imported only by the subcommand
that needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import IO, Any, NoReturn

from . import _clock, _engine, _explain
from . import backoff as _backoff
from ._errors import ConfigError
from ._fault import Fault
from ._policy import Policy

__all__ = ["main"]

PROG = "retryx"
KILL_GRACE = 5.0
"""Seconds a timed-out child gets between SIGTERM and SIGKILL."""
DEADLINE_GRACE = 0.1
"""Under ``--deadline``, the share of it kept for the kill grace (at most ``KILL_GRACE``):
an attempt the deadline ends gets SIGTERM that long before it and SIGKILL at it."""
SEND_MAX_BYTES = 65536
"""``connect --send`` reads at most this much of the reply."""
_COUNTDOWN_STEP = 0.1
_GROUP_POLL = 0.02
_FAILED = Fault(True, "explicit")  # a failed attempt of `retryx run`, for the retry engine


class UsageError(Exception):
    """Bad command-line usage: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line ``retryx: error: ...``, status 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"{PROG}: error: {text}\n")
        raise SystemExit(2)


# --------------------------------------------------------------------------- parsing


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _attempts_arg(text: str) -> int | str:
    """``--attempts``: an integer (checked by ``Policy``), or ``unlimited``."""
    if text == "unlimited":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or 'unlimited', got {text!r}"
        ) from None


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


_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d+)$")


def parse_endpoint(text: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` as ``(host, port)``.

    Raises:
        UsageError: when ``text`` is not of that form or the port is out of range.
    """
    m = _ENDPOINT.match(text)
    port = int(m["port"]) if m else 0
    if m is None or not 1 <= port <= 65535:
        raise UsageError(f"endpoint must be HOST:PORT (port 1-65535), got {text!r}")
    return (m["v6"] or m["host"], port)


def _policy_parent() -> _Parser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("policy options")
    g.add_argument("--policy", metavar="NAME", help="start from the named policy in the config")
    g.add_argument(
        "--attempts",
        type=_attempts_arg,
        metavar="N",
        help="attempts, the first included, or 'unlimited'",
    )
    g.add_argument(
        "--backoff",
        choices=sorted(_backoff.BY_NAME),
        help="backoff kind (default: exponential)",
    )
    g.add_argument(
        "--initial",
        type=float,
        metavar="S",
        help="first delay of the backoff (fixed: its delay; immediate: the first delay after "
        "the immediate retry)",
    )
    g.add_argument("--max", type=float, metavar="S", help="cap on the delay")
    g.add_argument(
        "--multiplier", type=float, metavar="X", help="growth factor (exponential, immediate)"
    )
    g.add_argument("--step", type=float, metavar="S", help="added per retry (incremental)")
    g.add_argument(
        "--jitter", choices=["none", "full", "equal", "decorrelated"], help="default: full"
    )
    g.add_argument("--deadline", type=float, metavar="S", help="seconds for the whole call")
    return p


# Which backoff options each kind takes, and the constructor's name for each.
_BACKOFF_PARAMS: dict[str, dict[str, str]] = {
    "exponential": {"initial": "initial", "multiplier": "multiplier", "max": "max"},
    "immediate": {"initial": "initial", "multiplier": "multiplier", "max": "max"},
    "incremental": {"initial": "initial", "step": "step", "max": "max"},
    "fixed": {"initial": "delay"},
    "none": {},
}


def _backoff_kind(b: _backoff.Backoff) -> tuple[str, dict[str, float]] | None:
    """The kind and options of a built-in backoff, or ``None`` for others."""
    if isinstance(b, _backoff._Exponential):
        return "exponential", {"initial": b.initial, "multiplier": b.multiplier, "max": b.max}
    if isinstance(b, _backoff._Incremental):
        return "incremental", {"initial": b.initial, "step": b.step, "max": b.max}
    if isinstance(b, _backoff._Fixed):
        return "fixed", {"initial": b.delay_s}
    if isinstance(b, _backoff._NoBackoff):
        return "none", {}
    if isinstance(b, _backoff._Immediate):
        then = _backoff_kind(b.then)
        if then is not None and then[0] == "exponential":
            return "immediate", then[1]
    return None


def _build_backoff(args: argparse.Namespace, current: _backoff.Backoff) -> _backoff.Backoff | None:
    given = {
        k: getattr(args, k)
        for k in ("initial", "multiplier", "step", "max")
        if getattr(args, k) is not None
    }
    kind: str | None = args.backoff
    if kind is None and not given:
        return None
    known = _backoff_kind(current)
    if kind is None:
        if known is None:
            opts = ", ".join(f"--{k}" for k in given)
            raise UsageError(f"{opts} cannot adjust {current!r}; choose --backoff too")
        kind = known[0]
    allowed = _BACKOFF_PARAMS[kind]
    for k in given:
        if k not in allowed:
            hint = " (use --step)" if k == "multiplier" and kind == "incremental" else ""
            raise UsageError(f"--{k} does not apply to --backoff {kind}{hint}")
    params = dict(known[1]) if known is not None and known[0] == kind else {}
    params.update(given)
    kw = {allowed[k]: v for k, v in params.items()}
    if kind == "immediate":
        return _backoff.immediate(_backoff.exponential(**kw))
    builder: Callable[..., _backoff.Backoff] = _backoff.BY_NAME[kind]
    return builder(**kw)


def _resolve(name: str) -> Policy:
    try:
        from ._config import resolve_policy
    except ImportError:  # pragma: no cover - _config ships with the package
        raise UsageError("named policies need retryx._config, which is not available") from None
    return resolve_policy(name)


def build_policy(args: argparse.Namespace, *, name: str | None = None) -> Policy:
    """The policy the options describe, starting from ``--policy``/``name`` or the defaults.

    Raises:
        ConfigError: for an invalid value (reported as a usage error).
        UsageError: for options that do not fit together.
    """
    if name and args.policy and name != args.policy:
        raise UsageError(f"two policy names given: {name!r} and --policy {args.policy!r}")
    name = name or args.policy
    base = _resolve(name) if name else Policy()
    changes: dict[str, Any] = {}
    if args.attempts is not None:
        changes["attempts"] = None if args.attempts == "unlimited" else args.attempts
    b = _build_backoff(args, base.backoff_strategy)
    if b is not None:
        changes["backoff"] = b
    if args.jitter is not None:
        changes["jitter"] = args.jitter
    if args.deadline is not None:
        changes["deadline"] = args.deadline
    return base.replace(**changes) if changes else base


def _policy_given(args: argparse.Namespace) -> bool:
    keys = ("policy", "attempts", "backoff", "initial", "max", "multiplier", "step")
    return any(getattr(args, k) is not None for k in (*keys, "jitter", "deadline"))


# --------------------------------------------------------------------------- explain


def _cmd_explain(args: argparse.Namespace) -> int:
    policy = build_policy(args, name=args.name)
    out = sys.stdout
    if args.json:
        json.dump(_explain.to_json(policy), out, indent=2)
        out.write("\n")
    else:
        out.write("\n".join(_explain.render(policy)) + "\n")
    return 0


# --------------------------------------------------------------------------- run


class _Interrupted(Exception):
    """Raised by the signal handler to cut a wait short."""


def _describe_status(status: int, timed_out: float | None) -> str:
    if timed_out is not None:
        return f"timed out after {_explain.fmt_seconds(timed_out)}, exit {status}"
    if status > 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(status - 128).name}, exit {status}"
    return f"exit {status}"


class _Runner:
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
    runner = _Runner(
        cmd,
        policy,
        timeout=args.timeout,
        retry_codes=args.retry_exit_codes,
        quiet=args.quiet,
        err=sys.stderr,
        foreground=args.foreground,
    )
    return runner.run()


# --------------------------------------------------------------------------- connect


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _error_text(exc: BaseException | None) -> str:
    if exc is None:  # a result retry_if_result asked to retry (not in connect's policy)
        return "result"
    text = exc.message if isinstance(exc, BaseExceptionGroup) else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)


def _answered(endpoints: Sequence[str], peer: Any) -> str:
    """The endpoint (as the user wrote it) that the connected socket talks to."""
    text = _addr(peer)
    if text in endpoints:
        return text
    port = peer[1] if isinstance(peer, tuple) and len(peer) >= 2 else None
    same_port = [e for e in endpoints if parse_endpoint(e)[1] == port]
    if len(same_port) == 1:
        return f"{same_port[0]} ({text})"
    return text


def _read_reply(sock: Any, timeout: float) -> bytes:
    """Read until EOF, ``timeout`` seconds, or ``SEND_MAX_BYTES``."""
    end = _clock.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    while size < SEND_MAX_BYTES:  # each pass reads >= 1 byte or ends
        left = end - _clock.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(SEND_MAX_BYTES - size)
        except TimeoutError:
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def _cmd_connect(args: argparse.Namespace) -> int:
    for e in args.endpoints:
        parse_endpoint(e)
    policy = build_policy(args) if _policy_given(args) else None
    try:
        sockets = importlib.import_module("retryx.sockets")
    except ImportError:
        raise UsageError("connect needs retryx.sockets, which is not available") from None
    from . import events
    from ._errors import AllEndpointsFailed

    start = _clock.monotonic()
    log: list[dict[str, Any]] = []

    def record(event: Any) -> None:
        at = _clock.monotonic() - start
        if isinstance(event, events.EndpointFailed):
            log.append(
                {"at": at, "endpoint": _addr(event.endpoint), "error": _error_text(event.exception)}
            )
        elif isinstance(event, events.RetryScheduled):
            log.append(
                {
                    "at": at,
                    "attempt": event.attempt,
                    "retry_in": event.delay,
                    "error": _error_text(event.exception),
                }
            )

    unsubscribe = events.subscribe(record)
    # The command reports each attempt itself: keep the library's log lines
    # (printed by logging's last-resort handler) off the terminal meanwhile.
    quiet_log = logging.NullHandler()
    logging.getLogger("retryx").addHandler(quiet_log)
    sock: Any = None
    failure: Exception | None = None
    try:
        sock = sockets.connect(
            list(args.endpoints), policy=policy, timeout=args.timeout, order=args.order
        )
    except ConfigError:
        raise
    except Exception as exc:
        failure = exc
    finally:
        unsubscribe()
        logging.getLogger("retryx").removeHandler(quiet_log)
    elapsed = _clock.monotonic() - start
    if isinstance(failure, AllEndpointsFailed) and not any("endpoint" in e for e in log):
        log.extend(
            {"at": elapsed, "endpoint": _addr(ep), "error": _error_text(exc)}
            for ep, exc in failure.errors.items()
        )
    result: dict[str, Any] = {
        "connected": sock is not None,
        "endpoint": None,
        "peer": None,
        "local": None,
        "elapsed": elapsed,
        "attempts": log,
        "error": None if failure is None else _error_text(failure),
        "reply": None,
    }
    status = 0
    if sock is not None:
        with sock:
            peer = sock.getpeername()
            result["endpoint"] = _answered(args.endpoints, peer)
            result["peer"] = _addr(peer)
            result["local"] = _addr(sock.getsockname())
            if args.send is not None:
                try:
                    sock.sendall(args.send.encode())
                    with contextlib.suppress(OSError):
                        sock.shutdown(1)  # SHUT_WR: tell the peer we are done sending
                    reply = _read_reply(sock, args.timeout)
                    result["reply"] = reply.decode("utf-8", errors="replace")
                except OSError as exc:
                    result["error"] = f"--send failed: {_error_text(exc)}"
                    status = 1
    else:
        status = 1
    _print_connect(result, as_json=args.json)
    return status


def _print_connect(result: dict[str, Any], *, as_json: bool) -> None:
    out = sys.stdout
    if as_json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return
    for entry in result["attempts"]:
        at = _ms(entry["at"])
        if "endpoint" in entry:
            out.write(f"[{at}] {entry['endpoint']} failed: {entry['error']}\n")
        else:
            out.write(
                f"[{at}] attempt {entry['attempt']} failed; retrying in {entry['retry_in']:.2f}s\n"
            )
    if result["connected"]:
        out.write(
            f"connected to {result['endpoint']} in {_ms(result['elapsed'])} "
            f"(local {result['local']})\n"
        )
        if result["reply"] is not None:
            out.write(f"reply ({len(result['reply'].encode())} bytes):\n{result['reply']}")
            if result["reply"] and not result["reply"].endswith("\n"):
                out.write("\n")
    if result["error"] is not None:
        sys.stderr.write(f"{PROG}: {result['error']}\n")
        if not result["connected"]:
            sys.stderr.write(f"{PROG}: not connected after {_ms(result['elapsed'])}\n")


# --------------------------------------------------------------------------- simulate


def _load_pyplot(path: str) -> Any:
    try:
        mpl = importlib.import_module("matplotlib")
        mpl.use("Agg")
        return importlib.import_module("matplotlib.pyplot")
    except ImportError:
        raise UsageError(
            f"--plot {path} needs matplotlib; install it with: pip install 'retryx[plot]'"
        ) from None


def _cmd_simulate(args: argparse.Namespace) -> int:
    from . import _simulate

    plt = _load_pyplot(args.plot) if args.plot else None
    policy = build_policy(args)
    if args.tick is None:
        args.tick = _simulate.DEFAULT_TICK
    seed = args.seed
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(2**32)
    results = _simulate.simulate_all(
        policy, clients=args.clients, capacity=args.capacity, tick=args.tick, seed=seed
    )
    out = sys.stdout
    if args.json:
        data = _simulate.to_json(
            results, policy=policy, capacity=args.capacity, tick=args.tick, seed=seed
        )
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        lines = _simulate.render(
            results, capacity=args.capacity, tick=args.tick, seed=seed, policy=policy
        )
        if args.jitter is not None:
            lines.append("note: simulate compares every jitter kind; --jitter is not used")
        out.write("\n".join(lines) + "\n")
    if plt is not None:
        title = _simulate.describe(args.clients, args.capacity, args.tick, seed)
        _plot(plt, results, args.plot, title=title, policy=policy)
        if not args.json:
            out.write(f"plot written to {args.plot}\n")
    return 0


def _plot(plt: Any, results: Sequence[Any], path: str, *, title: str, policy: Policy) -> None:
    """Calls and time per jitter kind, each bar labelled with its value, on a log scale
    when they are an order of magnitude apart; the setting and the policy in the title.
    """
    from . import _simulate

    names = [r.jitter for r in results]
    fig, (calls, times) = plt.subplots(1, 2, figsize=(11, 4.8))
    for axes, values, label, fmt in (
        (calls, [r.calls for r in results], "calls (all clients)", "{:,.0f}"),
        (times, [r.time for r in results], "time until every client is done (s)", "{:.3g}"),
    ):
        colors = ["#b0413e", "#3e7cb1", "#3e7cb1", "#3e7cb1"][: len(names)]  # none stands out
        bars = axes.bar(names, values, color=colors)
        positive = [v for v in values if v > 0]
        if positive and max(positive) >= 10 * min(positive):  # an order of magnitude apart
            axes.set_yscale("log")
            label += ", log scale"
        axes.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2)
        axes.set_title(label)
        axes.set_xlabel("jitter")
        axes.margins(y=0.15)
    backoff = policy.backoff_strategy
    subtitle = f"policy: {backoff!r}, {policy.attempts} attempts"
    if policy.deadline is not None:
        subtitle += f", deadline {policy.deadline:g}s"
    if _simulate.without_backoff(policy):
        subtitle += f"\n{_simulate.NO_BACKOFF_NOTE}"
    fig.suptitle(f"{title}\n{subtitle}", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"cannot write --plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- config


def _cmd_config_check(args: argparse.Namespace) -> int:
    try:
        from . import _config
    except ImportError:
        raise UsageError("config check needs retryx._config, which is not available") from None
    try:
        report, problems = _config.check(args.file)
    except Exception as exc:  # a value no check foresaw: one line, never a traceback
        sys.stderr.write(f"{PROG}: error: {type(exc).__name__}: {exc}\n")
        return 1
    out = sys.stdout
    for line in report:
        out.write(f"{line}\n")
    if problems:
        for problem in problems:
            out.write(f"error: {problem}\n")
        n = len(problems)
        out.write(f"{n} problem{'s' if n != 1 else ''} found\n")
        return 1
    snapshot, _ = _config.scan(args.file)
    for policy in snapshot.policies.values():
        out.write("\n" + "\n".join(_explain.render(policy)) + "\n")
    return 0


# --------------------------------------------------------------------------- replay


def _cmd_replay_list(args: argparse.Namespace) -> int:
    from .replay import cli_list

    return cli_list(args.url)


def _cmd_replay_run(args: argparse.Namespace) -> int:
    from .replay import cli_run

    return cli_run(args.url, args.limit)


# --------------------------------------------------------------------------- parser

_REPLAY_EPILOG = """\
examples:
  retryx replay list sqlite:///deferred.db
  retryx replay run sqlite:///deferred.db --limit 100
  retryx replay run redis://127.0.0.1:6379/0?queue=invoices

exit status of run: 0 when every replay succeeded, 1 when any failed, 2 on bad usage.
"""

_HELP_FMT = argparse.RawDescriptionHelpFormatter

_EXPLAIN_EPILOG = """\
examples:
  retryx explain --attempts 5 --backoff exponential --jitter full --deadline 30
  retryx explain payments                 # a named policy from the configuration
  retryx explain --backoff fixed --initial 2 --attempts 8 --jitter none
  retryx explain --policy payments --max 10 --json
"""

_RUN_EPILOG = """\
examples:
  retryx run -- curl -fsS https://example.com/health
  retryx run --attempts 5 --initial 1 --max 20 --retry-exit-codes 75 -- ./sync.sh
  retryx run --timeout 10 --deadline 60 --quiet -- make deploy

exit status: the last attempt's; 124 when an attempt timed out; 128+N when the
child was killed by signal N; 127/126 when the command cannot be run.
SIGINT/SIGTERM sent to retryx are forwarded to the command and never retried.
"""

_CONNECT_EPILOG = """\
examples:
  retryx connect db1:5432 db2:5432 --attempts 3 --timeout 2
  retryx connect [::1]:8080 --send $'GET / HTTP/1.0\\r\\n\\r\\n'
  retryx connect cache:6379 --json

exit status: 0 when connected, 1 when not, 2 for bad usage.
"""

_SIMULATE_EPILOG = """\
examples:
  retryx simulate --clients 100 --attempts 50 --seed 1
  retryx simulate --clients 1000 --capacity 10 --attempts 30 --initial 0.05 --json
  retryx simulate --clients 100 --attempts 50 --plot jitter.png

Every client starts at t=0 and makes one update: it reads, then writes; each
message crosses the network in about --tick/2 seconds. A write fails when
--capacity writes succeeded since its read; the client backs off per the policy
and tries again. The run is repeated for each jitter kind (none, full, equal,
decorrelated) with the same seed. With --initial 0.01 --max 2 --tick 0.02 it is
the AWS architecture blog's experiment ("Exponential Backoff and Jitter").
"""

_CONFIG_EPILOG = """\
examples:
  retryx config check                     # what retryx.configure() would load
  retryx config check retryx.toml
"""


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Retries, failover and circuit breakers: inspect policies and retry "
        "commands from the shell.",
        epilog="Run 'retryx COMMAND --help' for the options and examples of each command.",
        formatter_class=_HELP_FMT,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    policy = _policy_parent()

    explain = sub.add_parser(
        "explain",
        parents=[policy],
        help="show a policy's retry schedule and its anti-patterns",
        description="Show the retry schedule of a policy (waits with jitter, cumulative "
        "worst case, deadline) and warn about anti-patterns.",
        epilog=_EXPLAIN_EPILOG,
        formatter_class=_HELP_FMT,
    )
    explain.add_argument("name", nargs="?", metavar="NAME", help="a named policy")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.set_defaults(func=_cmd_explain)

    run = sub.add_parser(
        "run",
        parents=[policy],
        help="run a command, retrying it when it fails",
        description="Run a command (no shell), retrying failing exit statuses per the policy.",
        epilog=_RUN_EPILOG,
        formatter_class=_HELP_FMT,
    )
    run.add_argument(
        "--retry-exit-codes",
        type=_exit_codes,
        metavar="CODES",
        help="retry only these statuses, e.g. 1,75 (default: any non-zero; a timeout is 124)",
    )
    run.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="per-attempt timeout in seconds"
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

    connect = sub.add_parser(
        "connect",
        parents=[policy],
        help="open a TCP connection with retry and failover",
        description="Connect to the first endpoint that answers, with retry and failover.",
        epilog=_CONNECT_EPILOG,
        formatter_class=_HELP_FMT,
    )
    connect.add_argument("endpoints", nargs="+", metavar="HOST:PORT")
    connect.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="per-attempt connect timeout, also bounds the --send reply (default 5)",
    )
    connect.add_argument(
        "--order", choices=["priority", "round_robin", "random"], default="priority"
    )
    connect.add_argument("--send", metavar="TEXT", help="send TEXT and print the reply")
    connect.add_argument("--json", action="store_true", help="print JSON")
    connect.set_defaults(func=_cmd_connect)

    sim = sub.add_parser(
        "simulate",
        parents=[policy],
        help="simulate many clients retrying against a small service",
        description="Simulate N clients contending for a service, once per jitter kind.",
        epilog=_SIMULATE_EPILOG,
        formatter_class=_HELP_FMT,
    )
    sim.add_argument("--clients", type=_positive_int, required=True, metavar="N")
    sim.add_argument(
        "--capacity",
        type=_positive_int,
        default=1,
        metavar="C",
        help="updates the service takes per read-write window (1)",
    )
    sim.add_argument(
        "--tick",
        type=_positive_float,
        metavar="S",
        help="mean network round trip in seconds (0.02)",
    )
    sim.add_argument("--seed", type=int, metavar="S", help="random seed (default: random)")
    sim.add_argument("--json", action="store_true", help="print JSON")
    sim.add_argument("--plot", metavar="FILE.png", help="draw a chart (needs matplotlib)")
    sim.set_defaults(func=_cmd_simulate)

    config = sub.add_parser(
        "config",
        help="configuration tools",
        description="Configuration tools.",
        epilog=_CONFIG_EPILOG,
        formatter_class=_HELP_FMT,
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a configuration file and show each policy's schedule.",
        epilog=_CONFIG_EPILOG,
        formatter_class=_HELP_FMT,
    )
    check.add_argument("file", nargs="?", metavar="FILE", help="default: what configure() loads")
    check.set_defaults(func=_cmd_config_check)

    replay = sub.add_parser(
        "replay",
        help="list or replay deferred calls",
        description="Inspect and replay calls stored by @fallback(defer_to=ReplayQueue(...)).",
        epilog=_REPLAY_EPILOG,
        formatter_class=_HELP_FMT,
    )
    replay_sub = replay.add_subparsers(dest="replay_command", metavar="ACTION", required=True)
    rlist = replay_sub.add_parser(
        "list",
        help="list pending and dead-lettered calls",
        description="List the pending and dead-lettered calls of a replay queue.",
        epilog=_REPLAY_EPILOG,
        formatter_class=_HELP_FMT,
    )
    rlist.add_argument("url", metavar="URL", help="sqlite:///path.db or redis://...")
    rlist.set_defaults(func=_cmd_replay_list)
    rrun = replay_sub.add_parser(
        "run",
        help="replay pending calls",
        description="Replay pending calls through their own decorated pipelines.",
        epilog=_REPLAY_EPILOG,
        formatter_class=_HELP_FMT,
    )
    rrun.add_argument("url", metavar="URL", help="sqlite:///path.db or redis://...")
    rrun.add_argument(
        "--limit", type=_positive_int, metavar="N", help="replay at most N calls (default: all)"
    )
    rrun.set_defaults(func=_cmd_replay_run)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retryx")
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run the ``retryx`` command line with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status: int = args.func(args)
        sys.stdout.flush()
    except (UsageError, ConfigError) as exc:
        text = " ".join(str(exc).split())
        sys.stderr.write(f"{PROG}: error: {text}\n")
        return 2
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (``retryx explain | head``): silence the final
        # flush at interpreter exit too.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status
