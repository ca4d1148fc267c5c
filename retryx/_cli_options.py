"""What every ``retryx`` command shares: the parser class, usage errors and the policy options.

``build_policy`` turns the policy options (``--policy``, ``--attempts``, ``--backoff``,
...) into a ``Policy``; ``explain``, ``run``, ``connect`` and ``simulate`` take them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from . import backoff as _backoff
from ._policy import Policy

__all__ = [
    "HELP_FMT",
    "PROG",
    "Parser",
    "UsageError",
    "build_policy",
    "policy_given",
    "policy_parent",
    "positive_float",
    "positive_int",
]

PROG = "retryx"
HELP_FMT = argparse.RawDescriptionHelpFormatter


class UsageError(Exception):
    """Bad command-line usage: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line ``retryx: error: ...``, status 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"{PROG}: error: {text}\n")
        raise SystemExit(2)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {text!r}")
    return value


def positive_int(text: str) -> int:
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


def policy_parent() -> Parser:
    p = Parser(add_help=False)
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


def policy_given(args: argparse.Namespace) -> bool:
    keys = ("policy", "attempts", "backoff", "initial", "max", "multiplier", "step")
    return any(getattr(args, k) is not None for k in (*keys, "jitter", "deadline"))
