"""A discrete-event simulation of many clients retrying against one small service.

This is the experiment behind AWS's "Exponential Backoff and Jitter" (the
architecture blog's optimistic-concurrency simulator), so its numbers can be
compared: every client wants to make one update to a service that takes at most
``capacity`` updates per read-write window.

- Client arrival: every client starts at time 0, and each message crosses the
  network in a random delay, ``|N(tick / 2, tick / 10)|`` seconds (``tick`` is
  the mean round trip), so the first calls reach the service spread out, not in
  one instant, and so do the retries.
- Service time: a call reads the service's state, gets the answer back, then
  sends its write (a read-write window of one round trip on average). The write
  succeeds unless ``capacity`` writes succeeded since its read; the others fail
  (the conflict of optimistic concurrency) and the client learns it one network
  delay later.
- A failed client waits what the retry engine decides (backoff, jitter, deadline,
  attempts: ``schedule_retry``) and reads again. ``calls`` counts writes (one per
  attempt); ``time`` is when the last client learnt its outcome.

Each jitter kind is run on the same policy and seed. Nothing sleeps for real, and
the work is bounded by ``clients * attempts`` calls. Jitter draws go through the
library's own jitter objects; for the duration of a run they read a private
``random.Random(seed)`` instead of retryx's shared random source, and the network
delays come from another generator seeded from ``seed``, the same for every jitter
kind: a seed gives the same numbers every time, and the kinds differ by their waits
only (with no backoff at all, they give the same results).

With ``--initial 0.01 --max 2 --tick 0.02`` the policy and the network are the
blog's (5 ms base doubled before the first retry, a 2 s cap, 10 ms +- 2 ms each
way): 100 clients make about 1,850 calls without jitter, where a lockstep model
(all clients retrying in the same instant) would make 5,050.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
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

__all__ = [
    "DEFAULT_TICK",
    "JITTERS",
    "MAX_CALLS",
    "NO_BACKOFF_NOTE",
    "Result",
    "describe",
    "render",
    "schedule_retry",
    "simulate",
    "simulate_all",
    "to_json",
    "without_backoff",
]

JITTERS = ("none", "full", "equal", "decorrelated")
"""The jitter kinds compared, in table order."""

MAX_CALLS = 2_000_000
"""Upper bound on ``clients * attempts``: the most calls one run may make."""

DEFAULT_TICK = 0.02
"""The mean network round trip (s): the blog's 10 ms each way."""

_BAR_WIDTH = 30
# Events of one attempt: the read reaches the service, the write reaches it, and the
# client learns that it was served or refused.
_READ, _WRITE, _SERVED, _REFUSED = 0, 1, 2, 3
# The service's answer to a write that lost: a transient fault, no hint.
_OVERLOADED = Fault(True, "throttled")


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


def _check(clients: int, capacity: int, tick: float, attempts: int | None) -> None:
    if attempts is None:
        raise ConfigError("simulate: unlimited attempts (attempts=None) cannot be simulated")
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
    policy: Policy, *, clients: int, capacity: int = 1, tick: float = DEFAULT_TICK, seed: int = 0
) -> Result:
    """Run ``clients`` clients retrying per ``policy`` against a service of ``capacity``.

    Raises:
        ConfigError: for a non-positive ``clients``, ``capacity`` or ``tick``, or
            more than ``MAX_CALLS`` possible calls.
    """
    _check(clients, capacity, tick, policy.attempts)
    rng = random.Random(seed)
    # The network draws from a generator of its own: every jitter kind meets the same
    # network, so runs differ by their waits only (and equal ones give equal results).
    net = random.Random(f"retryx-simulate-network-{seed}")
    # The decisions are the retry engine's, with the budget left out (clients share none).
    policy = policy.replace(budget=None)

    def network() -> float:
        return abs(net.normalvariate(tick / 2, tick / 10))

    made = [0] * clients  # attempts made per client
    previous: list[float | None] = [None] * clients  # the jitter's memory (decorrelated)
    read_at = [0.0] * clients  # when each client's current read reached the service
    wins: list[float] = []  # when the successful writes happened (in time order)
    order = itertools.count()  # ties in time are taken in the order they were made
    calls = succeeded = failed = 0
    last = 0.0
    with _private_rng(rng):
        events = [(network(), next(order), _READ, c) for c in range(clients)]
        heapq.heapify(events)
        # Each write is one attempt and leads to at most one more read, so this ends
        # after at most clients * attempts writes (three events each).
        while events:
            now, _, kind, client = heapq.heappop(events)
            if kind == _READ:
                read_at[client] = now
                later, kind = now + network() + network(), _WRITE  # answer back, write in
            elif kind == _WRITE:
                calls += 1
                made[client] += 1
                # Optimistic concurrency: the write loses to `capacity` writes since its read.
                ok = len(wins) - bisect.bisect_right(wins, read_at[client]) < capacity
                if ok:
                    wins.append(now)
                later, kind = now + network(), _SERVED if ok else _REFUSED
            else:
                last = now
                if kind == _SERVED:
                    succeeded += 1
                    continue
                wait = schedule_retry(policy, made[client], previous[client], now)
                if wait is None:
                    failed += 1
                    continue
                delay, previous[client] = wait
                later, kind = now + delay + network(), _READ
            heapq.heappush(events, (later, next(order), kind, client))
    return Result(
        jitter=_name(policy.jitter_strategy),
        clients=clients,
        calls=calls,
        succeeded=succeeded,
        failed=failed,
        ticks=round(last / tick),
        time=last,
    )


def schedule_retry(
    policy: Policy, attempt: int, previous: float | None, now: float
) -> tuple[float, float | None] | None:
    """The wait before a failed client's next attempt and the jitter's new memory, or
    ``None`` when it gives up (out of attempts, or the wait would cross the deadline).

    The schedule is the retry engine's own decision for a transient fault without a
    hint, the budget left out; ``now`` is the time since the client started.
    """
    decision = _engine.decide(
        policy,
        _OVERLOADED,
        idempotent=True,
        attempt=attempt,
        previous=previous,
        remaining=None if policy.deadline is None else policy.deadline - now,
    )
    if not isinstance(decision, _engine.Wait):
        return None
    return decision.delay, decision.previous


def _name(j: _jitter.Jitter) -> str:
    for name, obj in _jitter.BY_NAME.items():
        if obj is j:
            return name
    return repr(j)


def simulate_all(
    policy: Policy, *, clients: int, capacity: int = 1, tick: float = DEFAULT_TICK, seed: int = 0
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


def describe(clients: int, capacity: int, tick: float, seed: int) -> str:
    """The setting of a run, in one line (the report's first line and the plot's title)."""
    return (
        f"{clients} clients, service capacity {capacity} per read-write window, "
        f"{fmt_seconds(tick)} round trips, seed {seed}"
    )


def without_backoff(policy: Policy) -> bool:
    """True when the policy never waits: jitter then has nothing to spread."""
    backoff = policy.backoff_strategy
    return all(backoff.delay(n) == 0 for n in range(1, min(policy.attempts or 16, 16)))


NO_BACKOFF_NOTE = (
    "with no backoff delay there is nothing for jitter to spread: every jitter kind "
    "retries at once and makes the same calls"
)


def render(
    results: list[Result], *, capacity: int, tick: float, seed: int, policy: Policy | None = None
) -> list[str]:
    """A table of the results and a text bar chart of calls and time to finish."""
    clients = results[0].clients if results else 0
    lines = [describe(clients, capacity, tick, seed)]
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
    if policy is not None and without_backoff(policy):
        lines.append("")
        lines.append(f"note: {NO_BACKOFF_NOTE}")
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
