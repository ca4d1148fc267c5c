"""Teaching the classifier: retryx.faults.register/unregister, the [faults] table, the
cause/context chain walk, Retryx-Pushback, huge Retry-After hints, and the failover
breakers judging with the policy's classifier."""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import retryx
from retryx import (
    CircuitBreaker,
    ConfigError,
    Fault,
    Permanent,
    Transient,
    _clients,
    backoff,
    classify,
    events,
    failover,
    faults,
    retry,
)
from retryx._classify import is_unsent
from retryx.testing import FakeClock, servers


class Busy(Exception):
    pass


class VeryBusy(Busy):
    pass


class Response:
    """A response object with headers, as clients hang them on their errors."""

    def __init__(self, status: int, headers: dict[str, Any]) -> None:
        self.status_code = status
        self.headers = headers


class ResponseError(Exception):
    def __init__(self, status: int, headers: dict[str, Any]) -> None:
        super().__init__(status)
        self.response = Response(status, headers)


BUSY = f"{__name__}:Busy"


@pytest.fixture(autouse=True)
def _no_rules() -> Iterator[None]:
    """Every test starts and ends without registered rules."""
    yield
    for key, _ in _clients._registered:
        _clients.remove_rule(key)


# --- register / unregister ----------------------------------------------------------------


def test_register_a_type_with_a_cause() -> None:
    """A type registered with a cause name is transient with that cause."""
    faults.register(Busy, "throttled")
    assert Fault(True, "throttled") == classify(Busy())


def test_register_by_name_without_importing() -> None:
    """``"module:Qualname"`` matches the class (and its subclasses) by name."""
    faults.register(BUSY, "server")
    assert (Fault(True, "server"), Fault(True, "server")) == (
        classify(Busy()),
        classify(VeryBusy()),
    )


def test_a_cause_rule_keeps_the_retry_after_hint() -> None:
    """A cause-name rule takes the exception's Retry-After hint."""
    faults.register(ResponseError, "throttled")
    assert Fault(True, "throttled", 9.0) == classify(ResponseError(418, {"Retry-After": "9"}))


def test_register_permanent_overrides_a_builtin_verdict() -> None:
    """A rule on a builtin type wins over the built-in (and fast) verdict, until unregistered."""
    assert classify(ConnectionResetError()).transient
    faults.register(ConnectionResetError, "permanent")
    assert Fault(False, "permanent") == classify(ConnectionResetError())
    faults.unregister(ConnectionResetError)
    assert Fault(True, "connection") == classify(ConnectionResetError())


def test_register_a_builtin_by_its_bare_name() -> None:
    """A bare builtin name such as ``"TimeoutError"`` is accepted."""
    faults.register("TimeoutError", "permanent")
    assert not classify(TimeoutError()).transient


def test_register_a_fault() -> None:
    """A ``Fault`` verdict is returned as is, ``unsent`` included."""
    fault = Fault(True, "connection", 1.5, unsent=True)
    faults.register(Busy, fault)
    assert (fault, True) == (classify(Busy()), is_unsent(Busy()))


def test_a_callable_rule_may_have_no_opinion() -> None:
    """A callable returning ``None`` falls through to the built-in rules."""
    faults.register(OSError, lambda exc: Fault(True, "server") if exc.errno == 1 else None)
    assert Fault(True, "server") == classify(OSError(1, "x"))
    assert Fault(True, "connection") == classify(ConnectionRefusedError())


def test_a_callable_rule_must_return_a_fault_or_none() -> None:
    """A callable returning anything else is a ``TypeError`` naming the rule."""
    faults.register(Busy, lambda exc: True)
    with pytest.raises(TypeError, match="must return a Fault or None"):
        classify(Busy())


def test_later_registrations_win() -> None:
    """When two rules match, the newest registration is asked first."""
    faults.register(Busy, "server")
    faults.register(VeryBusy, "permanent")
    assert (Fault(True, "server"), Fault(False, "permanent")) == (
        classify(Busy()),
        classify(VeryBusy()),
    )
    faults.register(Busy, "timeout")  # again: replaces, and is now the newest
    assert Fault(True, "timeout") == classify(VeryBusy())


def test_registered_rules_come_before_client_verdicts() -> None:
    """A registered rule wins over a built-in client verdict (here a refused urllib URLError)."""
    import urllib.error

    exc = urllib.error.URLError(ConnectionRefusedError())
    assert classify(exc).transient
    faults.register("urllib.error:URLError", "permanent")
    assert not classify(exc).transient


def test_markers_win_over_rules() -> None:
    """``Transient`` and ``Permanent`` say it themselves, whatever the rules."""
    faults.register(Exception, "permanent")
    assert classify(Transient("x")).transient
    faults.register(Exception, "connection")
    assert not classify(Permanent("x")).transient


