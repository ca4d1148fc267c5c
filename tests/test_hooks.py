"""Per-policy hooks (``on_retry``, ``on_give_up``, ``on_success``), the policy's own
logger and levels, and the call carried by the events (issue 19, items 2 and 3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Policy, backoff, events, retry
from retryx.testing import FakeClock, FaultSequence


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(flavour: str, *outcomes: Any, **fields: Any) -> tuple[Callable[..., Any], Any]:
    """``fetch(user, *, page=1)`` (sync or async) decorated with ``fields``; returns a caller
    and the decorated function."""
    seq = FaultSequence(*outcomes)
    fields.setdefault("name", "fetch")
    fields.setdefault("jitter", "none")
    fields.setdefault("backoff", backoff.fixed(1.0))
    if flavour == "sync":

        def fetch(user: str, *, page: int = 1) -> Any:
            return seq()

        decorated = retry(**fields)(fetch)
        return decorated, decorated

    async def afetch(user: str, *, page: int = 1) -> Any:
        return seq()

    adecorated = retry(**fields)(afetch)
    return (lambda *a, **k: asyncio.run(adecorated(*a, **k))), adecorated


def kinds(log: list[Any]) -> list[str]:
    return [type(e).__name__ for e in log]


# --- hooks ---------------------------------------------------------------------------------


def test_hooks_run_once_per_event_in_order(clock: FakeClock, flavour: str) -> None:
    """``on_retry`` runs once per retry, then ``on_success`` once, in the order of the events."""
    seen: list[Any] = []
    call, _ = build(
        flavour,
        ConnectionError("a"),
        TimeoutError("b"),
        "ok",
        attempts=5,
        on_retry=seen.append,
        on_give_up=seen.append,
        on_success=seen.append,
    )
    assert "ok" == call("ada")
    assert ["RetryScheduled", "RetryScheduled", "Succeeded"] == kinds(seen)
    assert [1, 2, 3] == [seen[0].attempt, seen[1].attempt, seen[2].attempts]


def test_on_give_up_runs_once_with_the_reason(clock: FakeClock, flavour: str) -> None:
    """Running out of attempts runs ``on_give_up`` once with the fault; no ``on_success``."""
    seen: list[Any] = []
    error = ConnectionResetError("gone")
    call, _ = build(
        flavour, error, attempts=3, on_retry=seen.append, on_give_up=seen.append,
        on_success=seen.append,
    )  # fmt: skip
    with pytest.raises(ConnectionResetError):
        call("ada")
    assert ["RetryScheduled", "RetryScheduled", "GaveUp"] == kinds(seen)
    assert ("attempts", error) == (seen[-1].reason, seen[-1].exception)


def test_on_success_runs_on_a_first_attempt_success(clock: FakeClock, flavour: str) -> None:
    """A first-attempt success runs ``on_success`` (attempts 1, the result), with nobody
    subscribed."""
    seen: list[Any] = []
    call, _ = build(flavour, {"id": 7}, on_success=seen.append)
    assert {"id": 7} == call("ada")
    assert 1 == len(seen)
    assert (1, {"id": 7}) == (seen[0].attempts, seen[0].result)


def test_hooks_and_subscribers_see_the_same_event(clock: FakeClock, flavour: str) -> None:
    """A hook gets the very record global subscribers get, after them."""
    order: list[tuple[str, Any]] = []
    events.subscribe(lambda e: order.append(("subscriber", e)))
    call, _ = build(flavour, "ok", on_success=lambda e: order.append(("hook", e)))
    call("ada")
    assert ["subscriber", "hook"] == [who for who, _ in order]
    assert order[0][1] is order[1][1]


def test_a_raising_hook_is_logged_and_skipped(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises is logged on ``retryx`` and skipped: the call goes on and succeeds."""

    def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    call, _ = build(flavour, ConnectionError, "ok", on_retry=broken, on_success=broken)
    with caplog.at_level(logging.ERROR, logger="retryx"):
        assert "ok" == call("ada")
    failures = [r for r in caplog.records if r.exc_info and "hook" in r.getMessage()]
    assert 2 == len(failures)
    assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]


def test_async_hooks_are_awaited_in_order(clock: FakeClock) -> None:
    """An async pipeline awaits coroutine-function hooks, each before the call goes on."""
    seen: list[str] = []

    async def hook(event: Any) -> None:
        await asyncio.sleep(0)  # a real suspension: an un-awaited hook never gets here
        seen.append(type(event).__name__)

    outcomes = FaultSequence(ConnectionError, ConnectionError, "ok")

    @retry(attempts=3, on_retry=hook, on_success=hook, on_give_up=hook, backoff="none")
    async def fetch() -> Any:
        seen.append("attempt")
        return outcomes()

    assert "ok" == asyncio.run(fetch())
    assert [
        "attempt",
        "RetryScheduled",
        "attempt",
        "RetryScheduled",
        "attempt",
        "Succeeded",
    ] == seen


