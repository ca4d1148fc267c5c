"""``retryx replay list|run``: inspect and replay deferred calls (work in ``retryx.replay``)."""

from __future__ import annotations

import argparse

from ._cli_options import HELP_FMT, Parser, positive_int

__all__ = ["add_parser"]


def _cmd_replay_list(args: argparse.Namespace) -> int:
    from .replay import cli_list

    return cli_list(args.url)


def _cmd_replay_run(args: argparse.Namespace) -> int:
    from .replay import cli_run

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
