"""@failover: one sweep of the endpoints per call, per-endpoint breakers, AllEndpointsFailed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from retryx import (
    AllEndpointsFailed,
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    Permanent,
    RetryxError,
    Transient,
    classify,
    current,
    events,
    failover,
    retry,
    stats,
    testing,
)
from retryx.testing import FakeClock

HOSTS = ("db1", "db2", "db3")


class Backend:
    """Endpoints that fail or answer as scripted; records every call's endpoint."""

    def __init__(self, **faults: Any) -> None:
        self.faults = faults  # endpoint -> exception (instance or class) to raise
        self.calls: list[str] = []

    def __call__(self, *, host: str) -> str:
        self.calls.append(host)
        fault = self.faults.get(host)
        if fault is not None:
            raise fault if isinstance(fault, BaseException) else fault(host)
        return f"answer from {host}"


def over(backend: Backend, hosts: Any = HOSTS, **options: Any) -> Callable[..., str]:
    @failover(hosts, **options)
    def query(*, host: str) -> str:
        return backend(host=host)

    return query


def async_over(backend: Backend, hosts: Any = HOSTS, **options: Any) -> Callable[..., Any]:
    @failover(hosts, **options)
    async def query(*, host: str) -> str:
        await asyncio.sleep(0)
        return backend(host=host)

    return query


# --- one sweep per call -----------------------------------------------------------------------


def test_first_two_fail_transiently(clock: FakeClock) -> None:
    """With the first two endpoints down, each is called once, in order, and the third answers."""
    backend = Backend(db1=ConnectionRefusedError, db2=TimeoutError)
    assert "answer from db3" == over(backend)()
    assert ["db1", "db2", "db3"] == backend.calls


def test_first_two_fail_transiently_async(clock: FakeClock) -> None:
    """The async sweep calls each endpoint once, in order."""
    backend = Backend(db1=ConnectionRefusedError, db2=TimeoutError)
    assert "answer from db3" == asyncio.run(async_over(backend)())
    assert ["db1", "db2", "db3"] == backend.calls


def test_primary_answers(clock: FakeClock) -> None:
    """When the primary answers, no other endpoint is called."""
    backend = Backend()
    query = over(backend)
    assert "answer from db1" == query()
    assert "answer from db1" == query()
    assert ["db1", "db1"] == backend.calls


def test_no_waits_between_endpoints(clock: FakeClock) -> None:
    """The next endpoint is tried at once: no wait is recorded."""
    over(Backend(db1=ConnectionError, db2=ConnectionError))()
    assert [] == clock.sleeps


def test_arguments_are_passed_with_the_endpoint(clock: FakeClock) -> None:
    """Positional and keyword arguments reach every endpoint's call along with `param`."""
    seen: list[Any] = []

    @failover(["a", "b"], param="server")
    def send(payload: str, *, retries: int, server: str) -> str:
        seen.append((payload, retries, server))
        if server == "a":
            raise ConnectionError("down")
        return server

    assert "b" == send("x", retries=0)
    assert [("x", 0, "a"), ("x", 0, "b")] == seen


def test_permanent_fault_stops_the_sweep(clock: FakeClock) -> None:
    """A permanent fault is raised as is; later endpoints are not called."""
    error = ValueError("bad query")
    backend = Backend(db1=ConnectionError, db2=error)
    with pytest.raises(ValueError) as info:
        over(backend)()
    assert error is info.value
    assert ["db1", "db2"] == backend.calls


def test_permanent_fault_stops_the_sweep_async(clock: FakeClock) -> None:
    """The async sweep raises a permanent fault as is."""
    backend = Backend(db1=Permanent("no"))
    with pytest.raises(Permanent):
        asyncio.run(async_over(backend)())
    assert ["db1"] == backend.calls


