"""Nested layers keep their judgement: the inner layer classifies, the outer layer schedules."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import hypothesis.strategies as st
import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry
from hypothesis import HealthCheck, given, settings

import retryx
from retryx import (
    CircuitBreaker,
    Policy,
    backoff,
    circuit_breaker,
    classify,
    events,
    failover,
    retry,
    stats,
)
from retryx.testing import FakeClock, servers

WAIT = 5.0  # real seconds a thread or task may take before the test fails instead of hanging


class Declined(Exception):
    """A fault the default classifier calls permanent; inner policies may say otherwise."""


def fast(**fields: Any) -> Policy:
    """Three attempts, 1 s apart, no jitter."""
    fields.setdefault("attempts", 3)
    return Policy(backoff=backoff.fixed(1.0), jitter="none", **fields)


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    """Run the test for functions and for coroutine functions."""
    return bool(request.param)


@pytest.fixture
def gave_up() -> list[tuple[str, str]]:
    """(name, reason) of every GaveUp event."""
    seen: list[tuple[str, str]] = []

    def record(event: Any) -> None:
        if isinstance(event, events.GaveUp):
            seen.append((event.name, event.reason))

    events.subscribe(record)
    return seen


class Stack:
    """``checkout`` (outer) calling ``charge`` (inner) calling ``work`` (the innermost)."""

    def __init__(
        self,
        work: Callable[[], Any],
        *,
        inner: Policy,
        outer: Policy,
        is_async: bool,
    ) -> None:
        self.calls = 0
        self.is_async = is_async

        @retry(inner.replace(name="charge"))
        def charge() -> Any:
            self.calls += 1
            return work()

        @retry(outer.replace(name="checkout"))
        def checkout() -> Any:
            return charge()

        @retry(inner.replace(name="charge"))
        async def acharge() -> Any:
            self.calls += 1
            return await work()

        @retry(outer.replace(name="checkout"))
        async def acheckout() -> Any:
            return await acharge()

        self.inner: Callable[[], Any] = acharge if is_async else charge
        self.outer: Callable[[], Any] = acheckout if is_async else checkout

    def run(self, func: Callable[[], Any] | None = None) -> Any:
        func = func or self.outer
        return asyncio.run(func()) if self.is_async else func()


# --- the four cases of the issue ------------------------------------------------------------------


def reset_by_peer(address: tuple[str, int], is_async: bool) -> Callable[[], Any]:
    """Send a request to ``address`` and read the answer: a real reset, after sending."""

    def send() -> bytes:
        with socket.create_connection(address, timeout=WAIT) as sock:
            sock.sendall(b"charge 10 EUR\n")
            return sock.recv(64)

    async def asend() -> bytes:
        reader, writer = await asyncio.open_connection(*address)
        try:
            writer.write(b"charge 10 EUR\n")
            await writer.drain()
            return await asyncio.wait_for(reader.read(64), WAIT)
        finally:
            writer.close()

    return asend if is_async else send


def test_non_idempotent_inner_is_sent_once(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """A reset after sending a non-idempotent charge ends the outer call too: sent once."""
    with servers.resetting() as address:
        stack = Stack(
            reset_by_peer(address, is_async),
            inner=fast(idempotent=False),
            outer=Policy(),
            is_async=is_async,
        )
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as info:
            stack.run()
    assert 1 == stack.calls
    assert [] == clock.sleeps
    assert [("checkout", "not_idempotent")] == gave_up
    assert ["reason: not_idempotent"] == [
        n[n.index("reason") :].rstrip(")") for n in info.value.__notes__
    ]


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# redis-py's own retries off: the test counts retryx's attempts only.
NO_RETRY = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
NO_ARETRY = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)


def redis_ping(port: int, is_async: bool) -> Callable[[], Any]:
    """Releasing a redis lock this client does not hold: the real redis LockError, which
    classify calls permanent (a refused PING is transient for classify too since #16).
    """

    def ping() -> Any:
        client = redis.Redis(port=port, socket_connect_timeout=WAIT, retry=NO_RETRY)
        try:
            return client.lock("never-taken").release()
        finally:
            client.close()

    async def aping() -> Any:
        client = redis.asyncio.Redis(port=port, socket_connect_timeout=WAIT, retry=NO_ARETRY)
        try:
            return await client.lock("never-taken").release()
        finally:
            await client.aclose()

    return aping if is_async else ping


def test_inner_retry_on_is_honoured_by_the_outer(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """redis' LockError, transient for the inner policy only, is retried by the outer."""
    stack = Stack(
        redis_ping(closed_port(), is_async),
        inner=fast(retry_on=redis.exceptions.LockError),
        outer=fast(),
        is_async=is_async,
    )
    with pytest.raises(redis.exceptions.LockError) as raised:
        stack.run()
    assert 3 == stack.calls  # the outer's attempts, not 1 and not 9
    assert [1.0, 1.0] == clock.sleeps
    assert [("checkout", "attempts")] == gave_up
    assert False is classify(raised.value).transient  # the outer alone would not


def test_task_that_outlives_its_outer_call_retries_on_its_own(
    clock: FakeClock, gave_up: list[tuple[str, str]]
) -> None:
    """A task still running after the retrying call that started it returned is top-level."""
    calls = 0

    @retry(fast(name="background"))
    async def background(go: asyncio.Event) -> None:
        nonlocal calls
        await go.wait()
        calls += 1
        raise ConnectionError("down")

    @retry(fast(name="handler"))
    async def handler(go: asyncio.Event) -> asyncio.Task[None]:
        return asyncio.create_task(background(go))

    async def main() -> BaseException:
        go = asyncio.Event()
        task = await handler(go)
        go.set()  # the handler has returned: its retry layer is gone
        with pytest.raises(ConnectionError) as info:
            await asyncio.wait_for(task, WAIT)
        return info.value

    error = asyncio.run(main())
    assert 3 == calls
    assert [1.0, 1.0] == clock.sleeps
    assert [("background", "attempts")] == gave_up
    assert 1 == len(error.__notes__)


def test_thread_that_outlives_its_outer_call_retries_on_its_own(
    clock: FakeClock, gave_up: list[tuple[str, str]]
) -> None:
    """A carried thread still running after the retrying call that started it is top-level."""
    calls = 0
    go = threading.Event()
    errors: list[BaseException] = []

    @retry(fast(name="background"))
    def background() -> None:
        nonlocal calls
        go.wait(WAIT)
        calls += 1
        raise ConnectionError("down")

    def work() -> None:
        try:
            background()
        except ConnectionError as exc:
            errors.append(exc)

    @retry(fast(name="handler"))
    def handler() -> threading.Thread:
        thread = threading.Thread(target=retryx.carry(work), daemon=True)
        thread.start()
        return thread

    thread = handler()
    go.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert 3 == calls
    assert [("background", "attempts")] == gave_up
    assert 1 == len(errors[0].__notes__)


def test_carried_executor_work_defers(clock: FakeClock) -> None:
    """Work submitted with retryx.carry defers to the retrying call: 3 calls, not 9."""
    stack = Stack(_down, inner=fast(), outer=fast(), is_async=False)

    @retry(fast(name="batch"))
    def batch(pool: ThreadPoolExecutor) -> Any:
        return pool.submit(retryx.carry(stack.inner)).result(WAIT)

    with ThreadPoolExecutor(2) as pool, pytest.raises(ConnectionError):
        batch(pool)
    assert 3 == stack.calls
    assert [1.0, 1.0] == clock.sleeps


def test_carried_executor_work_defers_from_a_coroutine(clock: FakeClock) -> None:
    """run_in_executor(pool, retryx.carry(work)) inside a retrying coroutine defers too."""
    stack = Stack(_down, inner=fast(), outer=fast(), is_async=False)

    @retry(fast(name="batch"))
    async def batch(pool: ThreadPoolExecutor) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(pool, retryx.carry(stack.inner)), WAIT)

    with ThreadPoolExecutor(2) as pool, pytest.raises(ConnectionError):
        asyncio.run(batch(pool))
    assert 3 == stack.calls


