"""``retryx config check``: validate a configuration file and show each policy's schedule."""

from __future__ import annotations

import argparse
import sys

from . import _explain
from ._cli_options import HELP_FMT, PROG, Parser, UsageError

__all__ = ["add_parser"]


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


_CONFIG_EPILOG = """\
examples:
  retryx config check                     # what retryx.configure() would load
  retryx config check retryx.toml
"""


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``config`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    config = sub.add_parser(
        "config",
        help="configuration tools",
        description="Configuration tools.",
        epilog=_CONFIG_EPILOG,
        formatter_class=HELP_FMT,
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a configuration file and show each policy's schedule.",
        epilog=_CONFIG_EPILOG,
        formatter_class=HELP_FMT,
    )
    check.add_argument("file", nargs="?", metavar="FILE", help="default: what configure() loads")
    check.set_defaults(func=_cmd_config_check)
