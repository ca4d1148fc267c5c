"""The store protocols (``retryx._store``): what a breaker and a budget call on their store,
what a store may use of them, and that ``retryx.redis`` keeps to it."""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path
from typing import Any, Literal

import pytest

from retryx import CircuitBreaker, CircuitOpenError, ConfigError, RetryBudget, events
from retryx._store import (
    STORE_LOCAL,
    BreakerSnapshot,
    BreakerStore,
    BudgetStore,
    SharedBreaker,
    SharedBudget,
)
from retryx.testing import FakeClock

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = (BreakerStore, BudgetStore, SharedBreaker, SharedBudget)


def methods(protocol: type) -> set[str]:
    return {
        name
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("__")
    }


class MemoryStore:
    """A ``BreakerStore`` and ``BudgetStore`` kept in this process, written against the
    protocols only: each object decides on its own state (``STORE_LOCAL``, False), and
    ``sync()`` hands the state of the first object of a name to the others, as a
    shared store's sync would."""

    def __init__(self, handles_failures: bool = False) -> None:
        self.handles_failures = handles_failures
        self.breakers: dict[str, list[SharedBreaker]] = {}
        self.budgets: dict[str | None, list[SharedBudget]] = {}
        self.calls: list[str] = []

    def attach_breaker(self, breaker: SharedBreaker) -> None:
        self.calls.append("attach_breaker")
        self.breakers.setdefault(breaker.name, []).append(breaker)

    def _breaker_acquire(self, breaker: SharedBreaker) -> int | None:
        self.calls.append("acquire")
        breaker._refuse_while_open()
        return STORE_LOCAL

    def _breaker_failure(self, breaker: SharedBreaker, token: int | None) -> bool:
        self.calls.append("failure")
        return self.handles_failures

    def _breaker_success(self, breaker: SharedBreaker, token: int) -> bool:
        self.calls.append("success")
        return False

    def _breaker_release(self, breaker: SharedBreaker, token: int) -> bool:
        self.calls.append("release")
        return False

    def _breaker_set(
        self, breaker: SharedBreaker, state: Literal["open", "closed", "half_open"]
    ) -> bool:
        self.calls.append(f"set {state}")
        return False

    def attach_budget(self, budget: SharedBudget) -> None:
        self.budgets.setdefault(budget.name, []).append(budget)

    def _budget_failure(self, budget: SharedBudget) -> bool:
        return False

    def _budget_reset(self, budget: SharedBudget) -> bool:
        return False

    def sync(self) -> None:
        for first, *others in self.breakers.values():
            shared = first._shared_view()
            for other in others:
                other._announce(other._adopt_shared(shared))
        for first, *others in self.budgets.values():
            for other in others:
                other._adopt_shared(first.tokens)


def call(breaker: CircuitBreaker, fail: bool = False) -> str:
    """One call through the breaker's protocol, as the pipeline makes it."""
    try:
        token = breaker._acquire()
    except CircuitOpenError:
        return "rejected"
    if fail:
        breaker._on_failure(token, ConnectionError("down"))
        return "failed"
    breaker._on_success(token)
    return "ok"


# --- the protocols ----------------------------------------------------------------------


def test_every_protocol_method_has_a_docstring() -> None:
    """Each method of the four protocols says in a docstring what it is for."""
    undocumented = [
        f"{protocol.__name__}.{name}"
        for protocol in PROTOCOLS
        for name in sorted(methods(protocol))
        if not inspect.getdoc(getattr(protocol, name))
    ]
    assert [] == undocumented


def test_a_breaker_calls_its_store_through_the_protocol_only() -> None:
    """A breaker with a protocol store attaches once and asks it on every booking."""
    store = MemoryStore()
    breaker = CircuitBreaker("db", failure_threshold=1, store=store)
    assert ["attach_breaker"] == store.calls
    assert "failed" == call(breaker, fail=True)
    assert "rejected" == call(breaker)
    breaker.close()
    assert ["attach_breaker", "failure", "acquire", "set closed"] == store.calls