def test_async_hooks_are_awaited_on_give_up_and_first_success(clock: FakeClock) -> None:
    """``on_give_up`` and a first-attempt ``on_success`` are awaited too."""
    seen: list[str] = []

    async def hook(event: Any) -> None:
        await asyncio.sleep(0)
        seen.append(type(event).__name__)

    @retry(attempts=2, on_give_up=hook, on_success=hook, backoff="none")
    async def fetch(fail: bool) -> str:
        if fail:
            raise ConnectionError("down")
        return "ok"

    assert "ok" == asyncio.run(fetch(False))
    with pytest.raises(ConnectionError):
        asyncio.run(fetch(True))
    assert ["Succeeded", "GaveUp"] == seen


@pytest.mark.parametrize("field", ["on_retry", "on_give_up", "on_success"])
def test_an_async_hook_is_refused_on_a_sync_callable(field: str) -> None:
    """A sync pipeline cannot await a hook: ``ConfigError`` at decoration, naming the field."""

    async def hook(event: Any) -> None:
        return None

    def fetch() -> str:
        return "ok"

    with pytest.raises(ConfigError, match=f"Policy.{field}"):
        retry(**{field: hook})(fetch)


@pytest.mark.parametrize("field", ["on_retry", "on_give_up", "on_success"])
def test_a_hook_must_be_callable(field: str) -> None:
    """A hook that is not callable is a ``ConfigError`` naming the field."""
    with pytest.raises(ConfigError, match=f"Policy.{field} must be callable"):
        Policy(**{field: "print"})


def test_hooks_in_a_retry_block(clock: FakeClock) -> None:
    """A retry block runs the policy's hooks like a decorated function."""
    seen: list[Any] = []
    outcomes = FaultSequence(ConnectionError, "ok")
    for attempt in retryx.attempts(attempts=3, on_retry=seen.append, on_success=seen.append):
        with attempt:
            outcomes()
    assert ["RetryScheduled", "Succeeded"] == kinds(seen)


# --- the call in the events ----------------------------------------------------------------


def test_events_carry_the_call(clock: FakeClock, flavour: str) -> None:
    """``RetryScheduled``, ``GaveUp`` and ``Succeeded`` carry the target, the arguments as
    passed (not copied) and the result."""
    received: list[Any] = []
    events.subscribe(received.append)
    call, _ = build(flavour, ConnectionError, "ok", attempts=2)
    assert "ok" == call("ada", page=2)
    scheduled, _waited, succeeded = received
    for event in (scheduled, succeeded):
        assert ("ada",) == event.args
        assert {"page": 2} == event.kwargs
        assert event.target is not None
        assert getattr(event.target, "__name__", None) in ("fetch", "afetch")
    assert "ok" == succeeded.result
    assert scheduled.result is None


def test_gave_up_carries_the_call(clock: FakeClock, flavour: str) -> None:
    """``GaveUp`` carries the arguments too, so a handler can log what failed."""
    seen: list[Any] = []
    call, _ = build(flavour, ConnectionError, attempts=2, on_give_up=seen.append)
    with pytest.raises(ConnectionError):
        call("ada", page=3)
    assert (("ada",), {"page": 3}) == (seen[0].args, seen[0].kwargs)


def test_result_retries_carry_the_result(clock: FakeClock, flavour: str) -> None:
    """A result retry's ``RetryScheduled`` and its ``GaveUp`` carry the result."""
    seen: list[Any] = []
    call, _ = build(
        flavour,
        "busy",
        attempts=2,
        retry_if_result=lambda r: r == "busy",
        on_retry=seen.append,
        on_give_up=seen.append,
    )
    assert "busy" == call("ada")
    assert ["busy", "busy"] == [e.result for e in seen]


def test_a_method_event_carries_self_in_args(clock: FakeClock) -> None:
    """For a method, ``target(*args, **kwargs)`` remakes the call: ``self`` is in ``args``."""
    seen: list[Any] = []
    outcomes = FaultSequence(ConnectionError, "ok")

    class Client:
        @retry(on_retry=seen.append, backoff="none")
        def get(self, path: str) -> Any:
            return outcomes()

    client = Client()
    client.get("/users")
    assert (client, "/users") == seen[0].args


# --- the policy's logger and levels --------------------------------------------------------