def test_all_fail(clock: FakeClock) -> None:
    """When every endpoint fails, AllEndpointsFailed maps each endpoint to its fault, in order."""
    faults = {h: ConnectionError(h) for h in HOSTS}
    with pytest.raises(AllEndpointsFailed) as info:
        over(Backend(**faults))()
    assert faults == info.value.errors
    assert list(HOSTS) == list(info.value.errors)
    assert list(faults.values()) == list(info.value.exceptions)


def test_all_fail_async(clock: FakeClock) -> None:
    """The async sweep raises AllEndpointsFailed too."""
    faults = {h: TimeoutError(h) for h in HOSTS}
    with pytest.raises(AllEndpointsFailed) as info:
        asyncio.run(async_over(Backend(**faults))())
    assert faults == info.value.errors


def test_all_endpoints_failed_is_a_group_and_a_retryx_error() -> None:
    """AllEndpointsFailed is an ExceptionGroup and a RetryxError, catchable with except*."""
    error = AllEndpointsFailed({"a": ConnectionError("x"), "b": ValueError("y")})
    assert isinstance(error, ExceptionGroup)
    assert isinstance(error, RetryxError)
    caught: list[BaseException] = []
    try:
        raise error
    except* ValueError as group:
        caught.extend(group.exceptions)
    except* ConnectionError as group:
        caught.extend(group.exceptions)
    assert [ValueError, ConnectionError] == [type(e) for e in caught]


def test_all_endpoints_failed_is_transient_when_any_error_is() -> None:
    """classify() calls AllEndpointsFailed transient when any error is, else permanent."""
    mixed = AllEndpointsFailed({"a": ValueError("x"), "b": ConnectionError("y")})
    permanent = AllEndpointsFailed({"a": ValueError("x"), "b": KeyError("y")})
    assert (True, False) == (classify(mixed).transient, classify(permanent).transient)


# --- orders -------------------------------------------------------------------------------------


def test_round_robin_rotates_the_start(clock: FakeClock) -> None:
    """With round_robin each call starts one endpoint later."""
    backend = Backend()
    query = over(backend, order="round_robin")
    for _ in range(4):
        query()
    assert ["db1", "db2", "db3", "db1"] == backend.calls


def test_round_robin_sweeps_from_the_start(clock: FakeClock) -> None:
    """A round-robin sweep continues past the end of the list to the endpoints before its start."""
    backend = Backend(db2=ConnectionError, db3=ConnectionError)
    query = over(backend, order="round_robin")
    query()
    backend.calls.clear()
    query()
    assert ["db2", "db3", "db1"] == backend.calls


def test_random_order_is_seeded(clock: FakeClock) -> None:
    """order="random" shuffles each sweep with retryx's seedable random source."""
    faults = dict.fromkeys(HOSTS, ConnectionError)

    def sweeps() -> list[tuple[str, ...]]:
        backend = Backend(**faults)
        query = over(backend, order="random", breaker=CircuitBreaker("ep", failure_threshold=99))
        orders = []
        for _ in range(12):
            backend.calls.clear()
            with pytest.raises(AllEndpointsFailed):
                query()
            orders.append(tuple(backend.calls))
        return orders

    testing.seed(7)
    first = sweeps()
    testing.seed(7)
    assert first == sweeps()
    assert all(sorted(o) == list(HOSTS) for o in first)
    assert len(set(first)) > 1


def test_single_host_any_order(clock: FakeClock) -> None:
    """A one-endpoint list works in every order."""
    for order in ("priority", "round_robin", "random"):
        assert "answer from db1" == over(Backend(), ["db1"], order=order)()


# --- hosts --------------------------------------------------------------------------------------


def test_hosts_callable_is_read_on_every_call(clock: FakeClock) -> None:
    """A hosts callable is called again for each call."""
    lists = [["a"], ["b", "c"]]
    reads: list[int] = []

    def hosts() -> list[str]:
        reads.append(1)
        return lists[len(reads) - 1]

    backend = Backend(b=ConnectionError)
    query = over(backend, hosts)
    query()
    query()
    assert (["a", "b", "c"], 2) == (backend.calls, len(reads))


