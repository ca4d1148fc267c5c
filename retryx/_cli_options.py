"""What every ``retryx`` command shares: the parser class, usage errors and the policy options.

``build_policy`` turns the policy options (``--policy``, ``--attempts``, ``--backoff``,
...) into a ``Policy``; ``explain``, ``run``, ``connect`` and ``simulate`` take them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from . import backoff as _backoff
from . import jitter as _jitter
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


def _seconds_list(text: str) -> list[float]:
    """``--delays``: comma-separated seconds (checked by the backoff)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seconds, got {text!r}"
        ) from None


# How the command line shows and reads the options of the backoff and jitter kinds; the
# kinds and the options each takes come from backoff.KINDS and jitter.KINDS. An option
# not listed here is a number of seconds.
_BACKOFF_HELP: dict[str, tuple[str, str]] = {
    "initial": ("S", "first delay of the backoff"),
    "multiplier": ("X", "growth factor"),
    "max": ("S", "cap on the delay"),
    "min": ("S", "floor under every delay"),
    "step": ("S", "seconds added per retry"),
    "delay": ("S", "the delay before every retry"),
    "then": (
        "KIND",
        "the backoff after the one 0 s retry, default exponential; the other "
        "backoff options apply to it",
    ),
    "delays": ("S,S,...", "the delays of retries 1, 2, ...; the last one repeats"),
}
_JITTER_HELP: dict[str, tuple[str, str]] = {
    "factor": ("F", "each delay times uniform(1-F, 1+F)"),
    "max": ("S", "each delay plus uniform(0, S)"),
}
_OPTION_TYPES: dict[str, Callable[[str], Any]] = {"delays": _seconds_list}
# For ``fixed``, ``--initial`` also gives its delay, as before ``--delay`` existed.
_ALIASES = {("fixed", "initial"): "delay"}


def _options_of(
    kinds: Mapping[str, Any], parameters: Callable[[str], tuple[str, ...]]
) -> dict[str, list[str]]:
    """Each option, with the kinds that take it, in the order the kinds list them."""
    users: dict[str, list[str]] = {}
    for kind in kinds:
        for name in parameters(kind):
            users.setdefault(name, []).append(kind)
    return users


def _backoff_options() -> dict[str, list[str]]:
    return _options_of(_backoff.KINDS, _backoff.parameters)


def _jitter_options() -> dict[str, list[str]]:
    return _options_of(_jitter.KINDS, _jitter.parameters)


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
        choices=sorted(_backoff.KINDS),
        help="backoff kind (default: exponential)",
    )
    for name, kinds in _backoff_options().items():
        metavar, text = _BACKOFF_HELP.get(name, ("S", name))
        if name == "then":
            kwargs: dict[str, Any] = {"choices": sorted(_backoff.KINDS)}
        else:
            kwargs = {"type": _OPTION_TYPES.get(name, float), "metavar": metavar}
        also = [kind for (kind, alias), target in _ALIASES.items() if alias == name]
        users = ", ".join(kinds + [f"{kind}: its {_ALIASES[kind, name]}" for kind in also])
        g.add_argument(f"--{name}", help=f"{text} ({users})", **kwargs)
    g.add_argument("--jitter", choices=list(_jitter.KINDS), help="jitter kind (default: full)")
    for name, kinds in _jitter_options().items():
        metavar, text = _JITTER_HELP.get(name, ("S", name))
        g.add_argument(
            f"--jitter-{name}",
            type=_OPTION_TYPES.get(name, float),
            metavar=metavar,
            help=f"{text} (--jitter {', '.join(kinds)})",
        )
    g.add_argument("--deadline", type=float, metavar="S", help="seconds for the whole call")
    return p


def _build_backoff(args: argparse.Namespace, current: _backoff.Backoff) -> _backoff.Backoff | None:
    given = {k: v for k in _backoff_options() if (v := getattr(args, k)) is not None}
    kind: str | None = args.backoff
    if kind is None and not given:
        return None
    known = _backoff.arguments(current)
    if kind is None:
        if known is None:
            opts = ", ".join(f"--{k}" for k in given)
            raise UsageError(f"{opts} cannot adjust {current!r}; choose --backoff too")
        kind = known[0]
    start = dict(known[1]) if known is not None and known[0] == kind else {}
    return _make_backoff(kind, given, start, f"--backoff {kind}")


def _make_backoff(
    kind: str, given: dict[str, Any], start: dict[str, Any], where: str
) -> _backoff.Backoff:
    """Backoff ``kind`` from the options ``given``, keeping the rest of ``start``.

    The options a kind with a ``then`` backoff does not take apply to that backoff.
    """
    takes = _backoff.parameters(kind)
    own: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in given.items():
        target = name if name in takes else _ALIASES.get((kind, name), name)
        if target in own:
            first = next(k for k in given if _ALIASES.get((kind, k), k) == target)
            raise UsageError(f"--{first} and --{name} both give the {target} of {where}")
        if target in takes:
            own[target] = value
        else:
            rest[name] = value
    if "then" in takes and (rest or "then" in own):
        then_kind: str | None = own.pop("then", None)
        then = start.get("then") or _default_then(kind)
        known = _backoff.arguments(then)
        if then_kind is None:
            if known is None:
                opts = ", ".join(f"--{k}" for k in rest)
                raise UsageError(f"{opts} cannot adjust {then!r}; choose --then too")
            then_kind = known[0]
        inner = dict(known[1]) if known is not None and known[0] == then_kind else {}
        own["then"] = _make_backoff(then_kind, rest, inner, f"{where} --then {then_kind}")
        rest = {}
    for name in rest:
        hint = " (use --step)" if name == "multiplier" and kind == "incremental" else ""
        raise UsageError(f"--{name} does not apply to {where}{hint}")
    for name in _backoff.required(kind):
        if name not in own and name not in start:
            raise UsageError(f"{where} needs --{name}")
    return _backoff.KINDS[kind](**{**start, **own})


def _default_then(kind: str) -> _backoff.Backoff:
    """The ``then`` backoff ``kind`` has when none is given."""
    made = _backoff.arguments(_backoff.KINDS[kind]())
    assert made is not None  # a built-in kind
    then: _backoff.Backoff = made[1]["then"]
    return then


def _build_jitter(args: argparse.Namespace) -> _jitter.Jitter | None:
    given = {k: v for k in _jitter_options() if (v := getattr(args, f"jitter_{k}")) is not None}
    kind: str | None = args.jitter
    if kind is None:
        if given:
            opts = ", ".join(f"--jitter-{k}" for k in given)
            raise UsageError(f"{opts} needs --jitter KIND too")
        return None
    takes = _jitter.parameters(kind)
    for name in given:
        if name not in takes:
            raise UsageError(f"--jitter-{name} does not apply to --jitter {kind}")
    for name in _jitter.required(kind):
        if name not in given:
            raise UsageError(f"--jitter {kind} needs --jitter-{name}")
    return _jitter.make(kind, **given)


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
    j = _build_jitter(args)
    if j is not None:
        changes["jitter"] = j
    if args.deadline is not None:
        changes["deadline"] = args.deadline
    return base.replace(**changes) if changes else base


def policy_given(args: argparse.Namespace) -> bool:
    keys = ["policy", "attempts", "backoff", *_backoff_options(), "jitter", "deadline"]
    keys += [f"jitter_{k}" for k in _jitter_options()]
    return any(getattr(args, k) is not None for k in keys)
