"""The machinery of ``retryx.testing.servers``: one selector thread per server.

A ``Server`` binds 127.0.0.1, accepts up to ``_MAX_CONNECTIONS`` clients and
drives a ``Protocol`` per connection (reset, close, echo or a scripted HTTP
exchange) until the context that started it exits; ``serve`` is that context.
"""

from __future__ import annotations

import collections
import contextlib
import io
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.client import HTTPMessage, parse_headers
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .servers import Address

HOST = "127.0.0.1"
_MAX_CONNECTIONS = 128  # beyond this, new clients wait in the listen backlog
_BACKLOG = 128
_CHUNK = 65536
_MAX_BUFFERED = 1 << 20  # stop reading a client that sends faster than it reads
MAX_HEAD = 64 * 1024
_MAX_BODY = 16 << 20
_DRAIN_SECONDS = 2.0  # how long a half-closed connection waits for the client's EOF
_IDLE_TICK = 0.5  # upper bound of one select(), so no wait is unbounded
_STOP_TIMEOUT = 5.0


class HTTPRequest(NamedTuple):
    """One request received by ``http()``, in arrival order.

    ``headers`` is an ``http.client.HTTPMessage`` (case-insensitive
    ``headers["retry-after"]`` and ``headers.get(...)``); ``body`` is decoded
    from ``Content-Length`` or chunked transfer encoding.
    """

    method: str
    path: str
    headers: HTTPMessage
    body: bytes

    def __repr__(self) -> str:
        # HTTPMessage's own repr shows only its id; show the header pairs instead.
        headers = list(self.headers.items())
        return (
            f"HTTPRequest(method={self.method!r}, path={self.path!r}, "
            f"headers={headers!r}, body={self.body!r})"
        )