def test_log_sends_the_lines_to_the_policys_logger(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``log=logger``: the retry and give-up lines go to that logger, none to ``retryx``."""
    mine = logging.getLogger("myapp.payments")
    call, _ = build(flavour, ConnectionError, attempts=2, log=mine)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionError):
        call("ada")
    mine_records = [r for r in caplog.records if r.name == "myapp.payments"]
    assert [] == [r for r in caplog.records if r.name.startswith("retryx")]
    assert [logging.WARNING, logging.ERROR] == [r.levelno for r in mine_records]


def test_log_false_writes_no_lines_but_events_still_flow(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``log=False``: no log lines; hooks and events go on."""
    seen: list[Any] = []
    call, _ = build(flavour, ConnectionError, attempts=2, log=False, on_give_up=seen.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionError):
        call("ada")
    assert [] == [r for r in caplog.records if r.name == "retryx"]
    assert ["GaveUp"] == kinds(seen)


def test_log_levels_are_the_policys(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``retry_log_level`` and ``give_up_log_level`` (ints or names) set the two lines' levels."""
    call, _ = build(
        flavour, ConnectionError, attempts=2, retry_log_level="DEBUG", give_up_log_level=30
    )
    with caplog.at_level(logging.DEBUG, logger="retryx"), pytest.raises(ConnectionError):
        call("ada")
    assert [logging.DEBUG, logging.WARNING] == [r.levelno for r in caplog.records]


def test_log_exc_info_puts_the_fault_on_the_records(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``log_exc_info=True``: the retry and give-up records carry the fault as ``exc_info``."""
    error = ConnectionError("down")
    call, _ = build(flavour, error, attempts=2, log_exc_info=True)
    with caplog.at_level(logging.DEBUG, logger="retryx"), pytest.raises(ConnectionError):
        call("ada")
    assert [error, error] == [r.exc_info[1] for r in caplog.records]  # type: ignore[index]


def test_result_retry_lines_show_the_result(
    clock: FakeClock, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A result retry's line shows the result's repr (shortened), also in ``record.retryx``."""
    call, _ = build(flavour, "busy", "ok", retry_if_result=lambda r: r == "busy")
    with caplog.at_level(logging.WARNING, logger="retryx"):
        call("ada")
    (record,) = caplog.records
    assert "result 'busy'" in record.getMessage()
    assert "result 'busy'" == str(record.retryx["result"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("log", 42),
        ("retry_log_level", "LOUD"),
        ("give_up_log_level", -1),
        ("retry_log_level", True),
        ("log_exc_info", "yes"),
    ],
)
def test_bad_log_settings_name_the_field(field: str, value: Any) -> None:
    """A bad logger or level is a ``ConfigError`` naming the field."""
    with pytest.raises(ConfigError, match=f"Policy.{field}"):
        Policy(**{field: value})


def test_log_settings_are_normalised() -> None:
    """A logger name becomes its logger, ``True`` the default, a level name its number."""
    policy = Policy(log="myapp", retry_log_level="info", log_exc_info=False)
    assert logging.getLogger("myapp") is policy.log
    assert logging.INFO == policy.retry_log_level
    assert Policy(log=True) == Policy()


def test_log_settings_from_a_configuration_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A named policy's file sets its logger, levels and ``log_exc_info``."""
    from retryx import _config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "retryx.toml").write_text(
        "[policies.payments]\n"
        'log = "myapp.payments"\n'
        'retry_log_level = "INFO"\n'
        "give_up_log_level = 30\n"
        "log_exc_info = true\n",
        encoding="utf-8",
    )
    _config.configure("retryx.toml")
    expected = Policy(
        name="payments",
        log=logging.getLogger("myapp.payments"),
        retry_log_level=logging.INFO,
        give_up_log_level=logging.WARNING,
        log_exc_info=True,
    )
    assert expected == _config.resolve_policy("payments")


@pytest.mark.parametrize("field", ["on_retry", "on_give_up", "on_success"])
def test_hooks_cannot_come_from_a_configuration_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    """A hook in a file is a ``ConfigError`` saying it takes a Python callable."""
    from retryx import _config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "retryx.toml").write_text(f'[policies.p]\n{field} = "print"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be set in a configuration file"):
        _config.configure("retryx.toml")


def test_a_first_attempt_success_event_carries_the_call(clock: FakeClock, flavour: str) -> None:
    """The ``Succeeded`` of a first-attempt success carries the arguments and the result."""
    received: list[Any] = []
    events.subscribe(received.append)
    call, _ = build(flavour, 42)
    assert 42 == call("ada", page=4)
    (succeeded,) = received
    assert (("ada",), {"page": 4}, 42) == (succeeded.args, succeeded.kwargs, succeeded.result)


def test_async_hooks_are_awaited_under_trio(clock: FakeClock) -> None:
    """Under trio, async hooks are awaited with trio's own suspension."""
    trio = pytest.importorskip("trio")
    seen: list[str] = []

    async def hook(event: Any) -> None:
        await trio.sleep(0)  # only trio can run this: asyncio would fail here
        seen.append(type(event).__name__)

    outcomes = FaultSequence(ConnectionError, "ok")

    @retry(on_retry=hook, on_success=hook, backoff="none")
    async def fetch() -> Any:
        return outcomes()

    assert "ok" == trio.run(fetch)
    assert ["RetryScheduled", "Succeeded"] == seen


def test_a_retry_block_refuses_an_async_hook() -> None:
    """A retry block cannot await a hook (a ``return`` ends it anywhere): ``ConfigError``."""

    async def hook(event: Any) -> None:
        return None

    with pytest.raises(ConfigError, match=r"Policy\.on_give_up"):
        retryx.attempts(on_give_up=hook)
