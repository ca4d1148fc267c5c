"""Loopback fault servers of retryx.testing.servers, checked with real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import datetime
import http.client
import pickle
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from retryx._errors import ConfigError
from retryx.testing import servers

TIMEOUT = 2.0  # every client socket read is bounded by this

ACCEPTING: list[Callable[[], AbstractContextManager[servers.Address]]] = [
    servers.resetting,
    servers.accept_then_close,
    servers.echo,
    lambda: servers.slow(0.01),
    lambda: servers.http([(200, {}, b"ok")]),
]


def _connect(addr: tuple[str, int]) -> socket.socket:
    return socket.create_connection(addr, timeout=TIMEOUT)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read n bytes (or until EOF), bounded by the socket timeout and n reads."""
    data = b""
    for _ in range(n):
        if len(data) >= n:
            break
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _wait_for_threads(count: int) -> int:
    """Wait (at most 2 s) for the number of live threads to drop to ``count``."""
    deadline = time.monotonic() + 2.0
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Check that the test leaves no server thread behind."""
    before = threading.active_count()
    yield
    assert before == _wait_for_threads(before)


# -------------------------------------------------------------------- addresses


@pytest.mark.parametrize("factory", [servers.refusing, *ACCEPTING])
def test_servers_yield_loopback_host_and_port(
    factory: Callable[[], AbstractContextManager[servers.Address]],
) -> None:
    """Every server yields a ("127.0.0.1", port) tuple that unpacks and compares as one."""
    with factory() as addr:
        host, port = addr
        assert ("127.0.0.1", port) == addr
        assert isinstance(addr, tuple)
        assert (host, port) == (addr.host, addr.port)
        assert 0 < port < 65536
        assert addr is copy.deepcopy(addr)
        assert ("127.0.0.1", port) == pickle.loads(pickle.dumps(addr))


@pytest.mark.usefixtures("no_leaked_threads")
@pytest.mark.parametrize("factory", ACCEPTING)
def test_threads_and_sockets_are_gone_after_exit(
    factory: Callable[[], AbstractContextManager[servers.Address]],
) -> None:
    """Leaving the context stops the server thread, even with a client still connected."""
    with factory() as addr:
        client = socket.socket()
        try:
            client.settimeout(TIMEOUT)
            client.connect(addr)
        except ConnectionResetError:
            pass  # resetting() may reset at connect already
    try:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(addr)
    finally:
        client.close()


# --------------------------------------------------------------------- refusing


@pytest.mark.usefixtures("no_leaked_threads")
def test_refusing_refuses() -> None:
    """Connecting to refusing() raises ConnectionRefusedError, every time."""
    with servers.refusing() as addr:
        for _ in range(3):
            with socket.socket() as sock:
                sock.settimeout(TIMEOUT)
                with pytest.raises(ConnectionRefusedError):
                    sock.connect(addr)
        assert addr.connections == 0


def test_refusing_refuses_asyncio() -> None:
    """asyncio.open_connection to refusing() raises ConnectionRefusedError."""

    async def main() -> None:
        with servers.refusing() as (host, port), pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(host, port)

    asyncio.run(main())


# -------------------------------------------------------------------- resetting


@pytest.mark.usefixtures("no_leaked_threads")
def test_resetting_resets_at_connect_or_first_read() -> None:
    """Each connection to resetting() fails with ConnectionResetError at connect or first read."""
    with servers.resetting() as addr:
        for _ in range(3):
            # The reset may surface at connect or at the first read.
            with pytest.raises(ConnectionResetError), _connect(addr) as sock:
                sock.recv(1)
        assert addr.connections == 3


def test_resetting_resets_a_client_that_sends_first() -> None:
    """A client that sends a request before reading still gets a reset, not a clean EOF."""

    def request(addr: tuple[str, int]) -> bytes:
        with _connect(addr) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            return sock.recv(1)

    # The reset may surface at connect, at the send (broken pipe) or at the read.
    with servers.resetting() as addr, pytest.raises((ConnectionResetError, BrokenPipeError)):
        request(addr)


# ------------------------------------------------------------ accept_then_close


@pytest.mark.usefixtures("no_leaked_threads")
def test_accept_then_close_gives_eof() -> None:
    """A read from accept_then_close() returns b'' (clean EOF)."""
    with servers.accept_then_close() as addr:
        for _ in range(3):
            with _connect(addr) as sock:
                assert sock.recv(16) == b""
        assert addr.connections == 3


def test_accept_then_close_gives_eof_after_a_request() -> None:
    """Data sent before the close does not turn the EOF into a reset."""
    with servers.accept_then_close() as addr, _connect(addr) as sock:
        sock.sendall(b"x" * 100_000)
        assert sock.recv(16) == b""


# ------------------------------------------------------------------- echo, slow


@pytest.mark.usefixtures("no_leaked_threads")
def test_echo_round_trips() -> None:
    """echo() sends back every byte, also for several clients at once."""
    with servers.echo() as addr, _connect(addr) as one, _connect(addr) as two:
        payload = bytes(range(256)) * 1000
        one.sendall(payload)
        two.sendall(b"hello")
        assert _recv_exactly(two, 5) == b"hello"
        assert payload == _recv_exactly(one, len(payload))
        one.shutdown(socket.SHUT_WR)
        assert one.recv(1) == b""
        assert addr.connections == 2


def test_echo_asyncio_client() -> None:
    """An asyncio client gets its bytes back from echo()."""

    async def main() -> bytes:
        with servers.echo() as (host, port):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"ping")
                await writer.drain()
                return await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
            finally:
                writer.close()
                await writer.wait_closed()

    assert asyncio.run(main()) == b"ping"


@pytest.mark.usefixtures("no_leaked_threads")
def test_slow_echoes_after_the_delay() -> None:
    """slow(0.2) echoes a chunk back no sooner than 0.2 s after it was sent."""
    with servers.slow(0.2) as addr, _connect(addr) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        assert _recv_exactly(sock, 5) == b"hello"
        elapsed = time.monotonic() - start
        assert 0.19 <= elapsed < 1.5


def test_slow_times_out_a_client_with_a_shorter_timeout() -> None:
    """A client whose read timeout is below the delay gets TimeoutError."""
    with servers.slow(0.3) as addr, _connect(addr) as sock:
        sock.settimeout(0.05)
        sock.sendall(b"x")
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_slow_accepts_timedelta_and_zero() -> None:
    """slow() takes a timedelta or 0 (then it is a plain echo)."""
    delays: list[float | datetime.timedelta] = [datetime.timedelta(milliseconds=10), 0]
    for delay in delays:
        with servers.slow(delay) as addr, _connect(addr) as sock:
            sock.sendall(b"abc")
            assert _recv_exactly(sock, 3) == b"abc"


# ------------------------------------------------------------------------- http


def _get(url: str) -> tuple[int, Any, bytes]:
    """GET url with urllib: (status, headers, body), for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