def test_state_adopted_through_the_protocol_governs_another_breaker(clock: FakeClock) -> None:
    """A breaker that adopts an open breaker's snapshot rejects calls, announces the
    opening, and recovers on its own clock."""
    store = MemoryStore()
    mine = CircuitBreaker("db", failure_threshold=2, recovery_timeout=30.0, store=store)
    theirs = CircuitBreaker("db", failure_threshold=2, recovery_timeout=30.0, store=store)
    assert ["failed", "failed"] == [call(mine, fail=True), call(mine, fail=True)]
    clock.advance(10.0)
    seen: list[Any] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        store.sync()
    finally:
        unsubscribe()
    assert [events.CircuitStateChanged("db", "closed", "open")] == seen
    assert ("open", 20.0) == (theirs.state, theirs.retry_after)
    assert mine.opened_at == theirs.opened_at
    assert "rejected" == call(theirs)
    clock.advance(20.0)
    assert ("half_open", "ok", "closed") == (theirs.state, call(theirs), theirs.state)


def test_a_failure_the_store_handles_is_not_counted_again() -> None:
    """A store returning True from ``_breaker_failure`` has booked it: no local count."""
    breaker = CircuitBreaker("db", failure_threshold=1, store=MemoryStore(handles_failures=True))
    assert ("failed", "closed", 0) == (
        call(breaker, fail=True),
        breaker.state,
        breaker.failure_count,
    )


def test_a_shared_window_counts_each_closed_success_once() -> None:
    """With a store, the window's successes are taken once, and given back when a report fails."""
    breaker = CircuitBreaker(
        "db", failure_rate=0.5, window=10, minimum_calls=5, store=MemoryStore()
    )
    assert ["ok"] * 3 == [call(breaker) for _ in range(3)]
    assert "failed" == call(breaker, fail=True)
    assert (3, 0) == (breaker._take_successes(), breaker._take_successes())
    breaker._give_back_successes(2)
    assert 2 == breaker._take_successes()


def test_an_adopted_window_is_no_success_to_report(clock: FakeClock) -> None:
    """The calls of an adopted snapshot fill the window but are not reported again."""
    breaker = CircuitBreaker("db", failure_rate=0.5, window=4, minimum_calls=4, store=MemoryStore())
    shared = BreakerSnapshot(
        state="closed", generation=7, opened_age=0.0, failures=0, successes=0, calls=(False, True)
    )
    assert None is breaker._adopt_shared(shared)
    assert (1, 0) == (breaker.failure_count, breaker._take_successes())
    assert shared == breaker._shared_view()


def test_a_forced_snapshot_opens_until_closed_by_hand(clock: FakeClock) -> None:
    """Adopting ``"forced"`` opens the breaker with no automatic recovery."""
    breaker = CircuitBreaker("db", recovery_timeout=1.0, store=MemoryStore())
    shared = BreakerSnapshot(state="forced", generation=1, opened_age=5.0, failures=0, successes=0)
    assert ("closed", "open") == breaker._adopt_shared(shared)
    clock.advance(60.0)
    assert ("open", math.inf, "rejected") == (breaker.state, breaker.retry_after, call(breaker))


def test_assume_moves_only_when_the_state_differs() -> None:
    """``_assume`` reports a change once, and leaves a breaker already there alone."""
    breaker = CircuitBreaker("db", store=MemoryStore())
    assert None is breaker._assume("closed")
    assert ("closed", "open") == breaker._assume("forced")
    generation = breaker._shared_view().generation
    assert (None, generation) == (breaker._assume("forced"), breaker._shared_view().generation)


def test_budgets_share_a_count_through_the_protocol() -> None:
    """A budget adopts another's count; its batched successes are taken once."""
    store = MemoryStore()
    mine = RetryBudget(10, 0.5, name="api", store=store)
    theirs = RetryBudget(10, 0.5, name="api", store=store)
    for _ in range(4):
        mine.record_failure()
    store.sync()
    assert 6.0 == theirs.tokens
    theirs.record_success()
    assert (6.5, 1, 0) == (theirs.tokens, theirs._take_successes(), theirs._take_successes())


# --- the check at construction ----------------------------------------------------------