def test_uncarried_executor_work_is_not_nested(clock: FakeClock) -> None:
    """Without carry the pool thread does not see the retrying call: attempts multiply."""
    stack = Stack(_down, inner=fast(), outer=fast(), is_async=False)

    @retry(fast(name="batch"))
    def batch(pool: ThreadPoolExecutor) -> Any:
        return pool.submit(stack.inner).result(WAIT)

    with ThreadPoolExecutor(2) as pool, pytest.raises(ConnectionError):
        batch(pool)
    assert 9 == stack.calls


def _down() -> None:
    raise ConnectionError("down")


# --- carry ----------------------------------------------------------------------------------------


def test_carry_runs_each_call_in_its_own_copy(clock: FakeClock) -> None:
    """One carried function may run in several threads at once (each call has its own copy)."""
    barrier = threading.Barrier(3, timeout=WAIT)
    seen: list[str | None] = []

    def work() -> None:
        barrier.wait()
        context = retryx.current()
        seen.append(None if context is None else context.name)

    @retry(fast(name="fan-out"))
    def fan_out(pool: ThreadPoolExecutor) -> None:
        carried = retryx.carry(work)
        futures = [pool.submit(carried) for _ in range(3)]
        for future in futures:
            future.result(WAIT)

    with ThreadPoolExecutor(3) as pool:
        fan_out(pool)
    assert ["fan-out"] * 3 == seen