@pytest.mark.usefixtures("no_leaked_threads")
def test_http_script_in_order_with_last_repeating() -> None:
    """Requests get the script's responses in order, then the last one again and again."""
    script = [
        (503, {"Retry-After": "1"}, b"busy"),
        (429, [("Retry-After", 2)], ""),
        (200, {"X-Test": "yes"}, "ok"),
    ]
    with servers.http(script) as srv:
        got = [_get(f"{srv.url}/item/{i}") for i in range(5)]
        assert [status for status, _, _ in got] == [503, 429, 200, 200, 200]
        assert [body for _, _, body in got] == [b"busy", b"", b"ok", b"ok", b"ok"]
        assert got[4][1]["x-test"] == "yes"
        assert [f"/item/{i}" for i in range(5)] == [r.path for r in srv.requests]
        assert {"GET"} == {r.method for r in srv.requests}
        assert srv.url == f"http://127.0.0.1:{srv.port}"


def test_http_retry_after_reaches_urllib_http_error() -> None:
    """A scripted 503's Retry-After header is readable from urllib's HTTPError.headers."""
    with servers.http([(503, {"Retry-After": "1"}, b""), (200, {}, b"ok")]) as srv:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(srv.url, timeout=TIMEOUT)
        with info.value as error:
            assert error.code == 503
            assert error.headers["Retry-After"] == "1"
        with urllib.request.urlopen(srv.url, timeout=TIMEOUT) as response:
            assert response.read() == b"ok"


