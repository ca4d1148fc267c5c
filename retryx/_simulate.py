"""A discrete-event simulation of many clients retrying against one small service.

This is the experiment behind AWS's "Exponential Backoff and Jitter": every
client makes its first call at time 0; time advances in ticks and the service
serves at most ``capacity`` calls per tick (picked at random among the callers
of that tick); the others fail and back off per the policy. Each jitter kind is
run on the same policy and seed, counting the calls made and the time until
every client is done. Nothing sleeps for real, and the work is bounded by
``clients * attempts`` calls.

Jitter draws go through the library's own jitter objects; for the duration of
a run they read a private ``random.Random(seed)`` instead of retryx's shared
random source, so a seed gives the same numbers every time.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import _clock, _engine
from . import jitter as _jitter
from ._errors import ConfigError
from ._explain import fmt_seconds
from ._fault import Fault
from ._policy import Policy

__all__ = ["JITTERS", "MAX_CALLS", "Result", "render", "simulate", "simulate_all", "to_json"]

JITTERS = ("none", "full", "equal", "decorrelated")
"""The jitter kinds compared, in table order."""

MAX_CALLS = 2_000_000
"""Upper bound on ``clients * attempts``: the most calls one run may make."""

_BAR_WIDTH = 30


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one run.

    ``calls`` counts every call, failed ones included; ``failed`` counts clients
    that ran out of attempts (or would have crossed the deadline);
    ``time`` is when the last client finished (success or giving up), in
    seconds: ``ticks * tick``.
    """

    jitter: str
    clients: int
    calls: int
    succeeded: int
    failed: int
    ticks: int
    time: float


@contextlib.contextmanager
def _private_rng(rng: random.Random) -> Iterator[None]:
    saved = _clock.rng
    _clock.rng = rng
    try:
        yield
    finally:
        _clock.rng = saved


def _check(clients: int, capacity: int, tick: float, attempts: int) -> None:
    if clients < 1:
        raise ConfigError(f"simulate: clients must be >= 1, got {clients}")
    if capacity < 1:
        raise ConfigError(f"simulate: capacity must be >= 1, got {capacity}")
    if not (tick > 0 and math.isfinite(tick)):
        raise ConfigError(f"simulate: tick must be > 0 seconds, got {tick}")
    if clients * attempts > MAX_CALLS:
        raise ConfigError(
            f"simulate: clients x attempts must be <= {MAX_CALLS}, got {clients} x {attempts}"
        )


def simulate(
    policy: Policy, *, clients: int, capacity: int = 1, tick: float = 0.01, seed: int = 0
) -> Result:
    """Run ``clients`` clients retrying per ``policy`` against a service of ``capacity``.

    Raises:
        ConfigError: for a non-positive ``clients``, ``capacity`` or ``tick``, or
            more than ``MAX_CALLS`` possible calls.
    """
    _check(clients, capacity, tick, policy.attempts)
    rng = random.Random(seed)
    # The service's answer to a call it could not serve: a transient fault, no hint.
    overloaded = Fault(True, "throttled")
    # The decisions are the retry engine's, with the budget left out (clients share none).
    policy = policy.replace(budget=None)
    made = [0] * clients  # attempts made per client
    previous: list[float | None] = [None] * clients  # the jitter's memory (decorrelated)
    due: dict[int, list[int]] = {0: list(range(clients))}
    ticks_heap = [0]
    calls = succeeded = failed = last = 0
    with _private_rng(rng):
        # Each pass handles one tick; every client is scheduled at most
        # `attempts` times, so this ends after at most clients * attempts calls.
        while ticks_heap:
            now = heapq.heappop(ticks_heap)
            callers = due.pop(now)
            calls += len(callers)
            last = now
            if len(callers) <= capacity:
                served = set(callers)
            else:
                served = set(rng.sample(callers, capacity))
            for client in callers:
                made[client] += 1
                if client in served:
                    succeeded += 1
                    continue
                decision = _engine.decide(
                    policy,
                    overloaded,
                    idempotent=True,
                    attempt=made[client],
                    previous=previous[client],
                    remaining=None if policy.deadline is None else policy.deadline - now * tick,
                )
                if not isinstance(decision, _engine.Wait):
                    # Out of attempts, or retryx gives up rather than sleep past the deadline.
                    failed += 1
                    continue
                previous[client] = decision.previous
                later = now + max(1, round(decision.delay / tick))
                if later not in due:
                    due[later] = []
                    heapq.heappush(ticks_heap, later)
                due[later].append(client)
    return Result(
        jitter=_name(policy.jitter_strategy),
        clients=clients,
        calls=calls,
        succeeded=succeeded,
        failed=failed,
        ticks=last,
        time=last * tick,
    )


def _name(j: _jitter.Jitter) -> str:
    for name, obj in _jitter.BY_NAME.items():
        if obj is j:
            return name
    return repr(j)


def simulate_all(
    policy: Policy, *, clients: int, capacity: int = 1, tick: float = 0.01, seed: int = 0
) -> list[Result]:
    """``simulate`` once per jitter kind in ``JITTERS``, same policy and seed."""
    return [
        simulate(
            policy.replace(jitter=kind), clients=clients, capacity=capacity, tick=tick, seed=seed
        )
        for kind in JITTERS
    ]


def _bar(value: float, scale: float) -> str:
    if scale <= 0 or value <= 0:
        return ""
    return "#" * max(1, round(_BAR_WIDTH * value / scale))


def render(results: list[Result], *, capacity: int, tick: float, seed: int) -> list[str]:
    """A table of the results and a text bar chart of calls and time to finish."""
    clients = results[0].clients if results else 0
    lines = [
        f"{clients} clients, service capacity {capacity} per {fmt_seconds(tick)} tick, seed {seed}"
    ]
    header = ("jitter", "calls", "calls/client", "succeeded", "failed", "time to finish")
    table = [header] + [
        (
            r.jitter,
            str(r.calls),
            f"{r.calls / r.clients:.2f}",
            str(r.succeeded),
            str(r.failed),
            fmt_seconds(r.time),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        first = row[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        lines.append(f"{first}  {rest}")
    name_w = max((len(r.jitter) for r in results), default=0)
    for title, values, fmt in (
        ("calls", [float(r.calls) for r in results], lambda v: str(int(v))),
        ("time to finish", [r.time for r in results], fmt_seconds),
    ):
        lines.append("")
        lines.append(title)
        scale = max(values, default=0.0)
        texts = [fmt(v) for v in values]
        val_w = max((len(t) for t in texts), default=0)
        for r, v, t in zip(results, values, texts, strict=True):
            lines.append(f"  {r.jitter.ljust(name_w)}  {t.rjust(val_w)}  {_bar(v, scale)}".rstrip())
    gave_up = sum(r.failed for r in results)
    if gave_up:
        lines.append("")
        lines.append(
            "note: some clients ran out of attempts or hit the deadline; "
            "raise --attempts to compare complete runs"
        )
    return lines


def to_json(
    results: list[Result], *, policy: Policy, capacity: int, tick: float, seed: int
) -> dict[str, Any]:
    """The results as JSON-ready data."""
    return {
        "clients": results[0].clients if results else 0,
        "capacity": capacity,
        "tick": tick,
        "seed": seed,
        "policy": {
            "name": policy.name,
            "attempts": policy.attempts,
            "backoff": repr(policy.backoff_strategy),
            "deadline": policy.deadline,
        },
        "results": [
            {
                "jitter": r.jitter,
                "calls": r.calls,
                "succeeded": r.succeeded,
                "failed": r.failed,
                "ticks": r.ticks,
                "time": r.time,
            }
            for r in results
        ],
    }