def test_hosts_callable_returning_nothing(clock: FakeClock) -> None:
    """A hosts callable returning an empty sequence is a ConfigError at the call."""
    backend = Backend()
    query = over(backend, list)
    with pytest.raises(ConfigError):
        query()
    assert [] == backend.calls


def test_hosts_callable_returning_nothing_async(clock: FakeClock) -> None:
    """The async form raises ConfigError for an empty hosts callable too."""
    with pytest.raises(ConfigError):
        asyncio.run(async_over(Backend(), tuple)())


@pytest.mark.parametrize("hosts", [[], (), "db1", 42, [["unhashable"]]])
def test_bad_hosts_at_decoration(hosts: Any) -> None:
    """Empty, string, non-sequence or unhashable hosts are ConfigErrors at decoration."""
    with pytest.raises(ConfigError):
        failover(hosts)


@pytest.mark.parametrize(
    "options", [{"order": "fastest"}, {"param": ""}, {"param": "not a name"}, {"breaker": 3}]
)
def test_bad_options_at_decoration(options: dict[str, Any]) -> None:
    """An unknown order, a bad param or a non-breaker template is a ConfigError at decoration."""
    with pytest.raises(ConfigError):
        failover(HOSTS, **options)


def test_tuple_endpoints(clock: FakeClock) -> None:
    """Endpoints may be any hashable, such as (host, port) tuples."""
    seen: list[Any] = []

    @failover([("a", 1), ("b", 2)], param="address")
    def connect(*, address: tuple[str, int]) -> tuple[str, int]:
        seen.append(address)
        if address[0] == "a":
            raise ConnectionRefusedError
        return address

    assert ("b", 2) == connect()
    assert [("a", 1), ("b", 2)] == seen


# --- pinned endpoint --------------------------------------------------------------------------


def test_pinned_endpoint_is_called_alone(clock: FakeClock) -> None:
    """An explicit param pins that endpoint: no failover, failure raised unwrapped."""
    backend = Backend(db2=ConnectionError)
    query = over(backend)
    with pytest.raises(ConnectionError):
        query(host="db2")
    assert ["db2"] == backend.calls


def test_pinned_endpoint_goes_through_its_breaker(clock: FakeClock) -> None:
    """A pinned endpoint's failures count on that endpoint's breaker, seen by sweeps too."""
    backend = Backend(db1=ConnectionError)
    query = over(backend)
    for _ in range(3):  # the default endpoint breaker opens after 3 failures
        with pytest.raises(ConnectionError):
            query(host="db1")
    with pytest.raises(CircuitOpenError):
        query(host="db1")
    backend.calls.clear()
    assert "answer from db2" == query()
    assert ["db2"] == backend.calls


def test_pinned_endpoint_outside_the_list(clock: FakeClock) -> None:
    """A pinned endpoint not in the list gets its own breaker on first use."""
    backend = Backend(elsewhere=ConnectionError)
    query = over(backend)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            query(host="elsewhere")
    with pytest.raises(CircuitOpenError) as info:
        query(host="elsewhere")
    assert "elsewhere" in info.value.breaker
    assert ["elsewhere"] * 3 == backend.calls
    assert "answer from db1" == query()


def test_pinned_endpoint_async(clock: FakeClock) -> None:
    """The async form pins an explicit endpoint too."""
    backend = Backend(db3=ConnectionError)
    with pytest.raises(ConnectionError):
        asyncio.run(async_over(backend)(host="db3"))
    assert ["db3"] == backend.calls


# --- per-endpoint breakers -----------------------------------------------------------------------