def test_http_records_headers_and_bodies() -> None:
    """Requests are recorded with case-insensitive headers and their body (length or chunked)."""
    with servers.http([(201, {}, b"")]) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=TIMEOUT)
        try:
            conn.request("POST", "/a", body=b"payload", headers={"X-Key": "v"})
            conn.getresponse().read()
            conn.request("PUT", "/b", body=iter([b"ab", b"cd"]), encode_chunked=True)
            conn.getresponse().read()
        finally:
            conn.close()
        first, second = srv.requests
        assert (first.method, first.path, first.body) == ("POST", "/a", b"payload")
        assert first.headers["x-key"] == "v"
        assert (second.method, second.path, second.body) == ("PUT", "/b", b"abcd")
        assert "X-Key" in repr(first)


def test_http_keeps_connections_alive() -> None:
    """Several requests on one keep-alive connection are answered on that connection."""
    with servers.http([(200, {}, b"one"), (200, {}, b"two")]) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=TIMEOUT)
        try:
            bodies = []
            for _ in range(3):
                conn.request("GET", "/")
                bodies.append(conn.getresponse().read())
        finally:
            conn.close()
        assert bodies == [b"one", b"two", b"two"]
        assert srv.connections == 1


def test_http_connection_close_from_script() -> None:
    """A script entry with Connection: close ends the connection after its response."""
    with servers.http([(500, {"Connection": "close"}, b"bye"), (200, {}, b"ok")]) as srv:
        with _connect(srv) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            for _ in range(100):  # until EOF
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert data.endswith(b"\r\n\r\nbye")
        assert b"Content-Length: 3\r\n" in data


def test_http_head_and_no_content_have_no_body() -> None:
    """HEAD responses and 204 carry no body on the wire."""
    with servers.http([(200, {}, b"hello"), (204, {}, b"")]) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=TIMEOUT)
        try:
            conn.request("HEAD", "/")
            head = conn.getresponse()
            assert (head.headers["Content-Length"], head.read()) == ("5", b"")
            conn.request("DELETE", "/")
            empty = conn.getresponse()
            assert (empty.status, empty.read()) == (204, b"")
        finally:
            conn.close()


def test_http_bad_request_gets_400_and_uses_no_script_entry() -> None:
    """A malformed request is answered 400 and does not consume the script."""
    with servers.http([(200, {}, b"ok")]) as srv:
        with _connect(srv) as sock:
            sock.sendall(b"NONSENSE\r\n\r\n")
            assert _recv_exactly(sock, 12).startswith(b"HTTP/1.1 400")
        assert srv.requests == []
        assert _get(srv.url)[::2] == (200, b"ok")


def test_http_concurrent_clients() -> None:
    """Requests from several threads are all answered, each with one script entry."""
    script: list[tuple[int, dict[str, str], bytes]] = [(200, {}, b"%d" % i) for i in range(8)]
    results: list[bytes] = []
    lock = threading.Lock()
    with servers.http(script) as srv:

        def worker() -> None:
            body = _get(srv.url)[2]
            with lock:
                results.append(body)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert len(srv.requests) == 8
    assert sorted(str(i).encode() for i in range(8)) == sorted(results)


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize("delay", [-1, float("nan"), float("inf"), "1", None, True])
def test_slow_rejects_bad_delay(delay: Any) -> None:
    """slow() with a negative or non-numeric delay raises ConfigError at the call."""
    with pytest.raises(ConfigError, match=r"slow\.delay"):
        servers.slow(delay)


@pytest.mark.parametrize(
    "script",
    [
        [],
        "200",
        {200: b""},
        [(200, {})],
        [(99, {}, b"")],
        [(600, {}, b"")],
        [("200", {}, b"")],
        [(200, "Retry-After: 1", b"")],
        [(200, {"Bad\r\nName": "x"}, b"")],
        [(200, {"X": "a\r\nInjected: yes"}, b"")],
        [(200, {"X": None}, b"")],
        [(200, {}, 42)],
    ],
)
def test_http_rejects_bad_scripts(script: Any) -> None:
    """An empty or malformed script raises ConfigError at the call."""
    with pytest.raises(ConfigError, match=r"http\.script"):
        servers.http(script)
