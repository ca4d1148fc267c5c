"""The budget half of ``retryx.redis``: budgets shared through the ``BUDGET`` script.

The budget is read and updated only through the methods of ``_store.SharedBudget``:
its batched successes go with each round trip, and it adopts the shared count.
"""

from __future__ import annotations

from typing import Any

from ._redis_client import ERRORS, text
from ._redis_link import Entry, Registry
from ._redis_scripts import TTL_MIN_MS
from ._store import SharedBudget

__all__ = ["SharedBudgets"]


def _args(op: str, budget: SharedBudget, taken: int, until: str | int) -> list[str | int]:
    """The script's ARGV: the seed is the local count when below the max."""
    tokens = budget.tokens
    seed = repr(tokens) if tokens < budget.max_tokens else ""
    ratio = repr(budget.token_ratio)
    return [op, repr(budget.max_tokens), ratio, TTL_MIN_MS, taken, seed, until]


class SharedBudgets(Registry[SharedBudget]):
    """The budgets a store shares, and the round trips on them (``BudgetStore``'s work)."""

    def attach(self, budget: SharedBudget) -> None:
        """Register ``budget`` and read the fleet's count now (one round trip)."""
        assert budget.name is not None  # RetryBudget requires one with a store
        self._register(budget, budget.name)
        self.op(budget, "sync")  # the first use sees the fleet's count

    def op(self, budget: SharedBudget, op: str) -> bool:
        """One script call on ``budget``'s key; False to go local."""
        entry = self._held(budget)
        if entry is None:
            return False
        link = self._link
        try:
            taken = budget._take_successes()
            args = _args(op, budget, taken, link.valid_until())
            try:
                with link.round_trip() as sent:
                    row = self.script(keys=[entry.key], args=args)
            except ERRORS as exc:
                budget._give_back_successes(taken)
                link.failed(exc)
                return False
            link.calibrate(sent, int(row[1]))
            self._adopt(budget, taken, row)
        finally:
            entry.lock.release()
        link.recovered()
        return True

    # --- the sync, in the store's one pipelined round trip (every entry lock held) ------

    def queue(
        self, entries: list[tuple[SharedBudget, Entry]], pipe: Any, until: str | int
    ) -> list[tuple[SharedBudget, int]]:
        """Add each budget's sync to ``pipe``, with its batched successes."""
        items: list[tuple[SharedBudget, int]] = []
        for budget, entry in entries:
            taken = budget._take_successes()
            self.script(keys=[entry.key], args=_args("sync", budget, taken, until), client=pipe)
            items.append((budget, taken))
        return items

    @staticmethod
    def give_back(items: list[tuple[SharedBudget, int]]) -> None:
        """The sync failed: the successes it carried are reported again next time."""
        for budget, taken in items:
            budget._give_back_successes(taken)

    def apply(self, items: list[tuple[SharedBudget, int]], rows: list[Any]) -> None:
        """Adopt the sync's answers."""
        for (budget, taken), row in zip(items, rows, strict=True):
            self._adopt(budget, taken, row)

    @staticmethod
    def _adopt(budget: SharedBudget, taken: int, row: Any) -> None:
        if int(row[2]):  # ignored as late: the successes were not counted
            budget._give_back_successes(taken)
        budget._adopt_shared(float(text(row[0])))