def test_open_endpoint_is_skipped(clock: FakeClock) -> None:
    """Endpoints whose breaker is open are not called; half-open ones get a trial."""
    backend = Backend(db1=ConnectionError, db2=ConnectionError, db3=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=9))
    with pytest.raises(AllEndpointsFailed):
        query()
    backend.faults.pop("db3")
    clock.advance(9)  # all half-open: db1 and db2 fail their trial, db3 answers
    backend.calls.clear()
    assert "answer from db3" == query()
    assert list(HOSTS) == backend.calls
    backend.calls.clear()
    assert "answer from db3" == query()
    assert ["db3"] == backend.calls


def test_skipped_endpoints_in_errors(clock: FakeClock) -> None:
    """Open endpoints appear in .errors with their CircuitOpenError; the others with their fault."""
    backend = Backend(db1=ConnectionError, db2=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=9))
    assert "answer from db3" == query()  # db1 and db2 now open
    backend.faults["db3"] = ConnectionError
    backend.calls.clear()
    clock.advance(2)
    with pytest.raises(AllEndpointsFailed) as info:
        query()
    errors = info.value.errors
    assert ["db3"] == backend.calls
    assert [CircuitOpenError, CircuitOpenError, ConnectionError] == [type(errors[h]) for h in HOSTS]
    assert 7.0 == errors["db1"].retry_after  # type: ignore[attr-defined]


def test_trip_call_fails_over(clock: FakeClock) -> None:
    """The failure that trips an endpoint's breaker counts as its fault and the sweep moves on."""
    backend = Backend(db1=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=2))
    assert "answer from db2" == query()
    assert "answer from db2" == query()  # this one trips db1's breaker
    backend.calls.clear()
    assert "answer from db2" == query()
    assert ["db2"] == backend.calls


def test_all_open_calls_nothing(clock: FakeClock) -> None:
    """When every breaker is open, AllEndpointsFailed is raised without calling anything."""
    backend = Backend(db1=ConnectionError, db2=ConnectionError, db3=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=10))
    with pytest.raises(AllEndpointsFailed):
        query()  # db1 at t=0, db2 and db3 too
    clock.advance(3)
    backend.calls.clear()
    with pytest.raises(AllEndpointsFailed) as info:
        query()
    assert [] == backend.calls
    assert [CircuitOpenError] * 3 == [type(e) for e in info.value.errors.values()]
    fault = classify(info.value)
    assert (True, "circuit_open", 7.0) == (fault.transient, fault.cause, fault.retry_after)
    assert 7.0 == info.value.retry_after


def test_all_open_retry_after_is_the_smallest(clock: FakeClock) -> None:
    """With breakers opened at different times, retry_after is the soonest recovery."""
    backend = Backend(db1=ConnectionError, db2=ConnectionError, db3=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=10))
    with pytest.raises(ConnectionError):
        query(host="db2")  # opens db2 at t=0
    clock.advance(4)
    with pytest.raises(AllEndpointsFailed):
        query()  # opens db1 and db3 at t=4
    clock.advance(1)
    with pytest.raises(AllEndpointsFailed) as info:
        query()
    assert [5.0, 9.0] == sorted({e.retry_after for e in info.value.errors.values()})  # type: ignore[attr-defined]
    assert 5.0 == info.value.retry_after
    assert 5.0 == classify(info.value).retry_after


def test_all_open_async(clock: FakeClock) -> None:
    """The async sweep skips every open endpoint without calling anything."""
    backend = Backend(db1=ConnectionError, db2=ConnectionError, db3=ConnectionError)
    query = async_over(backend, breaker=CircuitBreaker("ep", failure_threshold=1))
    with pytest.raises(AllEndpointsFailed):
        asyncio.run(query())
    backend.calls.clear()
    with pytest.raises(AllEndpointsFailed) as info:
        asyncio.run(query())
    assert [] == backend.calls
    assert [CircuitOpenError] * 3 == [type(e) for e in info.value.errors.values()]


