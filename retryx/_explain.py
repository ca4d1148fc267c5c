"""What a policy will do: its retry schedule, rendered, and the anti-patterns it shows.

Used by ``retryx explain`` and ``retryx config check``, and reusable on its own:
``schedule_rows(policy)`` computes the schedule, ``warnings(policy)`` lists
anti-patterns, ``render(policy)`` draws the table and bar chart.

The schedule assumes the attempts themselves take no time: the cumulative
columns are the time spent waiting before an attempt starts. Jitter bounds come
from each jitter's ``bounds()``; decorrelated jitter grows from the previous
delay, so its worst case follows the previous row's maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from . import _engine
from . import backoff as _backoff
from . import jitter as _jitter
from ._errors import MAX_INT
from ._policy import Policy

__all__ = [
    "MAX_ROWS",
    "Row",
    "delays",
    "fmt_seconds",
    "policy_summary",
    "render",
    "schedule_rows",
    "to_json",
    "warnings",
]

MAX_ROWS = 1000
"""``schedule_rows`` computes at most this many rows; more attempts are summarised."""

MANY_ATTEMPTS = 10
"""More attempts than this draws a warning."""
FIXED_MANY_ATTEMPTS = 5
"""A fixed interval over more attempts than this draws a warning."""
LARGE_CAP = 300.0
"""A delay cap above this many seconds counts as no cap."""

DeadlineMark = Literal["ok", "maybe", "cut"]

_BAR_WIDTH = 30
_HEAD_ROWS = 20
_TAIL_ROWS = 3


@dataclass(frozen=True, slots=True)
class Row:
    """One attempt of the schedule.

    ``delay`` is the backoff's wait before this attempt (before jitter; 0 for
    attempt 1), ``delay_min``/``delay_max`` its bounds after jitter,
    ``best_case``/``worst_case`` the total wait before the attempt starts (sums
    of the minimum and maximum delays). ``deadline`` is ``None`` without a
    deadline, else ``"ok"`` (always starts before it), ``"maybe"`` (cut when
    the jitter draws long delays) or ``"cut"`` (never runs: retryx gives up
    rather than sleep past the deadline).
    """

    attempt: int
    delay: float
    delay_min: float
    delay_max: float
    best_case: float
    worst_case: float
    deadline: DeadlineMark | None


def _mark(policy: Policy, best: float, worst: float) -> DeadlineMark | None:
    d = policy.deadline
    if d is None:
        return None
    if best > d:
        return "cut"
    if worst > d:
        return "maybe"
    return "ok"


def schedule_rows(policy: Policy, *, limit: int = MAX_ROWS) -> list[Row]:
    """The schedule of ``policy``: one ``Row`` per attempt, at most ``limit`` rows."""
    b = policy.backoff_strategy
    rows = [Row(1, 0.0, 0.0, 0.0, 0.0, 0.0, _mark(policy, 0.0, 0.0))]
    prev_lo: float | None = None
    prev_hi: float | None = None
    best = worst = 0.0
    for attempt in range(2, min(policy.attempts or limit, limit) + 1):
        # The engine's bounds for each wait; they may depend on the previous draw
        # (decorrelated): take the extremes over the previous row's range.
        lo_a, hi_a = _engine.bounds(policy, attempt - 1, prev_lo)
        lo_b, hi_b = _engine.bounds(policy, attempt - 1, prev_hi)
        lo, hi = min(lo_a, lo_b), max(hi_a, hi_b)
        best += lo
        worst += hi
        delay = b.delay(attempt - 1)
        rows.append(Row(attempt, delay, lo, hi, best, worst, _mark(policy, best, worst)))
        prev_lo, prev_hi = lo, hi
    return rows


def delays(policy: Policy) -> Iterator[float]:
    """Draw the jittered waits before retry 1, 2, ... (``attempts - 1`` of them).

    The retry engine's own draws (``retryx._engine.draw``): decorrelated jitter
    grows from the previous draw, as in a retried call.
    """
    previous: float | None = None
    n = 0
    while policy.attempts is None or n + 1 < policy.attempts:  # None: unlimited
        n += 1
        previous = _engine.draw(policy, n, previous)
        yield previous


def fmt_seconds(seconds: float) -> str:
    """``0.1s``, ``25.6s``, ``inf``: at most three decimals, no trailing zeros."""
    if math.isinf(seconds):
        return "inf"
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{'0' if text in ('', '-0') else text}s"


def _jitter_name(j: _jitter.Jitter) -> str:
    for name, obj in _jitter.BY_NAME.items():
        if obj is j:
            return name
    return repr(j)


def policy_summary(policy: Policy) -> str:
    """One line naming the policy and its schedule-relevant fields."""
    deadline = "none" if policy.deadline is None else fmt_seconds(policy.deadline)
    name = f"policy {policy.name!r}: " if policy.name else "policy: "
    return (
        f"{name}attempts={policy.attempts}, backoff={policy.backoff_strategy!r}, "
        f"jitter={_jitter_name(policy.jitter_strategy)}, deadline={deadline}"
    )


def warnings(policy: Policy) -> list[str]:
    """Anti-patterns in ``policy``, one sentence each (without a ``warning:`` prefix)."""
    out: list[str] = []
    n = policy.attempts
    if n is None:
        if policy.deadline is None:
            out.append(
                "unlimited attempts and no deadline: the call is unbounded and retries "
                "forever during an outage; set a deadline or a number of attempts"
            )
        else:
            out.append(
                "unlimited attempts: only the deadline bounds the call; during an outage "
                "every client keeps calling until it"
            )
    elif n > MANY_ATTEMPTS:
        tail = " and no deadline" if policy.deadline is None else ""
        out.append(
            f"{n} attempts{tail}: during an outage every client keeps calling; "
            f"use at most {MANY_ATTEMPTS} attempts and a deadline"
        )
    if n == 1:
        return out  # no retry, so no wait to criticise
    shown_n = "unlimited" if n is None else str(n)
    if n is None:
        n = MAX_INT  # unlimited: longer than any schedule shown

    rows = schedule_rows(policy)[1:]
    immediate = sum(1 for r in rows if r.delay_max == 0)
    if immediate > 1:
        out.append(
            f"{immediate} immediate (0 s) retries: only one immediate retry helps; "
            "back off after it (--backoff immediate)"
        )
    cap = _backoff.cap_of(policy.backoff_strategy)
    if math.isinf(cap):
        out.append(
            f"no cap on the delay ({policy.backoff_strategy!r}): waits can grow without bound"
        )
    elif cap > LARGE_CAP:
        out.append(
            f"the delay cap is {fmt_seconds(cap)}, above {fmt_seconds(LARGE_CAP)}: "
            "as good as no cap; lower it"
        )
    if policy.jitter_strategy is _jitter.none and any(r.delay > 0 for r in rows):
        out.append(
            "no jitter: clients that failed together retry together (thundering herd); "
            "use --jitter full"
        )
    distinct = {r.delay for r in rows}
    if n > FIXED_MANY_ATTEMPTS and len(distinct) == 1 and rows[0].delay > 0:
        out.append(
            f"a fixed {fmt_seconds(rows[0].delay)} interval over {shown_n} attempts: "
            "back off exponentially so a struggling service gets room to recover"
        )
    if policy.deadline is not None:
        late = [r for r in rows if r.deadline != "ok"]
        if late:
            total = rows[-1].worst_case
            shown = "" if n <= len(rows) + 1 else f" (first {len(rows) + 1} attempts)"
            out.append(
                f"worst case waits {fmt_seconds(total)}{shown}, beyond the "
                f"{fmt_seconds(policy.deadline)} deadline: attempt {late[0].attempt} and "
                "later may be cut (retryx gives up rather than sleep past it)"
            )
    return out


def _bar(lo: float, hi: float, scale: float) -> str:
    if scale <= 0 or math.isinf(scale):
        return ""
    # (Ratios first: _BAR_WIDTH * 1e308 would overflow to infinity.)
    sure = round(_BAR_WIDTH * min(lo / scale, 1.0))
    total = max(round(_BAR_WIDTH * min(hi / scale, 1.0)), sure, 1 if hi > 0 else 0)
    return "#" * sure + "-" * (total - sure)


def render(policy: Policy, *, show_warnings: bool = True) -> list[str]:
    """The summary line, the schedule table with its bar chart, then ``warning:`` lines."""
    rows = schedule_rows(policy)
    finite = [r.delay_max for r in rows[1:] if math.isfinite(r.delay_max)]
    scale = max(finite, default=0.0)
    header = ("attempt", "wait min", "wait max", "worst case", "deadline")
    table: list[tuple[str, ...]] = [header]
    bars: list[str] = [""]
    for r in rows:
        first = r.attempt == 1
        table.append(
            (
                str(r.attempt),
                "-" if first else fmt_seconds(r.delay_min),
                "-" if first else fmt_seconds(r.delay_max),
                fmt_seconds(r.worst_case),
                "-" if r.deadline is None else r.deadline,
            )
        )
        bars.append("" if first else _bar(r.delay_min, r.delay_max, scale))
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]

    def line(cells: tuple[str, ...], bar: str) -> str:
        text = "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        return f"{text}  {bar}".rstrip()

    lines = [policy_summary(policy), line(header, "wait (# sure, - jitter)")]
    body = [line(cells, bar) for cells, bar in zip(table[1:], bars[1:], strict=True)]
    if len(body) > _HEAD_ROWS + _TAIL_ROWS + 1:
        skipped = len(body) - _HEAD_ROWS - _TAIL_ROWS
        body = [*body[:_HEAD_ROWS], f"  ... {skipped} more rows ...", *body[-_TAIL_ROWS:]]
    lines.extend(body)
    if policy.attempts is None:
        lines.append(f"(schedule shows the first {len(rows)} of unlimited attempts)")
    elif policy.attempts > len(rows):
        lines.append(f"(schedule shows the first {len(rows)} of {policy.attempts} attempts)")
    if policy.deadline is not None:
        lines.append(
            "deadline: ok = starts in time, maybe = cut when jitter draws long waits, "
            "cut = never runs"
        )
    if show_warnings:
        lines.extend(f"warning: {w}" for w in warnings(policy))
    return lines


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def to_json(policy: Policy) -> dict[str, Any]:
    """The schedule and warnings as JSON-ready data (``null`` stands for infinity)."""
    rows = schedule_rows(policy)
    return {
        "policy": {
            "name": policy.name,
            "attempts": policy.attempts,
            "backoff": repr(policy.backoff_strategy),
            "jitter": _jitter_name(policy.jitter_strategy),
            "deadline": policy.deadline,
            "cap": _num(_backoff.cap_of(policy.backoff_strategy)),
        },
        "rows": [
            {
                "attempt": r.attempt,
                "delay": _num(r.delay),
                "delay_min": _num(r.delay_min),
                "delay_max": _num(r.delay_max),
                "best_case": _num(r.best_case),
                "worst_case": _num(r.worst_case),
                "deadline": r.deadline,
            }
            for r in rows
        ],
        "truncated": policy.attempts is None or policy.attempts > len(rows),
        "worst_case": _num(rows[-1].worst_case),
        "warnings": warnings(policy),
    }
