"""Verdicts on the real faults of HTTP clients (stdlib, requests, urllib3, httpx, aiohttp,
azure-core), each raised by the real package against a real loopback server."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retryx import Fault, backoff, classify, retry
from retryx._classify import is_unsent
from retryx.testing import servers

TIMEOUT = 0.3  # the timeouts provoked on purpose
LONG = 5.0  # every other wait
NO_RETRY = {"retries": False}


def verdict(exc: BaseException) -> tuple[bool, str, bool]:
    """``(transient, cause, unsent)``, the three facts each test pins."""
    fault = classify(exc)
    assert fault.unsent == is_unsent(exc), "classify and is_unsent must agree"
    return fault.transient, fault.cause, fault.unsent


def raised(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (failing the test when it returns)."""
    with pytest.raises(Exception) as info:
        call()
    return info.value


def araised(coro: Any) -> BaseException:
    async def run() -> None:
        await coro

    return raised(lambda: asyncio.run(run()))


# --- loopback servers of our own ---------------------------------------------------------


@pytest.fixture
def silent() -> Iterator[str]:
    """The URL of a port that completes the TCP handshake and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def unreachable() -> Iterator[str]:
    """The URL of a port whose accept queue is full: new SYNs are dropped, connects time out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            time.sleep(0.05)
            probe = socket.socket()
            probe.settimeout(TIMEOUT)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:  # pragma: no cover - a kernel that queues more than the backlog
                pytest.skip("this kernel does not drop SYNs on a full accept queue")
            finally:
                probe.close()
            yield f"http://127.0.0.1:{port}/"
        finally:
            for filler in fillers:
                filler.close()


@pytest.fixture
def no_such_host() -> str:
    """A ``.invalid`` name (RFC 2606), used only when the resolver says no at once offline."""
    name = "retryx-test.invalid"
    started = time.monotonic()
    try:
        socket.getaddrinfo(name, 80)
    except socket.gaierror as exc:
        if exc.errno != socket.EAI_NONAME or time.monotonic() - started > 1.0:
            pytest.skip(f"the resolver does not answer EAI_NONAME at once here: {exc!r}")
    else:  # pragma: no cover - a resolver that invents addresses
        pytest.skip(f"{name} resolves here")
    return f"http://{name}/"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a loopback HTTPS server whose certificate nobody trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a certificate")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", f"{key}", "-out", f"{cert}"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(LONG)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass  # the client rejects the certificate during the handshake
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(LONG)
        listener.close()