def test_endpoint_breaker_recovers(clock: FakeClock) -> None:
    """After recovery_timeout an endpoint gets a trial call again and closes on success."""
    backend = Backend(db1=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1, recovery_timeout=5))
    query()  # db1 opens, db2 answers
    backend.faults.clear()
    clock.advance(5)
    backend.calls.clear()
    assert "answer from db1" == query()
    assert ["db1"] == backend.calls


def test_default_endpoint_breaker(clock: FakeClock) -> None:
    """Without breaker=, each endpoint opens after 3 failures and recovers after 30 s."""
    backend = Backend(db1=ConnectionError)
    query = over(backend)
    for _ in range(3):
        query()
    backend.calls.clear()
    query()
    assert ["db2"] == backend.calls
    clock.advance(29.9)
    backend.calls.clear()
    query()
    assert ["db2"] == backend.calls
    clock.advance(0.1)
    backend.calls.clear()
    query()
    assert ["db1", "db2"] == backend.calls


def test_endpoints_have_separate_breakers(clock: FakeClock) -> None:
    """One endpoint's failures do not count on another's breaker."""
    backend = Backend(db1=ConnectionError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=2))
    query()
    backend.faults = {"db2": ConnectionError}
    query()  # db1 answers: its count restarts; db2 not called
    backend.faults = {"db1": ConnectionError}
    query()
    backend.calls.clear()
    query()
    assert ["db1", "db2"] == backend.calls


def test_template_breaker_is_not_used_itself(clock: FakeClock) -> None:
    """The breaker= template only lends its settings: it stays closed."""
    template = CircuitBreaker("ep", failure_threshold=1)
    query = over(
        Backend(db1=ConnectionError, db2=ConnectionError, db3=ConnectionError), breaker=template
    )
    with pytest.raises(AllEndpointsFailed):
        query()
    assert "closed" == template.state


def test_permanent_faults_do_not_open_endpoints(clock: FakeClock) -> None:
    """Permanent faults raised by an endpoint do not trip its breaker."""
    backend = Backend(db1=KeyError)
    query = over(backend, breaker=CircuitBreaker("ep", failure_threshold=1))
    for _ in range(3):
        with pytest.raises(KeyError):
            query()
    assert ["db1"] * 3 == backend.calls


# --- events, stats, context --------------------------------------------------------------------


def test_endpoint_failed_events(clock: FakeClock) -> None:
    """Each endpoint the sweep moves past emits EndpointFailed with its exception."""
    seen: list[Any] = []
    events.subscribe(seen.append)
    first, second = ConnectionError("1"), TimeoutError("2")
    query = over(Backend(db1=first, db2=second))
    query()
    failed = [e for e in seen if isinstance(e, events.EndpointFailed)]
    assert [("db1", first), ("db2", second)] == [(e.endpoint, e.exception) for e in failed]
    assert all(e.name.endswith("query") for e in failed)


def test_endpoint_failed_for_skipped_endpoints(clock: FakeClock) -> None:
    """A skipped (open) endpoint emits EndpointFailed with its CircuitOpenError."""
    query = over(Backend(db1=ConnectionError), breaker=CircuitBreaker("ep", failure_threshold=1))
    query()
    seen: list[Any] = []
    events.subscribe(seen.append)
    query()
    failed = [e for e in seen if isinstance(e, events.EndpointFailed)]
    assert [("db1", CircuitOpenError)] == [(e.endpoint, type(e.exception)) for e in failed]


def test_current_endpoint(clock: FakeClock) -> None:
    """current().endpoint is the endpoint of the attempt in progress."""
    seen: list[Any] = []

    @failover(HOSTS)
    def query(*, host: str) -> str:
        context = current()
        assert context is not None
        seen.append(context.endpoint)
        if host != "db3":
            raise ConnectionError("down")
        return host

    query()
    assert list(HOSTS) == seen
    assert None is current()


