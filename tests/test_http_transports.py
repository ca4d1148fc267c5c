"""The httpx transports and the requests adapter: real clients against real loopback servers.

Every behaviour runs for the three integrations (``retryx.httpx.Transport``,
``retryx.httpx.AsyncTransport`` and ``retryx.requests.Adapter``) through one
small driver per client, so the rules are proven once for each.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

import retryx
import retryx.httpx
import retryx.requests
from retryx import CircuitOpenError, ConfigError, Policy, RetryBudget, events
from retryx.testing import FakeClock, servers

FAST = Policy(attempts=3, backoff="none", jitter="none")
TIMEOUT = 5.0


class Driver:
    """One client under test: ``send`` returns ``(status, body)`` or raises the client's error."""

    kind: str
    transport: Any

    def send(
        self, method: str, url: str, *, content: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stats(self, url: str) -> retryx._stats.Stats:
        return self.transport.stats(url.split("//")[1].rstrip("/"))  # type: ignore[no-any-return]


class HttpxSync(Driver):
    kind = "httpx"

    def __init__(self, policy: Policy, **options: Any) -> None:
        self.transport = retryx.httpx.Transport(policy, **options)
        self.client = httpx.Client(transport=self.transport, timeout=TIMEOUT)

    def send(
        self, method: str, url: str, *, content: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        response = self.client.request(method, url, content=content, headers=headers)
        return response.status_code, response.content

    def close(self) -> None:
        self.client.close()


class HttpxAsync(Driver):
    kind = "httpx-async"

    def __init__(self, policy: Policy, **options: Any) -> None:
        self.runner = asyncio.Runner()
        self.transport = retryx.httpx.AsyncTransport(policy, **options)
        self.client = httpx.AsyncClient(transport=self.transport, timeout=TIMEOUT)

    def send(
        self, method: str, url: str, *, content: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if content is not None and not isinstance(content, bytes):
            content = _async_iter(content)

        async def go() -> tuple[int, bytes]:
            response = await self.client.request(method, url, content=content, headers=headers)
            return response.status_code, response.content

        return self.runner.run(go())

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


async def _async_iter(chunks: Any) -> Any:
    for chunk in chunks:
        yield chunk


class Requests(Driver):
    kind = "requests"

    def __init__(self, policy: Policy, **options: Any) -> None:
        self.transport = retryx.requests.Adapter(policy, **options)
        self.session = requests.Session()
        self.session.mount("http://", self.transport)

    def send(
        self, method: str, url: str, *, content: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        response = self.session.request(method, url, data=content, headers=headers, timeout=TIMEOUT)
        return response.status_code, response.content

    def close(self) -> None:
        self.session.close()


DRIVERS = {"httpx": HttpxSync, "httpx-async": HttpxAsync, "requests": Requests}
CONNECT_ERRORS = {
    "httpx": httpx.ConnectError,
    "httpx-async": httpx.ConnectError,
    "requests": requests.ConnectionError,
}
SENT_ERRORS = {
    "httpx": httpx.RemoteProtocolError,
    "httpx-async": httpx.RemoteProtocolError,
    "requests": requests.ConnectionError,
}


@pytest.fixture(params=sorted(DRIVERS))
def make(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory of drivers of one client kind, closed at the end of the test."""
    made: list[Driver] = []

    def factory(policy: Policy = FAST, **options: Any) -> Driver:
        options.setdefault("breakers", False)
        driver: Driver = DRIVERS[request.param](policy, **options)
        made.append(driver)
        return driver

    yield factory
    for driver in made:
        driver.close()


# --- statuses --------------------------------------------------------------------------


def test_retryable_statuses_are_retried_until_success(make: Any) -> None:
    """503 and 502 are retried; the 200 that follows is what the caller gets."""
    client = make()
    with servers.http([(503, {}, b""), (502, {}, b""), (200, {}, b"ok")]) as srv:
        assert (200, b"ok") == client.send("GET", srv.url + "/a")
        assert ["/a", "/a", "/a"] == [r.path for r in srv.requests]
        stats = client.stats(srv.url)
        assert (3, 2, {"throttled": 1, "server": 1}) == (
            stats.attempts,
            stats.retries,
            stats.by_cause,
        )


def test_last_response_is_returned_after_giving_up(make: Any) -> None:
    """After the last attempt on a retryable status, that response (body readable) is returned."""
    client = make()
    with servers.http([(503, {}, b"busy")]) as srv:
        assert (503, b"busy") == client.send("GET", srv.url)
        assert 3 == len(srv.requests)
        assert 1 == client.stats(srv.url).gave_up


def test_retried_responses_give_their_connection_back(make: Any) -> None:
    """Each retried response is read and released: all attempts share one kept-alive connection."""
    client = make()
    with servers.http([(500, {}, b"x" * 1000), (500, {}, b"y"), (200, {}, b"ok")]) as srv:
        assert (200, b"ok") == client.send("GET", srv.url)
        assert 1 == srv.connections


@pytest.mark.parametrize("status", [400, 404, 501])
def test_other_statuses_are_returned_at_once(make: Any, status: int) -> None:
    """A status outside 408, 425, 429, 500, 502, 503, 504 is one attempt."""
    client = make()
    with servers.http([(status, {}, b"no")]) as srv:
        assert (status, b"no") == client.send("GET", srv.url)
        assert 1 == len(srv.requests)


def test_retry_after_is_honoured(make: Any, clock: FakeClock) -> None:
    """A Retry-After of 2 seconds is the wait before the next attempt (not jittered)."""
    client = make(Policy(attempts=3, jitter="full"))
    with servers.http([(429, {"Retry-After": "2"}, b""), (200, {}, b"ok")]) as srv:
        assert (200, b"ok") == client.send("GET", srv.url)
        assert [2.0] == clock.sleeps


def test_retry_after_beyond_the_cap_gives_up_at_once(make: Any, clock: FakeClock) -> None:
    """A hint larger than ``retry_after_max`` ends the request: the 503 is returned."""
    client = make(FAST.replace(retry_after_max=5.0))
    with servers.http([(503, {"Retry-After": "60"}, b"later")]) as srv:
        assert (503, b"later") == client.send("GET", srv.url)
        assert 1 == len(srv.requests)
        assert [] == clock.sleeps


def test_deadline_bounds_the_request(make: Any, clock: FakeClock) -> None:
    """With a 1 s deadline and 2 s waits, the first failure ends the request."""
    client = make(Policy(attempts=5, backoff=retryx.backoff.fixed(2.0), jitter="none", deadline=1))
    with servers.http([(503, {}, b"")]) as srv:
        assert 503 == client.send("GET", srv.url)[0]
        assert 1 == len(srv.requests)


def test_deadline_ends_a_hanging_attempt(make: Any) -> None:
    """With a 0.5 s deadline, an attempt that hangs is cut by the client's timeout, capped
    by the time left (the client's own timeout is 5 s)."""
    client = make(FAST.replace(deadline=0.5))
    with servers.slow(3.0) as addr:
        started = time.monotonic()
        with pytest.raises((httpx.TimeoutException, requests.Timeout)):
            client.send("GET", f"http://{addr.host}:{addr.port}/")
        assert time.monotonic() - started < 2.0
        assert 1 == addr.connections


def test_budget_denies_retries(make: Any) -> None:
    """A shared RetryBudget with 4 tokens allows one retry, then gives up (reason budget)."""
    reasons: list[str] = []
    events.subscribe(lambda e: reasons.append(e.reason) if isinstance(e, events.GaveUp) else None)
    client = make(budget=RetryBudget(max_tokens=4, token_ratio=0.1))
    with servers.http([(503, {}, b"")]) as srv:
        assert 503 == client.send("GET", srv.url)[0]
        assert 2 == len(srv.requests)
        assert ["budget"] == reasons


# --- the pushback header -----------------------------------------------------------------


def test_pushback_no_retry_is_permanent(make: Any) -> None:
    """``Retryx-Pushback: no-retry`` on a 503: one attempt, cause ``pushback``."""
    client = make()
    with servers.http([(503, {"Retryx-Pushback": "no-retry"}, b"done")]) as srv:
        assert (503, b"done") == client.send("GET", srv.url)
        assert 1 == len(srv.requests)
        assert {"pushback": 1} == client.stats(srv.url).by_cause


def test_pushback_seconds_is_a_hint(make: Any, clock: FakeClock) -> None:
    """``Retryx-Pushback: 1.5`` is the wait before the next attempt."""
    client = make()
    with servers.http([(503, {"Retryx-Pushback": "1.5"}, b""), (200, {}, b"ok")]) as srv:
        assert (200, b"ok") == client.send("GET", srv.url)
        assert [1.5] == clock.sleeps


# --- faults and the method rules -----------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "PUT", "DELETE"])
def test_refused_connections_are_retried_for_every_method(make: Any, method: str) -> None:
    """A refused connection proves the request unsent: every method is retried, POST too."""
    client = make()
    with servers.refusing() as addr:
        url = f"http://{addr.host}:{addr.port}/"
        with pytest.raises(CONNECT_ERRORS[client.kind]) as caught:
            client.send(method, url, content=b"body")
        assert 3 == client.stats(url).attempts
        assert any("gave up after 3 attempts" in note for note in caught.value.__notes__)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_is_not_retried_once_sent(make: Any, method: str) -> None:
    """A POST or PATCH that reached the server is not sent again, for a status or a drop."""
    client = make()
    with servers.http([(503, {}, b"busy")]) as srv:
        assert (503, b"busy") == client.send(method, srv.url, content=b"pay")
        assert 1 == len(srv.requests)
    with servers.accept_then_close() as addr:
        with pytest.raises(SENT_ERRORS[client.kind]):
            client.send(method, f"http://{addr.host}:{addr.port}/", content=b"pay")
        assert 1 == addr.connections


def test_idempotent_methods_are_retried_after_a_drop(make: Any) -> None:
    """A GET whose connection closed without an answer is sent again."""
    client = make()
    with servers.accept_then_close() as addr:
        with pytest.raises(SENT_ERRORS[client.kind]):
            client.send("GET", f"http://{addr.host}:{addr.port}/")
        assert 3 == addr.connections


def test_post_with_an_idempotency_key_is_retried(make: Any) -> None:
    """An ``Idempotency-Key`` header makes a POST safe to send again."""
    client = make()
    with servers.http([(503, {}, b""), (201, {}, b"made")]) as srv:
        headers = {"Idempotency-Key": "order-42"}
        assert (201, b"made") == client.send("POST", srv.url, content=b"pay", headers=headers)
        assert [b"pay", b"pay"] == [r.body for r in srv.requests]


def test_streamed_body_is_never_sent_twice(make: Any) -> None:
    """A PUT whose body is a generator is sent once: the 503 comes back as is."""
    client = make()
    with servers.http([(503, {}, b"busy"), (200, {}, b"ok")]) as srv:
        body = iter([b"chunk-1,", b"chunk-2"])
        assert (503, b"busy") == client.send("PUT", srv.url, content=body)
        assert [b"chunk-1,chunk-2"] == [r.body for r in srv.requests]


# --- breakers, names, nesting --------------------------------------------------------


def test_one_breaker_per_host_opens_and_rejects(make: Any) -> None:
    """The host's breaker (named ``host:port``) opens after 5 failures and then rejects."""
    client = make(Policy(attempts=1), breakers=True)
    with servers.http([(503, {}, b"")]) as srv:
        for _ in range(5):
            assert 503 == client.send("GET", srv.url)[0]
        with pytest.raises(CircuitOpenError) as caught:
            client.send("GET", srv.url)
        host = f"{srv.host}:{srv.port}"
        assert host == caught.value.breaker
        assert "open" == client.transport.breaker(host).state
        assert 5 == len(srv.requests)


def test_breakers_can_copy_a_template(make: Any) -> None:
    """``breakers=CircuitBreaker(...)`` gives each host a copy with its settings."""
    template = retryx.CircuitBreaker("template", failure_threshold=2)
    client = make(Policy(attempts=1), breakers=template)
    with servers.http([(503, {}, b"")]) as srv:
        client.send("GET", srv.url)
        client.send("GET", srv.url)
        with pytest.raises(CircuitOpenError):
            client.send("GET", srv.url)
        assert "closed" == template.state


def test_events_are_named_after_the_client_and_host(make: Any) -> None:
    """Events carry ``<client>@host:port`` (the policy's name replaces the client's)."""
    names: set[str] = set()
    events.subscribe(lambda e: names.add(getattr(e, "name", "")))
    client = make()
    named = make(FAST.replace(name="payments"))
    with servers.http([(503, {}, b""), (200, {}, b"")]) as srv:
        client.send("GET", srv.url)
        named.send("GET", srv.url)
    client_name = "requests" if client.kind == "requests" else "httpx"
    assert {f"{client_name}@{srv.host}:{srv.port}", f"payments@{srv.host}:{srv.port}"} == names


def test_an_outer_retry_defers_the_transport(make: Any) -> None:
    """Under a retrying caller the transport makes one attempt per outer attempt: 3, not 9."""
    client = make()

    @retryx.retry(FAST)
    def fetch(url: str) -> int:
        status, _ = client.send("GET", url)
        if status >= 500:
            raise retryx.Transient(f"HTTP {status}")
        return status

    with servers.http([(503, {}, b"")]) as srv, pytest.raises(retryx.Transient):
        fetch(srv.url)
    assert 3 == len(srv.requests)


def test_an_outer_retry_never_resends_a_sent_post(make: Any) -> None:
    """The transport's verdict travels to the outer layer: a POST that reached the server
    and dropped is not sent again by the outer retry either."""
    client = make()

    @retryx.retry(FAST)
    def pay(url: str) -> int:
        return client.send("POST", url, content=b"pay")[0]

    with servers.accept_then_close() as addr, pytest.raises(SENT_ERRORS[client.kind]):
        pay(f"http://{addr.host}:{addr.port}/")
    assert 1 == addr.connections


# --- construction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"policy": "fast"}, "policy"),
        ({"breakers": "yes"}, "breakers"),
        ({"budget": 3}, "budget"),
        ({"policy": Policy(attempt_timeout=1.0)}, "attempt_timeout"),
    ],
)
def test_bad_arguments_are_config_errors(options: dict[str, Any], word: str) -> None:
    """A bad argument of a sync client is a ConfigError naming it, at construction."""
    for make_one in (retryx.httpx.Transport, retryx.requests.Adapter):
        with pytest.raises(ConfigError, match=word):
            make_one(**options)
    if word != "attempt_timeout":
        with pytest.raises(ConfigError, match=word):
            retryx.httpx.AsyncTransport(**options)


def test_adapter_turns_urllib3_retries_off() -> None:
    """The adapter runs urllib3 with ``max_retries=0``: retryx alone decides."""
    adapter = retryx.requests.Adapter()
    assert 0 == adapter.max_retries.total
    assert isinstance(adapter, requests.adapters.HTTPAdapter)


def test_attempt_timeout_bounds_each_async_attempt() -> None:
    """``attempt_timeout`` cuts a hanging attempt; each of the 3 attempts is a new connection."""
    policy = FAST.replace(attempt_timeout=0.2)
    transport = retryx.httpx.AsyncTransport(policy, breakers=False)

    async def main(url: str) -> None:
        async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
            await client.get(url)

    with servers.slow(2.0) as addr:
        with pytest.raises(TimeoutError):
            asyncio.run(main(f"http://{addr.host}:{addr.port}/"))
        assert 3 == addr.connections


def test_stats_of_an_unknown_host_is_a_config_error() -> None:
    """Asking for a host no request went to names it."""
    with pytest.raises(ConfigError, match="nowhere:1"):
        retryx.httpx.Transport().stats("nowhere:1")


def test_the_modules_import_the_real_clients() -> None:
    """``retryx/httpx.py`` and ``retryx/requests.py`` do not shadow the packages they wrap."""
    code = (
        "import retryx.httpx, retryx.requests, httpx, requests, sys;"
        "assert retryx.httpx.httpx is httpx and httpx.Client;"
        "assert retryx.requests.requests is requests and requests.Session;"
        "assert retryx.httpx is sys.modules['retryx.httpx'];"
        "import retryx; assert retryx.requests is sys.modules['retryx.requests']"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
