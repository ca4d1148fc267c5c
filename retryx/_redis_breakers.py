"""The breaker half of ``retryx.redis``: breakers shared through the ``BREAKER`` script.

A breaker's state goes to the script's fields and back (``settings``, ``seed``,
``snapshot``), and every round trip on a breaker is one script call
(``SharedBreakers``). The breaker is read and updated only through the methods of
``_store.SharedBreaker``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ._errors import CircuitOpenError
from ._redis_client import ERRORS, text
from ._redis_link import Entry, FallbackState, Link, Registry
from ._redis_scripts import TTL_MIN_MS
from ._store import STORE_LOCAL, BreakerSnapshot, Change, Phase, SharedBreaker

__all__ = ["SharedBreakers", "seed", "settings", "snapshot"]

# A trial slot whose holder never reports (its process died) is reclaimed after
# max(recovery_timeout, this): long enough for any sane trial call to finish.
_LEASE_MIN_MS = 10_000
_PHASES: dict[str, Phase] = {"c": "closed", "o": "open", "h": "half_open", "f": "forced"}
_LETTERS = {phase: letter for letter, phase in _PHASES.items()}
_BY_HAND = {"open": "f", "closed": "c", "half_open": "h"}  # open by hand: forced


def settings(breaker: SharedBreaker) -> list[str | int]:
    """The breaker's settings as the script's ARGV[3:12] (times in ms)."""
    recovery_ms = round(breaker.recovery_timeout * 1000)
    lease_ms = max(recovery_ms, _LEASE_MIN_MS)
    rate = breaker.failure_rate
    return [
        breaker.failure_threshold,
        "" if rate is None else repr(rate),
        breaker.window,
        breaker.minimum_calls,
        recovery_ms,
        breaker.half_open_max_calls,
        breaker.success_threshold,
        max(TTL_MIN_MS, 2 * recovery_ms + lease_ms),
        lease_ms,
    ]


def seed(shared: BreakerSnapshot, fallback: FallbackState, attaching: bool) -> list[str | int]:
    """The local state to write if the key is gone, or an empty seed when pristine.

    With ``fallback``: a key gone after the breaker was attached was lost, and is
    written in that state; at attach, the key is written even when pristine, so that
    a loss can be told from a first use.
    """
    if fallback is not None and not attaching:
        return ["o" if fallback == "open" else "c", shared.generation + 1, 0, 0, ""]
    calls = "".join("1" if failed else "0" for failed in shared.calls)
    if shared.state == "closed" and shared.failures == 0 and "1" not in calls:
        return ["c" if fallback else "", shared.generation, 0, 0, calls if fallback else ""]
    age_ms = 0
    if shared.state != "closed":
        age_ms = max(0, round(shared.opened_age * 1000))
    return [_LETTERS[shared.state], shared.generation, age_ms, shared.failures, calls]


def snapshot(row: Any) -> BreakerSnapshot:
    """The shared state in a script's answer (see ``_redis_scripts.BREAKER``)."""
    return BreakerSnapshot(
        state=_PHASES[text(row[2])],
        generation=int(row[3]),
        opened_age=int(row[4]) / 1000,
        failures=int(row[5]),
        successes=int(row[8]),
        calls=tuple(call == "1" for call in text(row[6])),
    )


