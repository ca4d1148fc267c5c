"""Applications and servers for the HTTP middleware and chain tests.

- ``asgi_app`` / ``wsgi_app``: tiny raw applications whose routes run retryx
  layers that give up, succeed, or are never involved;
- ``serve_asgi`` (uvicorn) / ``serve_wsgi`` (stdlib ``wsgiref``): serve one in a
  thread on a free loopback port;
- ``main()``: the entry point of the chain's processes (``python -c "import
  tests._http_apps as a; a.main()" c|asgi|wsgi ...``): C always answers 503 and
  counts; B (ASGI under uvicorn, or WSGI under wsgiref) calls C through retryx.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import retryx
from retryx import Policy

FAST = Policy(attempts=3, backoff="none", jitter="none")
START_TIMEOUT = 10.0


class Throttled(Exception):
    """A 429 with a Retry-After hint, as a client library would raise it."""

    status_code = 429
    retry_after = 7.0


@retryx.retry(FAST)
def always_fails() -> None:
    raise retryx.Transient("dependency down")


@retryx.retry(FAST)
async def always_fails_async() -> None:
    raise retryx.Transient("dependency down")


@retryx.retry(FAST.replace(retry_after_max=1.0))
def throttled() -> None:
    raise Throttled("slow down")


_flaky_calls = [0]


@retryx.retry(FAST)
def fails_once() -> str:
    _flaky_calls[0] += 1
    if _flaky_calls[0] % 2:
        raise retryx.Transient("blip")
    return "ok"


def outcome(path: str) -> tuple[int, list[tuple[str, str]]]:
    """The status and extra headers of ``path``, after running its retryx layer."""
    if path == "/plain-500":
        return 500, []
    if path == "/recovered-500":
        fails_once()
        return 500, []
    if path == "/throttled":
        with contextlib.suppress(Throttled):
            throttled()
        return 503, []
    with contextlib.suppress(retryx.Transient):
        always_fails()
    if path == "/gave-up-200":
        return 200, []
    if path == "/own-header":
        return 503, [("Retryx-Pushback", "30")]
    return 503, []  # /gave-up


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI application over ``outcome`` (``/async-gave-up`` awaits a retry layer)."""
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/raises":
        always_fails()  # gives up and raises: no response started
    if path == "/async-gave-up":
        with contextlib.suppress(retryx.Transient):
            await always_fails_async()
        status, headers = 503, []
    else:
        status, headers = outcome(path)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"done"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A raw WSGI application over ``outcome`` (``/generator`` starts while iterated)."""
    path = environ["PATH_INFO"]
    if path == "/generator":
        return _generator(start_response)
    if path == "/write":  # the legacy write() callable sends the headers at once
        with contextlib.suppress(retryx.Transient):
            always_fails()
        write = start_response("503 Unavailable", [("Content-Length", "4")])
        write(b"done")
        return []
    status, headers = outcome(path)
    start_response(f"{status} X", [("Content-Type", "text/plain"), *headers])
    return [b"done"]


def _generator(start_response: Any) -> Iterator[bytes]:
    with contextlib.suppress(retryx.Transient):
        always_fails()
    start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
    yield b"done"


# --- servers in a thread -------------------------------------------------------------


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _uvicorn(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, http="h11", ws="none", lifespan="off", log_level="error", loop="asyncio"
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    sock = _bound_socket()
    server = _uvicorn(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with the stdlib ``wsgiref`` server in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(START_TIMEOUT)


# --- the chain's processes -----------------------------------------------------------


class _Counting(BaseHTTPRequestHandler):
    """C: 503 to every request; ``GET /count`` answers how many it refused."""

    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.path == "/count":
            self._reply(200, str(_Counting.count).encode())
            return
        with _Counting.lock:
            _Counting.count += 1
        self._reply(503, b"unavailable")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _b_asgi(c_url: str, middleware: bool) -> Callable[..., Any]:
    import retryx.asgi
    import retryx.httpx

    transport = retryx.httpx.AsyncTransport(FAST, breakers=False)
    import httpx

    client = httpx.AsyncClient(transport=transport, timeout=5.0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await client.get(c_url + "/work")
        await send({"type": "http.response.start", "status": response.status_code, "headers": []})
        await send({"type": "http.response.body", "body": response.content})

    return retryx.asgi.Middleware(app) if middleware else app


def _b_wsgi(c_url: str, middleware: bool) -> Callable[..., Any]:
    import requests

    import retryx.requests
    import retryx.wsgi

    session = requests.Session()
    session.mount("http://", retryx.requests.Adapter(FAST, breakers=False))

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        response = session.get(c_url + "/work", timeout=5.0)
        start_response(f"{response.status_code} {response.reason}", [])
        return [response.content]

    return retryx.wsgi.Middleware(app) if middleware else app


def main() -> None:
    """``c`` | ``asgi <c_url> <middleware 0|1>`` | ``wsgi <c_url> <middleware 0|1>``:
    serve on a free port, print it, and run until killed.
    """
    role = sys.argv[1]
    if role == "c":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
        print(server.server_port, flush=True)
        server.serve_forever()
        return
    c_url, middleware = sys.argv[2], sys.argv[3] == "1"
    if role == "wsgi":
        app = _b_wsgi(c_url, middleware)
        wsgi = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        print(wsgi.server_port, flush=True)
        wsgi.serve_forever()
        return
    sock = _bound_socket()
    server = _uvicorn(_b_asgi(c_url, middleware), sock)
    sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    print(sock.getsockname()[1], flush=True)
    asyncio.run(server.serve(sockets=[sock]))
