"""``retryx replay list|run``: inspect and replay deferred calls.

``cli_list`` and ``cli_run`` are also importable from ``retryx.replay``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING

from ._cli_options import HELP_FMT, Parser, positive_int
from ._errors import ConfigError

if TYPE_CHECKING:
    from ._replay_model import ReplayEntry

__all__ = ["add_parser", "cli_list", "cli_run"]


def _cmd_replay_list(args: argparse.Namespace) -> int:
    return cli_list(args.url)


def _cmd_replay_run(args: argparse.Namespace) -> int:
    return cli_run(args.url, args.limit)


_REPLAY_EPILOG = """\
examples:
  retryx replay list sqlite:///deferred.db
  retryx replay run sqlite:///deferred.db --limit 100
  retryx replay run redis://127.0.0.1:6379/0?queue=invoices

exit status of run: 0 when every replay succeeded, 1 when any failed, 2 on bad usage.
"""


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``replay`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    replay = sub.add_parser(
        "replay",
        help="list or replay deferred calls",
        description="Inspect and replay calls stored by @fallback(defer_to=ReplayQueue(...)).",
        epilog=_REPLAY_EPILOG,
        formatter_class=HELP_FMT,
    )
    replay_sub = replay.add_subparsers(dest="replay_command", metavar="ACTION", required=True)
    rlist = replay_sub.add_parser(
        "list",
        help="list pending and dead-lettered calls",
        description="List the pending and dead-lettered calls of a replay queue.",
        epilog=_REPLAY_EPILOG,
        formatter_class=HELP_FMT,
    )
    rlist.add_argument("url", metavar="URL", help="sqlite:///path.db or redis://...")
    rlist.set_defaults(func=_cmd_replay_list)
    rrun = replay_sub.add_parser(
        "run",
        help="replay pending calls",
        description="Replay pending calls through their own decorated pipelines.",
        epilog=_REPLAY_EPILOG,
        formatter_class=HELP_FMT,
    )
    rrun.add_argument("url", metavar="URL", help="sqlite:///path.db or redis://...")
    rrun.add_argument(
        "--limit", type=positive_int, metavar="N", help="replay at most N calls (default: all)"
    )
    rrun.set_defaults(func=_cmd_replay_run)


def cli_list(url: str) -> int:
    """Print the pending entries and dead letters of the queue at ``url``; exit status."""
    from ._replay_model import redact  # loaded by the command that needs them
    from .replay import ReplayQueue

    try:
        queue = ReplayQueue(url)
        pending, dead = queue.pending(), queue.dead()
    except ConfigError as exc:
        print(f"retryx replay list: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"retryx replay list: error: cannot read {redact(url)}: {exc}", file=sys.stderr)
        return 1
    queue.close()
    for title, entries in (("pending", pending), ("dead", dead)):
        print(f"{title}: {len(entries)}")
        if entries:
            print(_table(entries))
    return 0


def _table(entries: list[ReplayEntry]) -> str:
    header = ("CALL_ID", "TARGET", "ATTEMPTS", "CREATED", "LAST_ERROR")
    rows = [
        (
            e.call_id,
            e.target,
            str(e.attempts),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at)),
            _shorten(e.last_error, 80),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join((*cells, row[-1])).rstrip())
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def cli_run(url: str, limit: int | None = None) -> int:
    """Replay the queue at ``url`` (up to ``limit`` entries), printing failures and a
    summary; a progress bar goes to stderr on a terminal. Exit status: 1 when any
    replay failed, 2 for a bad URL or limit, else 0.
    """
    from ._replay_model import check_limit, describe_error, redact
    from .replay import ReplayQueue

    # Targets are imported by name: like `python -m`, look in the working directory.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        queue = ReplayQueue(url)
        check_limit(limit, "--limit")
        total = queue._backend.count()
    except ConfigError as exc:
        print(f"retryx replay run: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"retryx replay run: error: cannot read {redact(url)}: {exc}", file=sys.stderr)
        return 1
    if limit is not None:
        total = min(total, limit)
    bar = _ProgressBar(total) if sys.stderr.isatty() else None
    done = [0, 0]  # replayed, failed: what to report if the storage fails mid-run

    def progress(entry: ReplayEntry, error: str | None) -> None:
        done[0] += 1
        if error is not None:
            done[1] += 1
            if bar is not None:
                bar.clear()
            print(f"failed  {entry.call_id}  {entry.target}: {_shorten(error, 200)}", flush=True)
        if bar is not None:
            bar.step()

    try:
        report = queue._replay(limit, progress)
    except Exception as exc:
        # The storage failed after the queue opened (disk full, read-only file, Redis
        # gone): one line, exit 1. Nothing is lost: an entry is removed only once its
        # replay is recorded; one whose outcome could not be written keeps its claim,
        # which expires after claim_timeout, and it is replayed again.
        if bar is not None:
            bar.clear()
        with contextlib.suppress(Exception):
            queue.close()
        print(
            f"retryx replay run: error: the queue at {redact(url)} failed after {done[0]} "
            f"replayed ({done[1]} failed): {describe_error(exc)}; unfinished entries "
            "stay queued",
            file=sys.stderr,
        )
        return 1
    finally:
        if bar is not None:
            bar.clear()
    with contextlib.suppress(Exception):
        queue.close()
    print(
        f"replayed {report.replayed}: {report.succeeded} succeeded, {report.failed} failed"
        f" ({report.dead} moved to dead letters)"
    )
    return 1 if report.failed else 0


class _ProgressBar:
    """A one-line bar on stderr, drawn only once a run has lasted ``delay`` seconds."""

    delay = 0.5

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.start = time.monotonic()
        self.drawn_at = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.drawn_at < 0.1 and self.done < self.total):
            return
        self.drawn_at = now
        filled = min(30, 30 * self.done // self.total)
        rate = self.done / max(now - self.start, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} ({rate:.0f}/s)"
        )
        sys.stderr.flush()

    def clear(self) -> None:
        if self.drawn_at:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