@pytest.fixture
def reset_after_head() -> Iterator[str]:
    """The URL of a server that reads each request head, then resets the connection (RST)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(LONG)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(LONG)
        listener.close()


def truncated() -> Any:
    """A response that promises 100 bytes, sends 5 and closes."""
    return servers.http([(200, {"Content-Length": "100", "Connection": "close"}, b"short")])


def bad_chunks() -> Any:
    """A response with broken chunked encoding, then closes."""
    return servers.http(
        [(200, {"Transfer-Encoding": "chunked", "Connection": "close"}, b"zz\r\nxx")]
    )


def redirect_loop() -> Any:
    return servers.http([(302, {"Location": "/again"}, b"")])


CONNECTION = (True, "connection", False)
CONNECTION_UNSENT = (True, "connection", True)
TIMEOUT_SENT = (True, "timeout", False)
TIMEOUT_UNSENT = (True, "timeout", True)
PERMANENT = (False, "permanent", False)
THROTTLED = (True, "throttled", False)


# --- the standard library ---------------------------------------------------------------


def test_stdlib_remote_disconnected_is_a_connection_fault() -> None:
    """``http.client.RemoteDisconnected`` (closed before answering) is a connection fault."""
    with servers.accept_then_close() as addr:
        conn = http.client.HTTPConnection(*addr, timeout=LONG)
        exc = raised(lambda: (conn.request("GET", "/"), conn.getresponse()))
        conn.close()
    assert isinstance(exc, http.client.RemoteDisconnected)
    assert CONNECTION == verdict(exc)


def test_stdlib_incomplete_read_is_a_connection_fault() -> None:
    """``http.client.IncompleteRead`` (a body cut short) is a connection fault."""
    with truncated() as srv:
        response = urllib.request.urlopen(srv.url, timeout=LONG)
        exc = raised(response.read)
        response.close()
    assert isinstance(exc, http.client.IncompleteRead)
    assert CONNECTION == verdict(exc)


def test_stdlib_urlerror_takes_its_reason() -> None:
    """``urllib.error.URLError`` is judged by its reason: a refused connection, unsent."""
    with servers.refusing() as addr:
        exc = raised(lambda: urllib.request.urlopen(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is urllib.error.URLError
    assert CONNECTION_UNSENT == verdict(exc)


def test_stdlib_urlerror_of_a_silent_server_is_a_timeout(silent: str) -> None:
    """A read timeout under ``urlopen`` is a timeout fault, not unsent."""
    exc = raised(lambda: urllib.request.urlopen(silent, timeout=TIMEOUT))
    assert TIMEOUT_SENT == verdict(exc)


def test_stdlib_http_error_takes_the_status_and_retry_after() -> None:
    """``urllib.error.HTTPError`` 503 is throttled with its Retry-After hint."""
    with servers.http([(503, {"Retry-After": "7"}, b"")]) as srv:
        exc = raised(lambda: urllib.request.urlopen(srv.url, timeout=LONG))
    assert Fault(True, "throttled", 7.0) == classify(exc)
    assert isinstance(exc, urllib.error.HTTPError)
    exc.close()


# --- requests ---------------------------------------------------------------------------


@pytest.fixture
def requests() -> Any:
    return pytest.importorskip("requests")


def test_requests_refused_is_unsent(requests: Any) -> None:
    """``requests.ConnectionError`` of a refused port takes urllib3's verdict: unsent."""
    with servers.refusing() as addr:
        exc = raised(lambda: requests.get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is requests.ConnectionError
    assert CONNECTION_UNSENT == verdict(exc)


def test_requests_invalid_header_is_permanent(requests: Any) -> None:
    """``requests.InvalidHeader`` (a header value requests refuses to send) is permanent."""
    with servers.http([(200, {}, b"ok")]) as srv:
        exc = raised(lambda: requests.get(srv.url + "/", headers={"X-A": "a\r\nb"}, timeout=LONG))
        assert [] == srv.requests  # refused before anything was sent
    assert type(exc) is requests.exceptions.InvalidHeader
    assert PERMANENT == verdict(exc)


def test_requests_closed_connection_is_sent(requests: Any) -> None:
    """A ``requests.ConnectionError`` after the request went out is not unsent."""
    with servers.accept_then_close() as addr:
        exc = raised(lambda: requests.get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is requests.ConnectionError
    assert CONNECTION == verdict(exc)


def test_requests_connect_timeout_is_unsent(requests: Any, unreachable: str) -> None:
    """``requests.ConnectTimeout`` (also a ``ConnectionError``) is a timeout, unsent."""
    exc = raised(lambda: requests.get(unreachable, timeout=(TIMEOUT, LONG)))
    assert type(exc) is requests.ConnectTimeout
    assert TIMEOUT_UNSENT == verdict(exc)


def test_requests_read_timeout(requests: Any, silent: str) -> None:
    """``requests.ReadTimeout`` is a timeout, not unsent."""
    exc = raised(lambda: requests.get(silent, timeout=(LONG, TIMEOUT)))
    assert type(exc) is requests.ReadTimeout
    assert TIMEOUT_SENT == verdict(exc)


def test_requests_chunked_encoding_error(requests: Any) -> None:
    """``requests.ChunkedEncodingError`` (a broken chunked body) is a connection fault."""
    with bad_chunks() as srv:
        exc = raised(lambda: requests.get(srv.url, timeout=LONG).content)
    assert type(exc) is requests.exceptions.ChunkedEncodingError
    assert CONNECTION == verdict(exc)


@pytest.mark.parametrize(
    ("status", "expected"), [(503, THROTTLED), (502, (True, "server", False)), (404, PERMANENT)]
)
def test_requests_http_error_takes_the_status(
    requests: Any, status: int, expected: tuple[bool, str, bool]
) -> None:
    """``requests.HTTPError`` from ``raise_for_status`` is judged by the response status."""
    with servers.http([(status, {}, b"")]) as srv:
        exc = raised(lambda: requests.get(srv.url, timeout=LONG).raise_for_status())
    assert type(exc) is requests.HTTPError
    assert expected == verdict(exc)


def test_requests_certificate_failure_is_permanent(requests: Any, self_signed: str) -> None:
    """``requests.SSLError`` with a certificate failure is permanent, though a ConnectionError."""
    exc = raised(lambda: requests.get(self_signed, timeout=LONG))
    assert type(exc) is requests.exceptions.SSLError
    assert PERMANENT == verdict(exc)


def test_requests_ssl_error_of_a_cut_handshake_is_a_connection_fault(requests: Any) -> None:
    """``requests.SSLError`` without a certificate failure (the peer hung up) is transient."""
    with servers.accept_then_close() as addr:
        exc = raised(lambda: requests.get(f"https://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is requests.exceptions.SSLError
    assert CONNECTION == verdict(exc)


@pytest.mark.parametrize(
    ("url", "name"),
    [("http://", "InvalidURL"), ("example.com/x", "MissingSchema"), ("foo://x", "InvalidSchema")],
)
def test_requests_bad_urls_are_permanent(requests: Any, url: str, name: str) -> None:
    """Bad URLs (``InvalidURL``, ``MissingSchema``, ``InvalidSchema``) are permanent."""
    exc = raised(lambda: requests.get(url, timeout=LONG))
    assert name == type(exc).__name__
    assert PERMANENT == verdict(exc)


def test_requests_too_many_redirects_is_permanent(requests: Any) -> None:
    """``requests.TooManyRedirects`` is permanent."""
    with redirect_loop() as srv, requests.Session() as session:
        session.max_redirects = 3
        exc = raised(lambda: session.get(srv.url, timeout=LONG))
    assert type(exc) is requests.TooManyRedirects
    assert PERMANENT == verdict(exc)


def test_requests_unknown_host_is_permanent(requests: Any, no_such_host: str) -> None:
    """A name DNS says does not exist is permanent, though a ``requests.ConnectionError``."""
    exc = raised(lambda: requests.get(no_such_host, timeout=LONG))
    assert type(exc) is requests.ConnectionError
    assert PERMANENT == verdict(exc)


# --- urllib3 ------------------------------------------------------------------------------


@pytest.fixture
def urllib3() -> Any:
    return pytest.importorskip("urllib3")


def test_urllib3_new_connection_error_is_unsent(urllib3: Any) -> None:
    """``NewConnectionError`` (refused) is a connection fault, unsent."""
    with servers.refusing() as addr:
        pool = urllib3.PoolManager(**NO_RETRY)
        exc = raised(lambda: pool.request("GET", f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is urllib3.exceptions.NewConnectionError
    assert CONNECTION_UNSENT == verdict(exc)


def test_urllib3_max_retry_error_takes_its_reason(urllib3: Any) -> None:
    """``MaxRetryError`` is judged by its reason (here a refused connection)."""
    with servers.refusing() as addr:
        pool = urllib3.PoolManager(retries=urllib3.Retry(0))
        exc = raised(lambda: pool.request("GET", f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is urllib3.exceptions.MaxRetryError
    assert CONNECTION_UNSENT == verdict(exc)


def test_urllib3_name_resolution_error_is_permanent_for_unknown_names(
    urllib3: Any, no_such_host: str
) -> None:
    """``NameResolutionError`` for a name DNS says does not exist is permanent."""
    exc = raised(lambda: urllib3.PoolManager(**NO_RETRY).request("GET", no_such_host))
    assert type(exc) is urllib3.exceptions.NameResolutionError
    assert PERMANENT == verdict(exc)


def test_urllib3_connect_timeout_is_unsent(urllib3: Any, unreachable: str) -> None:
    """``ConnectTimeoutError`` is a timeout, unsent."""
    timeout = urllib3.Timeout(connect=TIMEOUT, read=LONG)
    exc = raised(
        lambda: urllib3.PoolManager(**NO_RETRY).request("GET", unreachable, timeout=timeout)
    )
    assert type(exc) is urllib3.exceptions.ConnectTimeoutError
    assert TIMEOUT_UNSENT == verdict(exc)


def test_urllib3_read_timeout(urllib3: Any, silent: str) -> None:
    """``ReadTimeoutError`` is a timeout, not unsent."""
    timeout = urllib3.Timeout(connect=LONG, read=TIMEOUT)
    exc = raised(lambda: urllib3.PoolManager(**NO_RETRY).request("GET", silent, timeout=timeout))
    assert type(exc) is urllib3.exceptions.ReadTimeoutError
    assert TIMEOUT_SENT == verdict(exc)


def test_urllib3_protocol_error(urllib3: Any) -> None:
    """``ProtocolError`` (the peer closed before answering) is a connection fault."""
    with servers.accept_then_close() as addr:
        pool = urllib3.PoolManager(**NO_RETRY)
        exc = raised(lambda: pool.request("GET", f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is urllib3.exceptions.ProtocolError
    assert CONNECTION == verdict(exc)


def test_urllib3_ssl_errors(urllib3: Any, self_signed: str) -> None:
    """urllib3's ``SSLError``: permanent for a certificate failure, else a connection fault."""
    pool = urllib3.PoolManager(**NO_RETRY)
    cert = raised(lambda: pool.request("GET", self_signed))
    with servers.accept_then_close() as addr:
        cut = raised(lambda: pool.request("GET", f"https://{addr[0]}:{addr[1]}/"))
    assert (urllib3.exceptions.SSLError, urllib3.exceptions.SSLError) == (type(cert), type(cut))
    assert (PERMANENT, CONNECTION) == (verdict(cert), verdict(cut))


# --- httpx ---------------------------------------------------------------------------------


@pytest.fixture
def httpx() -> Any:
    return pytest.importorskip("httpx")


def test_httpx_connect_error_is_unsent(httpx: Any) -> None:
    """``httpx.ConnectError`` (refused) is a connection fault, unsent."""
    with servers.refusing() as addr:
        exc = raised(lambda: httpx.get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is httpx.ConnectError
    assert CONNECTION_UNSENT == verdict(exc)


def test_httpx_connect_timeout_is_unsent(httpx: Any, unreachable: str) -> None:
    """``httpx.ConnectTimeout`` is a timeout, unsent."""
    exc = raised(lambda: httpx.get(unreachable, timeout=httpx.Timeout(LONG, connect=TIMEOUT)))
    assert type(exc) is httpx.ConnectTimeout
    assert TIMEOUT_UNSENT == verdict(exc)


def test_httpx_read_timeout(httpx: Any, silent: str) -> None:
    """``httpx.ReadTimeout`` is a timeout, not unsent."""
    exc = raised(lambda: httpx.get(silent, timeout=httpx.Timeout(LONG, read=TIMEOUT)))
    assert type(exc) is httpx.ReadTimeout
    assert TIMEOUT_SENT == verdict(exc)


def test_httpx_write_timeout(httpx: Any, silent: str) -> None:
    """``httpx.WriteTimeout`` (a body the peer never reads) is a timeout, not unsent."""
    body = b"x" * (64 << 20)
    exc = raised(
        lambda: httpx.post(silent, content=body, timeout=httpx.Timeout(LONG, write=TIMEOUT))
    )
    assert type(exc) is httpx.WriteTimeout
    assert TIMEOUT_SENT == verdict(exc)


def test_httpx_pool_timeout_is_unsent(httpx: Any, silent: str) -> None:
    """``httpx.PoolTimeout`` (no free connection in time) is a timeout, unsent."""

    async def two_requests() -> None:
        limits = httpx.Limits(max_connections=1)
        timeout = httpx.Timeout(LONG, pool=TIMEOUT)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            first = asyncio.ensure_future(client.get(silent))
            await asyncio.sleep(0.1)  # the first request holds the only connection
            try:
                await client.get(silent)
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)

    exc = araised(two_requests())
    assert type(exc) is httpx.PoolTimeout
    assert TIMEOUT_UNSENT == verdict(exc)


def test_httpx_remote_protocol_error(httpx: Any) -> None:
    """``httpx.RemoteProtocolError`` (closed without a response) is a connection fault."""
    with servers.accept_then_close() as addr:
        exc = raised(lambda: httpx.get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert type(exc) is httpx.RemoteProtocolError
    assert CONNECTION == verdict(exc)


def test_httpx_read_error(httpx: Any, reset_after_head: str) -> None:
    """``httpx.ReadError`` (reset while waiting for the response) is a connection fault."""
    exc = raised(lambda: httpx.get(reset_after_head, timeout=LONG))
    assert type(exc) is httpx.ReadError
    assert CONNECTION == verdict(exc)


def test_httpx_reset_at_once_is_a_connection_fault(httpx: Any) -> None:
    """A server resetting at accept gives a connection fault, unsent only as ``ConnectError``."""
    with servers.resetting() as addr:
        # The reset surfaces at connect, at the first read, or as a disconnection
        # (API section 13): every form is a connection fault.
        exc = raised(lambda: httpx.get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    assert isinstance(exc, httpx.ReadError | httpx.ConnectError | httpx.RemoteProtocolError)
    expected = CONNECTION_UNSENT if isinstance(exc, httpx.ConnectError) else CONNECTION
    assert expected == verdict(exc)


def test_httpx_proxy_error(httpx: Any) -> None:
    """``httpx.ProxyError`` (the proxy refused the tunnel) is a connection fault."""
    with servers.http([(502, {}, b"no")]) as proxy, httpx.Client(proxy=proxy.url) as client:
        exc = raised(lambda: client.get("https://127.0.0.1:1/", timeout=LONG))
    assert type(exc) is httpx.ProxyError
    assert CONNECTION == verdict(exc)


def test_httpx_status_error_takes_the_status(httpx: Any) -> None:
    """``httpx.HTTPStatusError`` is judged by its response status and Retry-After."""
    with servers.http([(429, {"Retry-After": "3"}, b"")]) as srv:
        exc = raised(lambda: httpx.get(srv.url, timeout=LONG).raise_for_status())
    assert type(exc) is httpx.HTTPStatusError
    assert Fault(True, "throttled", 3.0) == classify(exc)


@pytest.mark.parametrize(
    ("url", "name"), [("foo://x", "UnsupportedProtocol"), ("http://[::1", "InvalidURL")]
)
def test_httpx_bad_urls_are_permanent(httpx: Any, url: str, name: str) -> None:
    """``UnsupportedProtocol`` and ``InvalidURL`` are permanent."""
    exc = raised(lambda: httpx.get(url, timeout=LONG))
    assert name == type(exc).__name__
    assert PERMANENT == verdict(exc)


def test_httpx_decoding_error_is_permanent(httpx: Any) -> None:
    """``httpx.DecodingError`` (a body that is not the encoding it claims) is permanent."""
    with servers.http([(200, {"Content-Encoding": "gzip"}, b"not gzip")]) as srv:
        exc = raised(lambda: httpx.get(srv.url, timeout=LONG))
    assert type(exc) is httpx.DecodingError
    assert PERMANENT == verdict(exc)


def test_httpx_too_many_redirects_is_permanent(httpx: Any) -> None:
    """``httpx.TooManyRedirects`` is permanent."""
    with (
        redirect_loop() as srv,
        httpx.Client(max_redirects=3, follow_redirects=True, timeout=LONG) as client,
    ):
        exc = raised(lambda: client.get(srv.url))
    assert type(exc) is httpx.TooManyRedirects
    assert PERMANENT == verdict(exc)


def test_httpx_certificate_failure_is_permanent(httpx: Any, self_signed: str) -> None:
    """An ``httpx.ConnectError`` caused by a certificate failure is permanent."""
    exc = raised(lambda: httpx.get(self_signed, timeout=LONG))
    assert type(exc) is httpx.ConnectError
    assert PERMANENT == verdict(exc)


def test_httpx_unknown_host_is_permanent(httpx: Any, no_such_host: str) -> None:
    """An ``httpx.ConnectError`` for a name DNS says does not exist is permanent."""
    exc = raised(lambda: httpx.get(no_such_host, timeout=LONG))
    assert type(exc) is httpx.ConnectError
    assert PERMANENT == verdict(exc)


def test_httpx_async_client_faults_are_judged_alike(httpx: Any, silent: str) -> None:
    """``httpx.AsyncClient`` raises the same types, with the same verdicts."""

    async def get(url: str, **kwargs: Any) -> None:
        async with httpx.AsyncClient(**kwargs) as client:
            await client.get(url)

    with servers.refusing() as addr:
        refused = araised(get(f"http://{addr[0]}:{addr[1]}/", timeout=LONG))
    read = araised(get(silent, timeout=httpx.Timeout(LONG, read=TIMEOUT)))
    assert (CONNECTION_UNSENT, TIMEOUT_SENT) == (verdict(refused), verdict(read))


# --- aiohttp ------------------------------------------------------------------------------


@pytest.fixture
def aiohttp() -> Any:
    return pytest.importorskip("aiohttp")


async def _aiohttp_get(aiohttp: Any, url: str, **kwargs: Any) -> None:
    async with aiohttp.ClientSession(**kwargs) as session, session.get(url) as response:
        response.raise_for_status()
        await response.read()


def test_aiohttp_connector_error_is_unsent(aiohttp: Any) -> None:
    """``ClientConnectorError`` (refused) is a connection fault, unsent."""
    with servers.refusing() as addr:
        exc = araised(_aiohttp_get(aiohttp, f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is aiohttp.ClientConnectorError
    assert CONNECTION_UNSENT == verdict(exc)


def test_aiohttp_server_disconnected(aiohttp: Any) -> None:
    """``ServerDisconnectedError`` is a connection fault, not unsent."""
    with servers.accept_then_close() as addr:
        exc = araised(_aiohttp_get(aiohttp, f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is aiohttp.ServerDisconnectedError
    assert CONNECTION == verdict(exc)


def test_aiohttp_client_os_error(aiohttp: Any, reset_after_head: str) -> None:
    """``ClientOSError`` (reset while waiting for the response) is a connection fault."""
    exc = araised(_aiohttp_get(aiohttp, reset_after_head))
    assert type(exc) is aiohttp.ClientOSError
    assert CONNECTION == verdict(exc)


def test_aiohttp_payload_error(aiohttp: Any) -> None:
    """``ClientPayloadError`` (a body cut short) is a connection fault."""
    with truncated() as srv:
        exc = araised(_aiohttp_get(aiohttp, srv.url))
    assert type(exc) is aiohttp.ClientPayloadError
    assert CONNECTION == verdict(exc)


def test_aiohttp_read_timeout(aiohttp: Any, silent: str) -> None:
    """``ServerTimeoutError`` (a socket read timeout) is a timeout, not unsent."""
    timeout = aiohttp.ClientTimeout(sock_read=TIMEOUT)
    exc = araised(_aiohttp_get(aiohttp, silent, timeout=timeout))
    assert isinstance(exc, aiohttp.ServerTimeoutError)
    assert TIMEOUT_SENT == verdict(exc)


def test_aiohttp_connection_timeout_is_unsent(aiohttp: Any, unreachable: str) -> None:
    """``ConnectionTimeoutError`` (the connect phase timed out) is a timeout, unsent."""
    timeout = aiohttp.ClientTimeout(sock_connect=TIMEOUT)
    exc = araised(_aiohttp_get(aiohttp, unreachable, timeout=timeout))
    assert type(exc) is aiohttp.ConnectionTimeoutError
    assert TIMEOUT_UNSENT == verdict(exc)


def test_aiohttp_response_error_takes_the_status(aiohttp: Any) -> None:
    """``ClientResponseError`` is judged by its status and the Retry-After on itself."""
    with servers.http([(503, {"Retry-After": "2"}, b"")]) as srv:
        exc = araised(_aiohttp_get(aiohttp, srv.url))
    assert type(exc) is aiohttp.ClientResponseError
    assert Fault(True, "throttled", 2.0) == classify(exc)


def test_aiohttp_too_many_redirects_is_permanent(aiohttp: Any) -> None:
    """aiohttp's ``TooManyRedirects`` is permanent (though a ``ClientResponseError``)."""

    async def get(url: str) -> None:
        async with aiohttp.ClientSession() as session, session.get(url, max_redirects=3):
            pass

    with redirect_loop() as srv:
        exc = araised(get(srv.url))
    assert type(exc) is aiohttp.TooManyRedirects
    assert PERMANENT == verdict(exc)


def test_aiohttp_unknown_host_is_permanent(aiohttp: Any, no_such_host: str) -> None:
    """A ``ClientConnectorError`` for a name DNS says does not exist is permanent."""
    exc = araised(_aiohttp_get(aiohttp, no_such_host))
    assert isinstance(exc, aiohttp.ClientConnectorError)
    assert PERMANENT == verdict(exc)


def test_aiohttp_certificate_failure_is_permanent(aiohttp: Any, self_signed: str) -> None:
    """``ClientConnectorCertificateError`` is permanent."""
    exc = araised(_aiohttp_get(aiohttp, self_signed))
    assert type(exc) is aiohttp.ClientConnectorCertificateError
    assert PERMANENT == verdict(exc)


# --- azure-core ---------------------------------------------------------------------------


@pytest.fixture
def azure() -> Any:
    pipeline = pytest.importorskip("azure.core.pipeline")
    transport = pytest.importorskip("azure.core.pipeline.transport")
    rest = pytest.importorskip("azure.core.rest")
    exceptions = pytest.importorskip("azure.core.exceptions")
    pytest.importorskip("requests")

    def send(url: str, raise_status: bool = False, **timeouts: float) -> Any:
        with pipeline.Pipeline(transport.RequestsTransport(connection_timeout=LONG)) as pipe:
            response = pipe.run(rest.HttpRequest("GET", url), **timeouts).http_response
            if raise_status and response.status_code >= 400:
                raise exceptions.HttpResponseError(response=response)
            return response

    return send, exceptions


def test_azure_service_request_error_is_unsent(azure: Any) -> None:
    """``ServiceRequestError`` (the request could not be sent) is a connection fault, unsent."""
    send, exceptions = azure
    with servers.refusing() as addr:
        exc = raised(lambda: send(f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is exceptions.ServiceRequestError
    assert CONNECTION_UNSENT == verdict(exc)


def test_azure_service_response_error(azure: Any) -> None:
    """``ServiceResponseError`` (no answer to a sent request) is a connection fault."""
    send, exceptions = azure
    with servers.accept_then_close() as addr:
        exc = raised(lambda: send(f"http://{addr[0]}:{addr[1]}/"))
    assert type(exc) is exceptions.ServiceResponseError
    assert CONNECTION == verdict(exc)


def test_azure_timeouts(azure: Any, unreachable: str, silent: str) -> None:
    """``ServiceRequestTimeoutError`` is a timeout, unsent; ``ServiceResponseTimeoutError``
    is a timeout, sent."""
    send, exceptions = azure
    request = raised(lambda: send(unreachable, connection_timeout=TIMEOUT))
    response = raised(lambda: send(silent, read_timeout=TIMEOUT))
    assert (exceptions.ServiceRequestTimeoutError, exceptions.ServiceResponseTimeoutError) == (
        type(request),
        type(response),
    )
    assert (TIMEOUT_UNSENT, TIMEOUT_SENT) == (verdict(request), verdict(response))


def test_azure_http_response_error_takes_the_status(azure: Any) -> None:
    """``HttpResponseError`` is judged by its status and Retry-After."""
    send, exceptions = azure
    with servers.http([(503, {"Retry-After": "4"}, b"")]) as srv:
        exc = raised(lambda: send(srv.url, raise_status=True))
    assert type(exc) is exceptions.HttpResponseError
    assert Fault(True, "throttled", 4.0) == classify(exc)


# --- end to end: @retry recovers when the server comes back ---------------------------------


class ComesBack:
    """A loopback port that refuses connections until ``open()``, then answers 200 ``ok``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        if self.thread is not None:
            return
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 30  # bounded, whatever the test does
        while time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(LONG)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()
        if self.thread is not None:
            self.thread.join(LONG)


@pytest.fixture
def comes_back() -> Iterator[ComesBack]:
    server = ComesBack()
    yield server
    server.close()


def test_retry_over_requests_recovers(requests: Any, comes_back: ComesBack) -> None:
    """``@retry`` over ``requests.get`` retries the refused attempts and returns the answer."""
    attempts = 0

    @retry(attempts=5, backoff=backoff.none(), jitter="none", idempotent=False)
    def fetch() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            comes_back.open()
        return str(requests.get(comes_back.url, timeout=LONG).text)

    assert ("ok", 3) == (fetch(), attempts)


def test_retry_over_httpx_recovers(httpx: Any, comes_back: ComesBack) -> None:
    """``@retry`` over ``httpx.get`` retries the refused attempts and returns the answer."""
    attempts = 0

    @retry(attempts=5, backoff=backoff.none(), jitter="none", idempotent=False)
    def fetch() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            comes_back.open()
        return str(httpx.get(comes_back.url, timeout=LONG).text)

    assert ("ok", 3) == (fetch(), attempts)


def test_retry_over_an_aiohttp_session_recovers(aiohttp: Any, comes_back: ComesBack) -> None:
    """``@retry`` over an ``aiohttp`` session call retries and returns the answer."""
    attempts = 0

    async def main() -> str:
        async with aiohttp.ClientSession() as session:

            @retry(attempts=5, backoff=backoff.none(), jitter="none", idempotent=False)
            async def fetch() -> str:
                nonlocal attempts
                attempts += 1
                if attempts == 3:
                    comes_back.open()
                async with session.get(comes_back.url) as response:
                    return str(await response.text())

            return await fetch()

    assert ("ok", 3) == (asyncio.run(main()), attempts)


def test_retry_gives_up_at_once_on_a_permanent_client_fault(requests: Any) -> None:
    """A permanent client fault (a bad URL) is not retried."""
    attempts = 0

    @retry(attempts=5, backoff=backoff.none(), jitter="none")
    def fetch() -> None:
        nonlocal attempts
        attempts += 1
        requests.get("foo://nowhere", timeout=LONG)

    with pytest.raises(requests.exceptions.InvalidSchema):
        fetch()
    assert 1 == attempts