def test_unregister_an_unknown_kind_does_nothing() -> None:
    """Unregistering a kind with no rule changes nothing."""
    faults.unregister(Busy)
    assert Fault(False, "permanent") == classify(Busy())


@pytest.mark.parametrize(
    ("kind", "verdict", "field"),
    [
        (42, "server", "faults.register.kind"),
        ("NoSuchBuiltin", "server", "faults.register.kind"),
        ("module:", "server", "faults.register.kind"),
        (int, "server", "faults.register.kind"),
        (Busy, "flaky", "faults.register.verdict"),
        (Busy, 3, "faults.register.verdict"),
    ],
)
def test_bad_arguments_are_config_errors(kind: Any, verdict: Any, field: str) -> None:
    """A bad kind or verdict is a ``ConfigError`` naming the parameter."""
    with pytest.raises(ConfigError, match=field):
        faults.register(kind, verdict)


def test_register_is_thread_safe() -> None:
    """Threads registering and classifying at once never see a broken rule table."""
    errors: list[BaseException] = []
    kinds = [type(f"Kind{i}", (Exception,), {}) for i in range(20)]

    def work(n: int) -> None:
        try:
            for i in range(200):
                kind = kinds[n * 5 + i % 5]  # each thread its own kinds, all the same table
                faults.register(kind, "server")
                assert classify(kind()).transient
                faults.unregister(kind)
                classify(kind())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [] == errors
    assert not any(t.is_alive() for t in threads)


def test_faults_is_a_lazy_public_module() -> None:
    """``retryx.faults`` is importable from the package."""
    assert faults is retryx.faults


# --- the [faults] configuration table -------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_faults_table(tmp_path: Path) -> None:
    """``[faults]`` maps ``"module:Qualname"`` to a cause; a reload replaces the rules."""
    path = write(tmp_path / "r.toml", f'[faults]\n"{BUSY}" = "throttled"\n')
    retryx.configure(path)
    assert Fault(True, "throttled") == classify(Busy())
    write(path, f'[faults]\n"{BUSY}" = "permanent"\n')
    retryx.configure(path)
    assert Fault(False, "permanent") == classify(Busy())
    write(path, "")
    retryx.configure(path)
    assert Fault(False, "permanent") == classify(Busy())


def test_config_check_reports_the_faults_table(tmp_path: Path) -> None:
    """``retryx config check`` counts the ``[faults]`` rules of a file."""
    from retryx import _config

    report, problems = _config.check(
        str(write(tmp_path / "r.toml", f'[faults]\n"{BUSY}" = "server"\n'))
    )
    assert ([], "faults: 1 rule(s) in [faults]") == (problems, report[-1])


def test_config_faults_apply_to_builtin_types(tmp_path: Path) -> None:
    """A ``[faults]`` rule on a builtin type overrides its fast verdict after a reload."""
    assert classify(BrokenPipeError()).transient
    retryx.configure(write(tmp_path / "r.toml", '[faults]\n"BrokenPipeError" = "permanent"\n'))
    assert not classify(BrokenPipeError()).transient


