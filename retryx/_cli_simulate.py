"""``retryx simulate``: many clients retrying against a small service, once per jitter kind."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._cli_options import HELP_FMT, Parser, UsageError, build_policy, positive_float, positive_int
from ._policy import Policy

__all__ = ["add_parser"]


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


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``simulate`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    sim = sub.add_parser(
        "simulate",
        parents=[policy],
        help="simulate many clients retrying against a small service",
        description="Simulate N clients contending for a service, once per jitter kind.",
        epilog=_SIMULATE_EPILOG,
        formatter_class=HELP_FMT,
    )
    sim.add_argument("--clients", type=positive_int, required=True, metavar="N")
    sim.add_argument(
        "--capacity",
        type=positive_int,
        default=1,
        metavar="C",
        help="updates the service takes per read-write window (1)",
    )
    sim.add_argument(
        "--tick",
        type=positive_float,
        metavar="S",
        help="mean network round trip in seconds (0.02)",
    )
    sim.add_argument("--seed", type=int, metavar="S", help="random seed (default: random)")
    sim.add_argument("--json", action="store_true", help="print JSON")
    sim.add_argument("--plot", metavar="FILE.png", help="draw a chart (needs matplotlib)")
    sim.set_defaults(func=_cmd_simulate)
