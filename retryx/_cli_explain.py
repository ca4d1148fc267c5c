"""``retryx explain``: a policy's retry schedule and its anti-patterns."""

from __future__ import annotations

import argparse
import json
import sys

from . import _explain
from ._cli_options import HELP_FMT, Parser, build_policy

__all__ = ["add_parser"]


def _cmd_explain(args: argparse.Namespace) -> int:
    policy = build_policy(args, name=args.name)
    out = sys.stdout
    if args.json:
        json.dump(_explain.to_json(policy), out, indent=2)
        out.write("\n")
    else:
        out.write("\n".join(_explain.render(policy)) + "\n")
    return 0


_EXPLAIN_EPILOG = """\
examples:
  retryx explain --attempts 5 --backoff exponential --jitter full --deadline 30
  retryx explain payments                 # a named policy from the configuration
  retryx explain --backoff fixed --delay 2 --attempts 8 --jitter none
  retryx explain --policy payments --max 10 --json
"""


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``explain`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    explain = sub.add_parser(
        "explain",
        parents=[policy],
        help="show a policy's retry schedule and its anti-patterns",
        description="Show the retry schedule of a policy (waits with jitter, cumulative "
        "worst case, deadline) and warn about anti-patterns.",
        epilog=_EXPLAIN_EPILOG,
        formatter_class=HELP_FMT,
    )
    explain.add_argument("name", nargs="?", metavar="NAME", help="a named policy")
    explain.add_argument("--json", action="store_true", help="print JSON")
    explain.set_defaults(func=_cmd_explain)