class SharedBreakers(Registry[SharedBreaker]):
    """The breakers a store shares, and the round trips on them (``BreakerStore``'s work).

    Args:
        link: the store's link to Redis.
        script: the registered ``BREAKER`` script.
        prefix: the store's key prefix.
        sync_interval: the store's, the ``retry_after`` of an assumed-open rejection.
    """

    def __init__(self, link: Link, script: Any, prefix: str, sync_interval: float) -> None:
        super().__init__(link, script, f"{prefix}breaker:")
        self._sync_interval = sync_interval
        link.watch(self._assume)

    def attach(self, breaker: SharedBreaker) -> None:
        """Register ``breaker`` and read the fleet's state now (one round trip)."""
        self._register(breaker, breaker.name)
        # The first use must see the fleet's state, not a pristine "closed" until the
        # next sync (skipped during an outage).
        shared = breaker._shared_view()
        self.op(breaker, "sync", 0, 0, *seed(shared, self._link.fallback_state, attaching=True))

    def acquire(self, breaker: SharedBreaker) -> int | None:
        """Admit a call on a breaker whose local view is not closed.

        An open view is rejected locally until its recovery time (as last seen in
        Redis); past it, one round trip claims a trial slot atomically, fleet-wide.
        Returns the token, or ``STORE_LOCAL`` to let the in-process state decide.
        """
        if self._link.local():
            if self._link.assumed() == "open":
                raise CircuitOpenError(breaker.name, self._sync_interval)
            return STORE_LOCAL
        breaker._refuse_while_open()
        row = self.op(breaker, "acq")
        if row is None or int(row[0]) == -1:
            return STORE_LOCAL
        code, wait_ms = int(row[0]), int(row[1])
        if code == 0:
            raise CircuitOpenError(breaker.name, math.inf if wait_ms < 0 else wait_ms / 1000)
        return int(row[3]) if code == 2 else None

    def failure(self, breaker: SharedBreaker, token: int | None) -> bool:
        """Report a counted failure at once, with the successes batched before it."""
        if self._link.assumed() == "closed":
            return True  # assumed closed through the outage: no failure is counted
        return self.op(breaker, "fail", -1 if token is None else token) is not None

    def by_hand(
        self, breaker: SharedBreaker, state: Literal["open", "closed", "half_open"]
    ) -> bool:
        """Open (until closed by hand), close or half-open the breaker for every process."""
        return self.op(breaker, "set", _BY_HAND[state]) is not None

    def op(self, breaker: SharedBreaker, op: str, *extra: str | int) -> Any:
        """One script call on ``breaker``'s key; its row, or None to go local."""
        entry = self._held(breaker)
        if entry is None:
            return None
        link = self._link
        try:
            taken = 0
            args: list[str | int] = [op, link.valid_until(), *settings(breaker), *extra]
            if op == "fail":
                reset, taken = self._batched(breaker, entry)
                args += [reset, taken]
            try:
                with link.round_trip() as sent:
                    row = self.script(keys=[entry.key], args=args)
            except ERRORS as exc:
                breaker._give_back_successes(taken)
                link.failed(exc)
                return None
            link.calibrate(sent, int(row[-1]))
            if int(row[0]) == -1:
                breaker._give_back_successes(taken)
            change = self._adopt(breaker, entry, row)
        finally:
            entry.lock.release()
        link.recovered()
        breaker._announce(change)  # outside every lock: subscribers may call back
        return row

    # --- the sync, in the store's one pipelined round trip (every entry lock held) ------

    def queue(
        self, entries: list[tuple[SharedBreaker, Entry]], pipe: Any, until: str | int
    ) -> list[tuple[SharedBreaker, Entry, int]]:
        """Add each breaker's sync to ``pipe``: its batched successes, and its seed."""
        items: list[tuple[SharedBreaker, Entry, int]] = []
        for breaker, entry in entries:
            reset, taken = self._batched(breaker, entry)
            args = ["sync", until, *settings(breaker), reset, taken]
            args += seed(breaker._shared_view(), self._link.fallback_state, attaching=False)
            self.script(keys=[entry.key], args=args, client=pipe)
            items.append((breaker, entry, taken))
        return items

    @staticmethod
    def give_back(items: list[tuple[SharedBreaker, Entry, int]]) -> None:
        """The sync failed: the successes it carried are reported again next time."""
        for breaker, _, taken in items:
            breaker._give_back_successes(taken)

    def apply(
        self, items: list[tuple[SharedBreaker, Entry, int]], rows: list[Any]
    ) -> list[tuple[SharedBreaker, Change]]:
        """Adopt the sync's answers; the state changes to announce."""
        changes: list[tuple[SharedBreaker, Change]] = []
        for (breaker, entry, taken), row in zip(items, rows, strict=True):
            if int(row[0]) == -1:  # ignored as late: the successes were not counted
                breaker._give_back_successes(taken)
            changes.append((breaker, self._adopt(breaker, entry, row)))
        return changes

    # --- internals ------------------------------------------------------------------

    @staticmethod
    def _batched(breaker: SharedBreaker, entry: Entry) -> tuple[int, int]:
        """(reset, successes) to report: the caller holds the entry lock.

        With a window, the shared window counts successes. Counting consecutive
        failures, a success only matters when it ended a run: the closed-state
        success path zeroes the breaker's failures, the shared count when synced.
        """
        if breaker.failure_rate is not None:
            return 0, breaker._take_successes()
        shared = breaker._shared_view()
        # Only while closed: a view opened locally during an outage also has zero
        # failures (the opening cleared them), yet no success ended the run.
        ended = shared.state == "closed" and shared.failures == 0 and entry.seen_failures > 0
        return (1 if ended else 0), 0

    @staticmethod
    def _adopt(breaker: SharedBreaker, entry: Entry, row: Any) -> Change:
        """Adopt a script's answer as the breaker's state; the change, if any."""
        shared = snapshot(row)
        change = breaker._adopt_shared(shared)
        entry.seen_failures = shared.failures
        return change

    def _assume(self, state: Literal["closed", "open"]) -> None:
        """An outage began: every breaker takes ``state`` until Redis answers (its next
        sync adopts the shared state); opened here, it stays open meanwhile."""
        phase: Literal["closed", "forced"] = "forced" if state == "open" else "closed"
        for breaker, entry in self.entries():
            change = breaker._assume(phase)
            # The cleared count is no success that ended the shared run (see _batched).
            entry.seen_failures = 0
            breaker._announce(change)
