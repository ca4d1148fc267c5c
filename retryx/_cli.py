"""The ``retryx`` command line: explain, run, connect, simulate, config check, replay.

``main(argv)`` returns the exit status. Bad usage and invalid policy options
print one line ``retryx: error: ...`` on stderr and return 2. Each command lives
in its own module (``_cli_explain``, ``_cli_run``, ``_cli_connect``,
``_cli_simulate``, ``_cli_config``, ``_cli_replay``); what they share (the parser,
``UsageError``, the policy options) is in ``_cli_options``. Optional parts
(``_config``, ``sockets``, matplotlib) are imported only by the command that needs them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from . import _cli_config, _cli_connect, _cli_explain, _cli_replay, _cli_run, _cli_simulate
from ._cli_connect import parse_endpoint
from ._cli_options import HELP_FMT, PROG, Parser, UsageError, build_policy, policy_parent
from ._errors import ConfigError

__all__ = ["build_policy", "main", "parse_endpoint"]


def _parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Retries, failover and circuit breakers: inspect policies and retry "
        "commands from the shell.",
        epilog="Run 'retryx COMMAND --help' for the options and examples of each command.",
        formatter_class=HELP_FMT,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    policy = policy_parent()
    for command in (_cli_explain, _cli_run, _cli_connect, _cli_simulate, _cli_config, _cli_replay):
        command.add_parser(sub, policy)
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