def test_carry_keeps_the_name_and_the_result() -> None:
    """carry(fn) looks like fn and returns what fn returns."""

    def add(a: int, b: int) -> int:
        return a + b

    carried = retryx.carry(add)
    assert 5 == carried(2, b=3)
    assert "add" == carried.__name__


def test_carry_of_a_coroutine_function(clock: FakeClock) -> None:
    """A carried coroutine function runs in the context taken at carry time."""

    async def name() -> str | None:
        context = retryx.current()
        return None if context is None else context.name

    @retry(fast(name="outer"))
    async def outer() -> Any:
        carried = retryx.carry(name)
        # Awaited from a task with an empty context: only carry brings the scope along.
        return await asyncio.create_task(carried(), context=contextvars.Context())

    assert "outer" == asyncio.run(outer())


def test_carry_rejects_what_is_not_callable() -> None:
    """carry(obj) of a non-callable is a ConfigError."""
    with pytest.raises(retryx.ConfigError, match="carry"):
        retryx.carry(42)  # type: ignore[type-var]


# --- the guard's rules, one by one ----------------------------------------------------------------


def test_inner_permanent_ends_the_outer_at_once(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """A fault the inner policy calls permanent is not retried by an outer that would."""
    stack = Stack(
        _async(_down) if is_async else _down,
        inner=fast(retry_on=TimeoutError),
        outer=fast(),
        is_async=is_async,
    )
    with pytest.raises(ConnectionError):
        stack.run()
    assert 1 == stack.calls
    assert [("checkout", "permanent")] == gave_up


def test_inner_hint_is_honoured(clock: FakeClock, is_async: bool) -> None:
    """The inner's retry_after hint is what the outer waits."""

    def throttled() -> None:
        raise Declined("slow down")

    stack = Stack(
        _async(throttled) if is_async else throttled,
        inner=fast(retry_on=lambda exc: retryx.Fault(True, "throttled", 7.0)),
        outer=fast(),
        is_async=is_async,
    )
    with pytest.raises(Declined):
        stack.run()
    assert [7.0, 7.0] == clock.sleeps


def test_outer_not_idempotent_with_a_deferring_inner(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """An outer idempotent=False policy does not re-send what the inner calls transient."""
    stack = Stack(
        _async(_reset) if is_async else _reset,
        inner=fast(),
        outer=fast(idempotent=False),
        is_async=is_async,
    )
    with pytest.raises(ConnectionResetError):
        stack.run()
    assert 1 == stack.calls
    assert [("checkout", "not_idempotent")] == gave_up


def test_unsent_fault_is_retried_under_non_idempotent_inner(
    clock: FakeClock, is_async: bool
) -> None:
    """A refused connection proves the request unsent: the outer retries it."""

    def refused() -> None:
        raise ConnectionRefusedError(111, "refused")

    stack = Stack(
        _async(refused) if is_async else refused,
        inner=fast(idempotent=False),
        outer=fast(),
        is_async=is_async,
    )
    with pytest.raises(ConnectionRefusedError):
        stack.run()
    assert 3 == stack.calls


def test_top_level_not_idempotent_reason(
    clock: FakeClock, gave_up: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """A top-level idempotent=False call gives up on a maybe-sent fault: not_idempotent, ERROR."""
    caplog.set_level(logging.DEBUG, logger="retryx")

    @retry(fast(name="pay", idempotent=False))
    def pay() -> None:
        _reset()

    with pytest.raises(ConnectionResetError):
        pay()
    assert [("pay", "not_idempotent")] == gave_up
    [record] = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert (logging.ERROR, "not_idempotent") == (record.levelno, record.retryx["reason"])
    assert 1 == stats(pay).gave_up


def test_allow_keeps_its_own_judgement(clock: FakeClock) -> None:
    """nested="allow" is not deferring: the outer judges its faults with its own policy."""
    stack = Stack(
        _declined, inner=fast(retry_on=Declined, nested="allow"), outer=fast(), is_async=False
    )
    with pytest.raises(Declined):
        stack.run()
    assert 3 == stack.calls  # the inner's 3; the outer calls Declined permanent


def _reset() -> None:
    raise ConnectionResetError(104, "reset by peer")


def _declined() -> None:
    raise Declined("no")


def _async(func: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> Any:
        return func()

    return run


# --- through failover sweeps and breakers ---------------------------------------------------------


def sweeping(inner: Policy, fault: Callable[[], Any], *, is_async: bool) -> tuple[Any, list[str]]:
    """An outer retry + failover over 3 hosts + breaker around a deferring inner call."""
    hosts: list[str] = []

    @retry(inner.replace(name="query"))
    def query(host: str) -> Any:
        hosts.append(host)
        return fault()

    @retry(inner.replace(name="query"))
    async def aquery(host: str) -> Any:
        hosts.append(host)
        return fault()

    breaker = CircuitBreaker("db", failure_threshold=100)

    @retry(fast(name="report"))
    @failover(["db1", "db2", "db3"])
    @circuit_breaker(breaker)
    def report(*, host: str) -> Any:
        return query(host)

    @retry(fast(name="report"))
    @failover(["db1", "db2", "db3"])
    @circuit_breaker(breaker)
    async def areport(*, host: str) -> Any:
        return await aquery(host)

    return (areport if is_async else report), hosts


def test_sweep_stops_on_an_inner_permanent_fault(clock: FakeClock, is_async: bool) -> None:
    """The outer sweep does not move on after a fault the inner calls permanent."""
    report, hosts = sweeping(fast(retry_on=TimeoutError), _down, is_async=is_async)
    with pytest.raises(ConnectionError):
        asyncio.run(report()) if is_async else report()
    assert ["db1"] == hosts


def test_sweep_moves_on_for_an_inner_transient_fault(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """The outer sweep and retry go on for a fault only the inner calls transient."""
    report, hosts = sweeping(fast(retry_on=Declined), _declined, is_async=is_async)
    with pytest.raises(retryx.AllEndpointsFailed):
        asyncio.run(report()) if is_async else report()
    assert ["db1", "db2", "db3"] * 3 == hosts
    assert [("report", "attempts")] == gave_up


def test_sweep_stops_on_an_inner_non_idempotent_fault(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """A maybe-sent fault under an inner idempotent=False is sent to one endpoint, once."""
    report, hosts = sweeping(fast(idempotent=False), _reset, is_async=is_async)
    with pytest.raises(ConnectionResetError):
        asyncio.run(report()) if is_async else report()
    assert ["db1"] == hosts
    assert [("report", "not_idempotent")] == gave_up


# --- the invariants, over random policy pairs and fault scripts ----------------------------------

FAULTS = {
    "reset": lambda: ConnectionResetError(104, "reset"),  # transient, may have been sent
    "refused": lambda: ConnectionRefusedError(111, "refused"),  # transient, unsent
    "declined": lambda: Declined("no"),  # permanent for classify
    "timeout": lambda: TimeoutError("slow"),  # transient, may have been sent
}
RETRY_ON: dict[str, Any] = {
    "classify": classify,
    "declined": (Declined, ConnectionError),
    "timeouts": TimeoutError,
}
UNSENT = {"refused"}


def policies() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "attempts": st.integers(1, 4),
            "retry_on": st.sampled_from(sorted(RETRY_ON)),
            "idempotent": st.booleans(),
        }
    )


def transient(retry_on: str, fault: str) -> bool:
    return (RETRY_ON[retry_on] is classify and classify(FAULTS[fault]()).transient) or (
        RETRY_ON[retry_on] is not classify and isinstance(FAULTS[fault](), RETRY_ON[retry_on])
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inner=policies(),
    outer=policies(),
    nested=st.sampled_from(["defer", "allow", "raise"]),
    script=st.lists(st.sampled_from([*sorted(FAULTS), "ok"]), min_size=1, max_size=8),
    is_async=st.booleans(),
)
def test_invariants(
    clock: FakeClock,
    inner: dict[str, Any],
    outer: dict[str, Any],
    nested: str,
    script: list[str],
    is_async: bool,
) -> None:
    """Defer: at most the outer attempts; never re-sent when a layer says idempotent=False;
    inner-permanent never retried; inner-transient retried while the outer allows it."""
    sent: list[str] = []

    def work() -> str:
        outcome = script[min(len(sent), len(script) - 1)]
        sent.append(outcome)
        if outcome == "ok":
            return "ok"
        raise FAULTS[outcome]()

    async def awork() -> str:
        return work()

    stack = Stack(
        awork if is_async else work,
        inner=fast(
            attempts=inner["attempts"],
            retry_on=RETRY_ON[inner["retry_on"]],
            idempotent=inner["idempotent"],
            nested=nested,
        ),
        outer=fast(
            attempts=outer["attempts"],
            retry_on=RETRY_ON[outer["retry_on"]],
            idempotent=outer["idempotent"],
        ),
        is_async=is_async,
    )
    if nested == "raise":
        with pytest.raises(retryx.NestedRetryError):
            stack.run()
        assert [] == sent
        return
    outcome: Any
    try:
        outcome = stack.run()
    except Exception as exc:
        outcome = exc
    if sent[-1] == "ok":
        assert "ok" == outcome
    else:
        assert type(FAULTS[sent[-1]]()) is type(outcome)  # raised unchanged in type
    if nested == "allow":
        assert len(sent) <= inner["attempts"] * outer["attempts"]
        return
    assert len(sent) <= outer["attempts"]
    idempotent = inner["idempotent"] and outer["idempotent"]
    for fault in sent[:-1]:
        # Every fault but the last was retried: it must have been retryable for the inner.
        assert fault != "ok"
        assert transient(inner["retry_on"], fault)
        assert idempotent or fault in UNSENT
    last = sent[-1]
    if last != "ok":
        retryable = transient(inner["retry_on"], last) and (idempotent or last in UNSENT)
        # A retryable last fault means the outer ran out of attempts.
        assert not retryable or len(sent) == outer["attempts"]


def test_current_is_none_once_the_call_has_ended() -> None:
    """A task that outlives the retrying call that started it sees no current() call."""

    @retry(fast(name="handler"))
    async def handler(go: asyncio.Event) -> asyncio.Task[str | None]:
        async def later() -> str | None:
            await go.wait()
            context = retryx.current()
            return None if context is None else context.name

        return asyncio.create_task(later())

    async def main() -> str | None:
        go = asyncio.Event()
        task = await handler(go)
        go.set()
        return await asyncio.wait_for(task, WAIT)

    assert None is asyncio.run(main())


def test_not_idempotent_reaches_opentelemetry() -> None:
    """The outer give-up on an inner idempotent=False fault is counted with its reason."""
    sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from retryx import otel

    memory = InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[memory])
    otel.instrument(provider)
    try:
        stack = Stack(_reset, inner=fast(idempotent=False), outer=fast(), is_async=False)
        with retryx.testing.fake_time(), pytest.raises(ConnectionResetError):
            stack.run()
        data = memory.get_metrics_data()
    finally:
        otel.uninstrument()
        provider.shutdown()
    assert data is not None
    reasons = [
        (dict(point.attributes)["retryx.name"], dict(point.attributes)["retryx.reason"])
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "retryx.give_ups"
        for point in metric.data.data_points
    ]
    assert [("checkout", "not_idempotent")] == reasons


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inner=policies(),
    outer=policies(),
    script=st.lists(st.sampled_from([*sorted(FAULTS), "ok"]), min_size=1, max_size=10),
    is_async=st.booleans(),
)
def test_invariants_through_a_failover_sweep(
    clock: FakeClock,
    inner: dict[str, Any],
    outer: dict[str, Any],
    script: list[str],
    is_async: bool,
) -> None:
    """Under an outer retry + failover over 2 hosts: a sweep moves on and the retry goes on
    only for faults the deferring inner calls retryable; nothing else is sent again."""
    sent: list[str] = []

    def work() -> str:
        outcome = script[min(len(sent), len(script) - 1)]
        sent.append(outcome)
        if outcome == "ok":
            return "ok"
        raise FAULTS[outcome]()

    inner_policy = fast(
        attempts=inner["attempts"],
        retry_on=RETRY_ON[inner["retry_on"]],
        idempotent=inner["idempotent"],
        name="inner",
    )
    outer_policy = fast(
        attempts=outer["attempts"],
        retry_on=RETRY_ON[outer["retry_on"]],
        idempotent=outer["idempotent"],
        name="outer",
    )
    never_opens = CircuitBreaker("template", failure_threshold=10_000)

    @retry(inner_policy)
    def call(host: str) -> str:
        return work()

    @retry(outer_policy)
    @failover(["a", "b"], breaker=never_opens)
    def sweep(*, host: str) -> str:
        return call(host)

    @retry(inner_policy)
    async def acall(host: str) -> str:
        return work()

    @retry(outer_policy)
    @failover(["a", "b"], breaker=never_opens)
    async def asweep(*, host: str) -> str:
        return await acall(host)

    outcome: Any
    try:
        outcome = asyncio.run(asweep()) if is_async else sweep()
    except Exception as exc:
        outcome = exc
    idempotent = inner["idempotent"] and outer["idempotent"]

    def retryable(fault: str) -> bool:
        return transient(inner["retry_on"], fault) and (idempotent or fault in UNSENT)

    assert len(sent) <= 2 * outer["attempts"]
    assert all(f != "ok" and retryable(f) for f in sent[:-1])
    last = sent[-1]
    if last == "ok":
        assert "ok" == outcome
    elif retryable(last):
        assert 2 * outer["attempts"] == len(sent)  # every sweep went through both hosts
        assert isinstance(outcome, retryx.AllEndpointsFailed)
    else:
        assert type(FAULTS[last]()) is type(outcome)  # the sweep stopped, raised as is


# --- attempts are not chained to each other ---------------------------------------------------


def test_a_later_attempts_fault_is_not_chained_to_an_earlier_one(
    clock: FakeClock, is_async: bool, gave_up: list[tuple[str, str]]
) -> None:
    """A permanent fault after a refused connection is not retried: retryx runs attempt 2
    outside attempt 1's except block, so classify finds no socket fault in its chain."""
    seq = retryx.testing.FaultSequence(ConnectionRefusedError(111, "refused"), ValueError("bug"))

    async def aseq() -> Any:
        return seq()

    fetch = retry(fast(name="fetch", attempts=4))(aseq if is_async else seq)
    with pytest.raises(ValueError, match="bug") as info:
        asyncio.run(fetch()) if is_async else fetch()
    assert 2 == seq.calls
    assert None is info.value.__context__
    assert [("fetch", "permanent")] == gave_up


# --- each fault judged once per pipeline call -------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [(ValueError("bad request"), 1), (ConnectionResetError(104, "reset"), 3 + 1)],
    ids=["permanent", "transient-on-3-hosts"],
)
def test_a_fault_is_judged_once_through_the_full_stack(
    clock: FakeClock, is_async: bool, fault: Exception, expected: int
) -> None:
    """Retry + failover + breakers sharing one classifier judge each fault once: the breakers,
    the sweep and the retry decision share the verdict (plus once for the sweep's group)."""
    judged: list[type[BaseException]] = []

    def judge(exc: BaseException) -> retryx.Fault:
        judged.append(type(exc))
        return classify(exc)

    shared = retryx._classifiers.PredicateClassifier(judge)  # one classifier for every layer
    template = CircuitBreaker("template", failure_threshold=1000, counts=shared)
    layer = CircuitBreaker("layer", failure_threshold=1000, counts=shared)

    @retry(fast(attempts=1, retry_on=shared))
    @failover(["a", "b", "c"], breaker=template)
    @circuit_breaker(layer)
    def query(*, host: str) -> None:
        raise fault

    @retry(fast(attempts=1, retry_on=shared))
    @failover(["a", "b", "c"], breaker=template)
    @circuit_breaker(layer)
    async def aquery(*, host: str) -> None:
        raise fault

    with pytest.raises(Exception):  # noqa: B017 - the fault, or the sweep's group
        asyncio.run(aquery()) if is_async else query()
    assert expected == len(judged)
