"""Per-callable counters behind ``retryx.stats``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Recorder", "Stats", "block_recorder", "recorder_of"]

T = TypeVar("T")

_FOLD_AT = 256  # pending first-attempt successes kept before folding (bounded memory)


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of one decorated callable's counters.

    ``calls`` = ``successes`` + ``failures`` (calls that ended in an exception);
    ``attempts`` counts every attempt, ``retries`` the attempts after the first;
    ``gave_up`` counts calls a retry layer ended (permanent faults included);
    ``by_cause`` counts every failed attempt by cause; ``rejections`` counts calls
    a breaker refused; ``switches`` counts endpoint failures in failover sweeps
    (the last endpoint's included).
    Times are seconds.
    """

    calls: int = 0
    successes: int = 0
    failures: int = 0
    attempts: int = 0
    retries: int = 0
    gave_up: int = 0
    total_elapsed: float = 0.0
    max_elapsed: float = 0.0
    by_cause: dict[str, int] = field(default_factory=dict)
    rejections: int = 0
    switches: int = 0


Stats.__module__ = "retryx"


class Recorder:
    """Exact counters for one pipeline, booked lock-free and folded under a lock."""

    __slots__ = (
        "_lock",
        "by_cause",
        "causes",
        "failures",
        "finished",
        "gave_up",
        "max_elapsed",
        "pending",
        "rejections",
        "retries",
        "successes",
        "switches",
        "total_elapsed",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[float] = []  # elapsed times of first-attempt successes
        # The causes of failed attempts: the retry engine appends each one itself
        # (atomic, like a success) and folds past _FOLD_AT.
        self.causes: list[str] = []
        # (elapsed, ok, retries, gave_up) of calls that took the slow path
        self.finished: list[tuple[float, bool, int, bool]] = []
        self._zero()

    def reset(self) -> None:
        """Zero every counter (what was booked so far is dropped)."""
        with self._lock:
            _take(self.pending)
            _take(self.causes)
            _take(self.finished)
            self._zero()

    def _zero(self) -> None:
        """Zero the folded counters (lock held, or in ``__init__``)."""
        self.successes = 0
        self.failures = 0
        self.retries = 0
        self.gave_up = 0
        self.total_elapsed = 0.0
        self.max_elapsed = 0.0
        self.rejections = 0
        self.switches = 0
        self.by_cause: dict[str, int] = {}

    # The hot path (a call that returned on its first attempt) appends its elapsed
    # time to ``pending`` itself: ``list.append`` is atomic under the GIL, so the
    # call is booked exactly without a lock, and ``fold`` adds them up in batches
    # of ``_FOLD_AT`` (memory stays bounded).

    def fold(self) -> None:
        """Add the pending successes, finished calls and failed attempts into the counters."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        """``fold`` with the lock held."""
        batch = _take(self.pending)
        if batch:
            self.successes += len(batch)
            self.total_elapsed += sum(batch)
            most = max(batch)
            if most > self.max_elapsed:
                self.max_elapsed = most
        for elapsed, ok, retries, gave_up in _take(self.finished):
            if ok:
                self.successes += 1
            else:
                self.failures += 1
            self.retries += retries
            if gave_up:
                self.gave_up += 1
            self.total_elapsed += elapsed
            if elapsed > self.max_elapsed:
                self.max_elapsed = elapsed
        by_cause = self.by_cause
        for cause in _take(self.causes):
            by_cause[cause] = by_cause.get(cause, 0) + 1

    def finish(self, elapsed: float, ok: bool, retries: int, gave_up: bool) -> None:
        """A call that took the slow path (retried, failed or gave up): appended like
        a success, added up by ``fold``.
        """
        finished = self.finished
        finished.append((elapsed, ok, retries, gave_up))
        if len(finished) > _FOLD_AT:
            self.fold()

    def rejected(self) -> None:
        """A breaker refused a call (or an endpoint) without running it."""
        with self._lock:
            self.rejections += 1

    def switched(self) -> None:
        """An endpoint failed during a failover sweep."""
        with self._lock:
            self.switches += 1

    def snapshot(self, reset: bool = False) -> Stats:
        """The counters now, as a frozen ``Stats``; ``reset`` zeroes them in the same
        locked step, so a call booked meanwhile counts in this snapshot or the next."""
        with self._lock:
            self._fold()
            calls = self.successes + self.failures
            snapshot = Stats(
                calls=calls,
                successes=self.successes,
                failures=self.failures,
                attempts=calls + self.retries,
                retries=self.retries,
                gave_up=self.gave_up,
                total_elapsed=self.total_elapsed,
                max_elapsed=self.max_elapsed,
                by_cause=dict(self.by_cause),
                rejections=self.rejections,
                switches=self.switches,
            )
            if reset:
                self._zero()
            return snapshot


def _take(items: list[T]) -> list[T]:
    """The items appended so far, removed from ``items``.

    Each step is one C call, so atomic under the GIL: items appended meanwhile lie
    past ``n`` and wait for the next fold (only ``fold`` and ``reset`` remove, both
    under the recorder's lock).
    """
    n = len(items)
    taken = items[:n]
    del items[:n]
    return taken


# The recorders of retry blocks (``retryx.attempts``), by name: blocks of one name book
# into one recorder, which ``stats(name)`` reads.
_block_recorders: dict[str, Recorder] = {}


def block_recorder(name: str, limit: int) -> Recorder:
    """The recorder of the blocks named ``name``, made on first use; past ``limit``
    names the oldest is forgotten (the caller holds its lock)."""
    recorder = _block_recorders.get(name)
    if recorder is None:
        if len(_block_recorders) >= limit:
            _block_recorders.pop(next(iter(_block_recorders)))
        recorder = _block_recorders[name] = Recorder()
    return recorder


def recorder_of(name: str) -> Recorder | None:
    """The recorder the blocks named ``name`` book into, if any ran."""
    return _block_recorders.get(name)