def test_current_endpoint_async(clock: FakeClock) -> None:
    """current().endpoint works in coroutine functions too."""
    seen: list[Any] = []

    @failover(HOSTS)
    async def query(*, host: str) -> str:
        context = current()
        assert context is not None
        seen.append(context.endpoint)
        if host == "db1":
            raise ConnectionError("down")
        return host

    assert "db2" == asyncio.run(query())
    assert ["db1", "db2"] == seen


def test_current_endpoint_pinned(clock: FakeClock) -> None:
    """current().endpoint is the pinned endpoint when the caller pins one."""
    seen: list[Any] = []

    @failover(HOSTS)
    def query(*, host: str) -> None:
        seen.append(current().endpoint)  # type: ignore[union-attr]

    query(host="db2")
    assert ["db2"] == seen


def test_stats_count_one_call(clock: FakeClock) -> None:
    """A sweep over three endpoints is one call and one attempt."""
    query = over(Backend(db1=ConnectionError, db2=ConnectionError))
    query()
    snapshot = stats(query)
    assert (1, 1, 1) == (snapshot.calls, snapshot.successes, snapshot.attempts)


# --- idempotent=False ----------------------------------------------------------------------------


def not_idempotent(backend: Backend) -> Callable[..., str]:
    @retry(attempts=1, idempotent=False)
    @failover(HOSTS)
    def send(*, host: str) -> str:
        return backend(host=host)

    return send


def test_not_idempotent_moves_on_for_unsent_faults(clock: FakeClock) -> None:
    """With idempotent=False, faults proving the request unsent move the sweep on."""
    backend = Backend(db1=ConnectionRefusedError, db2=Transient("busy", unsent=True))
    assert "answer from db3" == not_idempotent(backend)()
    assert list(HOSTS) == backend.calls


@pytest.mark.parametrize("fault", [ConnectionResetError("reset"), TimeoutError("slow")])
def test_not_idempotent_stops_on_maybe_sent_faults(clock: FakeClock, fault: Exception) -> None:
    """With idempotent=False, a fault that may have reached the peer ends the sweep, as is."""
    backend = Backend(db1=ConnectionRefusedError, db2=fault)
    with pytest.raises(type(fault)) as info:
        not_idempotent(backend)()
    assert fault is info.value
    assert ["db1", "db2"] == backend.calls


def test_not_idempotent_skips_open_endpoints(clock: FakeClock) -> None:
    """With idempotent=False an open endpoint is still skipped: nothing was sent to it."""
    backend = Backend(db1=ConnectionRefusedError)

    @retry(attempts=1, idempotent=False)
    @failover(HOSTS, breaker=CircuitBreaker("ep", failure_threshold=1))
    def send(*, host: str) -> str:
        return backend(host=host)

    send()
    backend.calls.clear()
    assert "answer from db2" == send()
    assert ["db2"] == backend.calls


def test_not_idempotent_async(clock: FakeClock) -> None:
    """The async sweep honours idempotent=False too."""
    backend = Backend(db1=ConnectionRefusedError, db2=ConnectionResetError)

    @retry(attempts=1, idempotent=False)
    @failover(HOSTS)
    async def send(*, host: str) -> str:
        return backend(host=host)

    with pytest.raises(ConnectionResetError):
        asyncio.run(send())
    assert ["db1", "db2"] == backend.calls


def test_hanging_endpoint_times_out_and_fails_over(clock: FakeClock) -> None:
    """With attempt_timeout, a hanging endpoint is cut, counted on its breaker, and skipped."""
    calls: list[str] = []

    @retry(attempts=1, attempt_timeout=0.02)
    @failover(["db1", "db2"], breaker=CircuitBreaker("ep", failure_threshold=1))
    async def query(*, host: str) -> str:
        calls.append(host)
        if host == "db1":
            await asyncio.Event().wait()
        return host

    assert "db2" == asyncio.run(query())
    assert ["db1", "db2"] == calls
    calls.clear()
    assert "db2" == asyncio.run(query())
    assert ["db2"] == calls  # db1's breaker opened on the timeout