class Response(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Conn:
    """One accepted connection and its buffers; only touched by the server thread."""

    __slots__ = (
        "closing",
        "drain_until",
        "draining",
        "events",
        "inbuf",
        "outbuf",
        "peer_eof",
        "pending",
        "sock",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self.closing = False  # no more requests: flush, then close
        self.draining = False  # our FIN is sent; discard input until the client's EOF
        self.drain_until = 0.0
        self.peer_eof = False
        self.events = 0  # the selector events it is registered for (0: not registered)

    def buffered(self) -> int:
        return len(self.outbuf) + sum(len(chunk) for _, chunk in self.pending)


class Protocol:
    """What a server does with its connections; the base class does nothing."""

    def on_accept(self, server: Server, conn: _Conn, now: float) -> None:
        """Called once per accepted connection."""

    def on_data(self, conn: _Conn, data: bytes, now: float) -> None:
        """Called with each chunk received (never empty)."""


class ResetProtocol(Protocol):
    def on_accept(self, server: Server, conn: _Conn, now: float) -> None:
        # Linger on with a zero timeout makes close() send RST instead of FIN.
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close(conn)


class CloseProtocol(Protocol):
    def on_accept(self, server: Server, conn: _Conn, now: float) -> None:
        conn.closing = True


class EchoProtocol(Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_data(self, conn: _Conn, data: bytes, now: float) -> None:
        if self.delay:
            conn.pending.append((now + self.delay, data))
        else:
            conn.outbuf += data


class _BadRequest(Exception):
    pass


class HTTPProtocol(Protocol):
    def __init__(self, responses: tuple[Response, ...]) -> None:
        self.responses = responses
        self.requests: list[HTTPRequest] = []
        self._next = 0

    def on_data(self, conn: _Conn, data: bytes, now: float) -> None:
        conn.inbuf += data
        # Bounded: each pass consumes a whole request or stops.
        while conn.inbuf and not conn.closing:
            try:
                parsed = _parse_request(conn.inbuf)
            except _BadRequest as exc:
                conn.outbuf += _render(Response(400, (), str(exc).encode()), head=False, close=True)
                conn.closing = True
                return
            if parsed is None:
                return
            request, close, consumed = parsed
            del conn.inbuf[:consumed]
            # Only the server thread touches these, so no lock is needed.
            self.requests.append(request)
            response = self.responses[min(self._next, len(self.responses) - 1)]
            self._next += 1
            close = close or any(
                n.lower() == "connection" and v.lower() == "close" for n, v in response.headers
            )
            conn.outbuf += _render(response, head=request.method == "HEAD", close=close)
            if close:
                conn.closing = True


def _parse_request(buf: bytearray) -> tuple[HTTPRequest, bool, int] | None:
    """Parse one request: ``(request, close, bytes consumed)``, or ``None`` while partial."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise _BadRequest("request head too large")
        return None
    head = bytes(buf[:end]).decode("latin-1")
    request_line, _, header_text = head.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"bad request line {request_line!r}")
    method, path, version = parts
    headers = parse_headers(io.BytesIO((header_text + "\r\n\r\n").encode("latin-1")))
    pos = end + 4
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        decoded = _dechunk(buf, pos)
        if decoded is None:
            return None
        body, pos = decoded
    else:
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest("bad Content-Length")
        if len(buf) < pos + length:
            return None
        body = bytes(buf[pos : pos + length])
        pos += length
    connection = headers.get("Connection", "").lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    return HTTPRequest(method, path, headers, body), close, pos


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    body = bytearray()
    for _ in range(len(buf)):  # each pass consumes at least one line, so this bounds it
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size < 0 or len(body) + size > _MAX_BODY:
            raise _BadRequest("bad chunk size")
        pos = eol + 2
        if size == 0:
            # Skip trailer lines up to the empty line that ends the message.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                line_empty = eol == pos
                pos = eol + 2
                if line_empty:
                    return bytes(body), pos
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2
    return None


def _render(response: Response, *, head: bool, close: bool) -> bytes:
    status, headers, body = response
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    names = {name.lower() for name, _ in headers}
    lines = [f"HTTP/1.1 {status} {phrase}".rstrip()]
    lines += [f"{name}: {value}" for name, value in headers]
    no_body = status in (204, 304)
    if "content-length" not in names and not no_body:
        lines.append(f"Content-Length: {len(body)}")
    if "connection" not in names and close:
        lines.append("Connection: close")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head or no_body else out + body


class Server:
    """A listening socket and the one thread that serves all its connections."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.accepted = 0
        self._conns: set[_Conn] = set()
        self._sel = selectors.DefaultSelector()
        self._listening = False
        # A byte on this pair wakes the selector at once when the context exits.
        self._wake_r, self._wake_w = socket.socketpair()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.bind((HOST, 0))
            self.listener.listen(_BACKLOG)
            self.listener.setblocking(False)
        except BaseException:
            self._close_all()
            raise
        self.port: int = self.listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, name=f"retryx-{type(protocol).__name__}-{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                # Closing sockets under a live thread could hand its fds to
                # someone else; leave them to the daemon thread and say so.
                raise RuntimeError(f"retryx test server on port {self.port} did not stop")
        self._close_all()

    def close(self, conn: _Conn) -> None:
        if conn.events:
            self._sel.unregister(conn.sock)
            conn.events = 0
        conn.sock.close()
        self._conns.discard(conn)

    def _close_all(self) -> None:
        for conn in list(self._conns):
            self.close(conn)
        self._sel.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the server thread

    def _run(self) -> None:
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        while True:  # ends when the wake socket fires (each select is bounded)
            timeout = self._tick(time.monotonic())
            for key, mask in self._sel.select(timeout):
                if key.fileobj is self._wake_r:
                    return
                if key.fileobj is self.listener:
                    self._accept()
                    continue
                conn: _Conn = key.data
                if mask & selectors.EVENT_READ and conn.events:
                    self._read(conn)
                if mask & selectors.EVENT_WRITE and conn.events:
                    self._flush(conn)

    def _accept(self) -> None:
        now = time.monotonic()
        for _ in range(_BACKLOG):  # take what is queued, then go back to select
            if len(self._conns) >= _MAX_CONNECTIONS:
                return
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ECONNABORTED: the client gave up in the backlog
                continue
            sock.setblocking(False)
            self.accepted += 1
            conn = _Conn(sock)
            self._conns.add(conn)
            try:
                self.protocol.on_accept(self, conn, now)
            except OSError:
                self.close(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            conn.peer_eof = True
            conn.closing = True
            if conn.draining:
                self.close(conn)
        elif not conn.draining:
            self.protocol.on_data(conn, data, time.monotonic())

    def _flush(self, conn: _Conn) -> None:
        if not conn.outbuf:
            return
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client went away; nothing left to serve
            self.close(conn)
            return
        del conn.outbuf[:sent]

    def _tick(self, now: float) -> float:
        """Run timers, flush, close what is done, set interests; return the select timeout."""
        timeout = _IDLE_TICK
        for conn in list(self._conns):
            while conn.pending and conn.pending[0][0] <= now:
                conn.outbuf += conn.pending.popleft()[1]
            if conn.pending:
                timeout = min(timeout, conn.pending[0][0] - now)
            self._flush(conn)
            if conn not in self._conns:
                continue
            if conn.closing and not conn.outbuf and not conn.pending and not conn.draining:
                if conn.peer_eof:
                    self.close(conn)
                    continue
                # Send our FIN but keep reading: closing with unread input
                # would turn the clean EOF into a reset.
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    self.close(conn)
                    continue
                conn.draining = True
                conn.drain_until = now + _DRAIN_SECONDS
            if conn.draining:
                if now >= conn.drain_until:
                    self.close(conn)
                    continue
                timeout = min(timeout, conn.drain_until - now)
            events = 0
            if conn.draining or (not conn.closing and conn.buffered() < _MAX_BUFFERED):
                events |= selectors.EVENT_READ
            if conn.outbuf:
                events |= selectors.EVENT_WRITE
            self._interest(conn, events)
        self._listen(len(self._conns) < _MAX_CONNECTIONS)
        return max(timeout, 0.0)

    def _interest(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        if not events:
            self._sel.unregister(conn.sock)
        elif conn.events:
            self._sel.modify(conn.sock, events, conn)
        else:
            self._sel.register(conn.sock, events, conn)
        conn.events = events

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._sel.register(self.listener, selectors.EVENT_READ)
        elif not on and self._listening:
            self._sel.unregister(self.listener)
        self._listening = on


@contextlib.contextmanager
def serve(protocol: Protocol, address_type: type[Address]) -> Iterator[Any]:
    server = Server(protocol)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    try:
        yield address_type((HOST, server.port), server)
    finally:
        server.stop()