def test_config_faults_load_without_configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``[faults]`` table applies from the first fault, as named policies do."""
    monkeypatch.setenv(
        "RETRYX_CONFIG", str(write(tmp_path / "r.toml", f'[faults]\n"{BUSY}" = "server"\n'))
    )
    assert Fault(True, "server") == classify(Busy())


def test_registered_rules_come_before_the_config(tmp_path: Path) -> None:
    """A rule registered in code is asked before the ``[faults]`` table."""
    retryx.configure(write(tmp_path / "r.toml", f'[faults]\n"{BUSY}" = "server"\n'))
    faults.register(Busy, "timeout")
    assert Fault(True, "timeout") == classify(Busy())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'[faults]\n"{BUSY}" = "flaky"\n', f'r.toml: [faults] "{BUSY}": must be one of conn'),
        (f'[faults]\n"{BUSY}" = 3\n', f'r.toml: [faults] "{BUSY}": must be a cause name, got 3'),
        ('[faults]\n"nocolon" = "server"\n', "r.toml: [faults] nocolon: kind must be"),
        ("faults = 3\n", "r.toml: faults: must be a table [faults], got 3"),
    ],
)
def test_config_faults_errors_name_file_table_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    """Bad ``[faults]`` entries are ``ConfigError``s naming the file, the table and the key."""
    with pytest.raises(ConfigError) as info:
        retryx.configure(write(tmp_path / "r.toml", text))
    assert str(info.value).startswith(str(tmp_path / message.split(":")[0]) + ":")
    assert message.partition(" ")[2] in str(info.value)


# --- the chain walk -----------------------------------------------------------------------


def _chain(*links: BaseException) -> BaseException:
    """``links[0]`` raised from ``links[1]`` raised from ... (each the next one's cause)."""
    for outer, inner in itertools.pairwise(links):
        outer.__cause__ = inner
    return links[0]


def test_unknown_wrapper_of_a_refused_connection() -> None:
    """An unknown exception caused by a refused connection is a connection fault, unsent."""

    def connect(addr: tuple[str, int]) -> None:
        try:
            socket.create_connection(addr, timeout=2)
        except OSError as exc:
            raise RuntimeError("storage down") from exc

    with servers.refusing() as addr, pytest.raises(RuntimeError) as info:
        connect(addr)
    assert (Fault(True, "connection", unsent=True), True) == (
        classify(info.value),
        is_unsent(info.value),
    )


def test_the_context_counts_when_there_is_no_cause() -> None:
    """``__context__`` (raised while handling) is walked when there is no ``__cause__``."""

    def slow() -> None:
        try:
            raise TimeoutError("slow")
        except TimeoutError:
            raise RuntimeError("gave up")  # noqa: B904 - the implicit context is the point

    with pytest.raises(RuntimeError) as info:
        slow()
    assert (Fault(True, "timeout"), False) == (classify(info.value), is_unsent(info.value))


def test_a_context_raised_in_its_handler_counts_even_from_none() -> None:
    """``raise ... from None`` in the handler still counts: libraries re-raise that way."""

    def hidden() -> None:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise RuntimeError("hidden") from None

    with pytest.raises(RuntimeError) as info:
        hidden()
    assert Fault(True, "connection") == classify(info.value)


def test_a_context_not_raised_in_its_handler_is_not_a_cause() -> None:
    """An error raised further down while another is handled did not wrap it: not walked."""

    def fails() -> None:
        raise RuntimeError("unrelated")

    def handler() -> None:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            fails()  # raised in another frame than the handler's

    with pytest.raises(RuntimeError) as info:
        handler()
    assert Fault(False, "permanent") == classify(info.value)


def test_a_later_attempt_is_not_judged_by_the_first_fault(is_async: bool) -> None:
    """A permanent fault on attempt 2 is not made transient by attempt 1's fault, which
    the retry loop was handling when attempt 2 ran (its implicit context)."""
    calls = 0

    def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError(111, "refused")
        raise Busy("no")

    async def awork() -> None:
        work()

    policy = retryx.Policy(attempts=5, backoff=backoff.none(), jitter="none")
    call = (lambda: asyncio.run(retry(policy)(awork)())) if is_async else retry(policy)(work)
    with pytest.raises(Busy):
        call()
    assert 2 == calls


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_the_walk_stops_after_five_links() -> None:
    """A socket fault five links deep counts; six links deep it does not."""
    five = _chain(*(ValueError(i) for i in range(5)), ConnectionResetError())
    six = _chain(*(ValueError(i) for i in range(6)), ConnectionResetError())
    assert (True, False) == (classify(five).transient, classify(six).transient)


def test_the_walk_survives_a_cycle() -> None:
    """A cycle in the chain ends the walk (permanent), without looping."""
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert Fault(False, "permanent") == classify(a)
    assert not is_unsent(a)


@pytest.mark.parametrize(
    "exc",
    [
        Permanent("no"),
        ssl.SSLCertVerificationError(1, "certificate verify failed"),
        socket.gaierror(socket.EAI_NONAME, "no such name"),
        ResponseError(404, {}),
        FileNotFoundError(2, "missing"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_known_permanent_fault_is_not_overridden_by_its_chain(exc: Exception) -> None:
    """A fault known to be permanent stays permanent whatever its chain holds."""
    exc.__cause__ = ConnectionRefusedError()
    assert not classify(exc).transient
    assert not is_unsent(exc)


def test_a_registered_permanent_type_is_not_overridden_by_its_chain() -> None:
    """A type registered as permanent stays permanent over a socket fault in its chain."""
    faults.register(Busy, "permanent")
    assert not classify(_chain(Busy(), ConnectionResetError())).transient


def test_a_permanent_link_ends_the_walk() -> None:
    """A certificate failure in the chain is not overridden by what caused it."""
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert not classify(_chain(RuntimeError(), cert, ConnectionResetError())).transient


# --- Retryx-Pushback and Retry-After ----------------------------------------------------------


def test_pushback_no_retry_is_permanent() -> None:
    """``Retryx-Pushback: no-retry`` on a 503 is permanent with cause ``pushback``."""
    exc = ResponseError(503, {"retryx-pushback": "No-Retry", "Retry-After": "1"})
    assert Fault(False, "pushback") == classify(exc)


def test_pushback_seconds_is_the_hint() -> None:
    """``Retryx-Pushback: <seconds>`` is the ``retry_after`` hint."""
    exc = ResponseError(500, {"Retryx-Pushback": "2.5", "Retry-After": "9"})
    assert Fault(True, "server", 2.5) == classify(exc)


def test_pushback_from_a_real_requests_response() -> None:
    """A real ``requests.HTTPError`` whose response says no-retry is permanent."""
    requests = pytest.importorskip("requests")
    with (
        servers.http([(503, {"Retryx-Pushback": "no-retry"}, b"")]) as srv,
        pytest.raises(requests.HTTPError) as info,
    ):
        requests.get(srv.url, timeout=5).raise_for_status()
    assert Fault(False, "pushback") == classify(info.value)


def test_pushback_on_a_real_aiohttp_error() -> None:
    """aiohttp's ``ClientResponseError`` carries the headers itself: pushback seconds are read."""
    aiohttp = pytest.importorskip("aiohttp")

    async def get(url: str) -> None:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            response.raise_for_status()

    with (
        servers.http([(503, {"Retryx-Pushback": "4", "Retry-After": "30"}, b"")]) as srv,
        pytest.raises(aiohttp.ClientResponseError) as info,
    ):
        asyncio.run(get(srv.url))
    assert Fault(True, "throttled", 4.0) == classify(info.value)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": 10**400},
        {"Retry-After": "9" * 400},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    ],
    ids=["huge-int", "huge-text", "far-date"],
)
def test_a_huge_retry_after_is_too_large_not_an_error(headers: dict[str, Any]) -> None:
    """A Retry-After beyond a float's range (or years away) is a huge hint, not an OverflowError."""
    hint = classify(ResponseError(503, headers)).retry_after
    assert hint is not None
    assert hint > 10**10


def test_a_huge_retry_after_attribute_is_infinite() -> None:
    """``exc.retry_after = 10**400`` is an infinite hint (and a negative one is 0)."""
    assert float("inf") == classify(Transient("x", retry_after=10**400)).retry_after
    assert 0.0 == classify(Transient("x", retry_after=-(10**400))).retry_after


def test_a_huge_retry_after_gives_up_with_reason_deadline(clock: FakeClock) -> None:
    """The pipeline gives up at once with reason ``deadline`` on a hint of ``10**400`` seconds."""
    reasons: list[str] = []
    events.subscribe(lambda e: reasons.append(e.reason) if isinstance(e, events.GaveUp) else None)
    calls = 0

    @retry(attempts=3)
    def call() -> None:
        nonlocal calls
        calls += 1
        raise ResponseError(503, {"Retry-After": 10**400})

    with pytest.raises(ResponseError):
        call()
    assert (1, ["deadline"], []) == (calls, reasons, clock.sleeps)


# --- failover breakers judge with the policy's classifier ------------------------------------


def _sweep(retry_on: Any, breaker: CircuitBreaker | None = None) -> tuple[Any, list[str]]:
    hosts: list[str] = []

    @retry(attempts=2, retry_on=retry_on, backoff=backoff.none(), jitter="none")
    @failover(["a", "b"], breaker=breaker)
    def call(host: str) -> str:
        hosts.append(host)
        if host == "a":
            raise KeyError(host)
        return host

    return call, hosts


def test_failover_breakers_use_the_policy_classifier(clock: FakeClock) -> None:
    """With ``retry_on=KeyError`` and no ``counts=``, the endpoint breakers count KeyErrors."""
    call, hosts = _sweep(KeyError)
    for _ in range(5):
        assert "b" == call()
    # a's breaker (failure_threshold=3) opened after three KeyErrors: a is skipped since.
    assert ["a", "b"] * 3 + ["b", "b"] == hosts


def test_a_breaker_template_without_counts_uses_the_policy_classifier(clock: FakeClock) -> None:
    """A template breaker left at the default ``counts`` also takes the policy's classifier."""
    call, hosts = _sweep(KeyError, CircuitBreaker("tpl", failure_threshold=2))
    for _ in range(4):
        call()
    assert ["a", "b"] * 2 + ["b", "b"] == hosts


def test_a_breaker_template_with_counts_keeps_them(clock: FakeClock) -> None:
    """A template with its own ``counts=`` keeps judging with it."""
    template = CircuitBreaker("tpl", failure_threshold=2, counts=TimeoutError)
    call, hosts = _sweep(KeyError, template)
    for _ in range(4):
        call()
    assert ["a", "b"] * 4 == hosts