@pytest.mark.parametrize("store", [object(), "redis://127.0.0.1:6379"])
def test_a_breaker_store_must_have_the_protocol_methods(store: object) -> None:
    """Anything without the ``BreakerStore`` methods is refused, naming the field."""
    with pytest.raises(ConfigError, match=r"^CircuitBreaker\.store must be a retryx store"):
        CircuitBreaker("db", store=store)


def test_the_refusal_names_the_missing_methods() -> None:
    """A store lacking one protocol method is refused with that method's name."""

    class NoRelease(MemoryStore):
        _breaker_release = None  # type: ignore[assignment]

    with pytest.raises(ConfigError, match=r"lacks _breaker_release$"):
        CircuitBreaker("db", store=NoRelease())


def test_a_budget_store_must_have_the_protocol_methods() -> None:
    """Anything without the ``BudgetStore`` methods is refused, naming the field."""
    with pytest.raises(ConfigError, match=r"^RetryBudget\.store must be a retryx store"):
        RetryBudget(name="api", store=object())  # type: ignore[arg-type]


# --- retryx.redis keeps to the protocol -------------------------------------------------

# The methods a store may call on a breaker or a budget: the private ones its protocols name.
ALLOWED = {name for name in methods(SharedBreaker) | methods(SharedBudget) if name.startswith("_")}
REDIS_MODULES = sorted(
    [ROOT / "retryx" / "redis.py", *(ROOT / "retryx").glob("_redis_*.py")], key=str
)


def private_uses(path: Path) -> list[str]:
    """Private attributes used on anything but ``self``/``cls`` outside ``ALLOWED``, and
    private attributes written on anything but ``self``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__"):
            continue
        owner = node.value.id if isinstance(node.value, ast.Name) else ast.unparse(node.value)
        written = isinstance(node.ctx, ast.Store | ast.Del)
        if owner in ("self", "cls"):
            continue
        if owner == "store" and path.name == "redis.py" and not written:
            continue  # RedisStore's own module (its sync thread) calls its methods
        if written or node.attr not in ALLOWED:
            found.append(f"{path.name}:{node.lineno} {owner}.{node.attr}")
    return found


def test_the_redis_store_uses_breakers_and_budgets_through_their_protocols() -> None:
    """``retryx.redis`` and its parts call only the protocols' private methods on a
    breaker or a budget, and write no other object's private field."""
    assert len(REDIS_MODULES) >= 5
    assert [] == [use for path in REDIS_MODULES for use in private_uses(path)]


def test_the_scan_sees_a_private_field_written(tmp_path: Path) -> None:
    """The scan above reports a breaker's field written, and a private read off the list."""
    path = tmp_path / "_redis_probe.py"
    path.write_text(
        "def f(breaker):\n    breaker._state = 1\n    breaker._adopt_shared(None)\n"
        "    return breaker._window\n",
        encoding="utf-8",
    )
    expected = ["_redis_probe.py:2 breaker._state", "_redis_probe.py:4 breaker._window"]
    assert expected == private_uses(path)


def local_imports(path: Path) -> set[str]:
    """The retryx modules ``path`` imports (relative imports: ``from . import x``,
    ``from ._x import y``), as module file stems."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found |= {alias.name for alias in node.names}
    return found


def test_the_store_modules_form_no_import_cycle() -> None:
    """``_store`` imports neither side, and no module the redis modules import (directly
    or not) imports them back; each of them stays under 450 lines."""
    package = ROOT / "retryx"
    assert set() == local_imports(package / "_store.py") - {"_errors"}
    ours = {path.stem for path in [*REDIS_MODULES, package / "_store.py"]}
    for name in sorted(ours):
        seen: set[str] = set()
        todo = list(local_imports(package / f"{name}.py"))
        while todo:
            module = todo.pop()
            path = package / f"{module}.py"
            if module in seen or not path.exists():  # (a package: not ours to cross)
                continue
            seen.add(module)
            todo.extend(local_imports(path))
        assert name not in seen, name
    too_long = {p.name: n for p in REDIS_MODULES if (n := len(p.read_text().splitlines())) > 450}
    assert {} == too_long
