"""Loopback fault servers: real TCP endpoints on 127.0.0.1 that fail on purpose.

Each function validates its arguments at once and returns a context manager.
Entering it binds a free port on 127.0.0.1 and yields an ``Address``,
which is the tuple ``("127.0.0.1", port)`` with a few live read-outs of the
server behind it:

```python
with servers.resetting() as addr:
    with pytest.raises(ConnectionResetError):
        read_greeting(addr)        # the code under test, retrying 3 times
    assert addr.connections == 3

with servers.http([(503, {"Retry-After": "1"}, b""), (200, {}, b"ok")]) as srv:
    assert fetch(srv.url + "/items") == b"ok"
    assert [r.path for r in srv.requests] == ["/items", "/items"]
```

Every server (except ``refusing()``, which needs none) runs one daemon thread
around a selector, so any number of connections is served without a thread
per connection; leaving the context stops that thread and closes every socket.
Servers run in real time: they never read the retryx clock, so
``testing.fake_time()`` does not make ``slow()`` any faster.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Self

from .._errors import ConfigError, to_float
from ._loopback import (
    HOST,
    CloseProtocol,
    EchoProtocol,
    HTTPProtocol,
    HTTPRequest,
    ResetProtocol,
    Response,
    Server,
    serve,
)

__all__ = [
    "Address",
    "HTTPAddress",
    "HTTPRequest",
    "accept_then_close",
    "echo",
    "http",
    "refusing",
    "resetting",
    "slow",
]


class Address(tuple[str, int]):
    """``("127.0.0.1", port)`` of a running server, with live counters.

    It is a plain tuple for every purpose (unpacking, equality, ``socket.connect``);
    the extra attributes read the server's state at the time they are read.
    """

    _server: Server | None

    def __new__(cls, address: tuple[str, int], server: Server | None = None) -> Self:
        self = super().__new__(cls, address)
        self._server = server
        return self

    # It is a handle on a live server, which cannot be copied or pickled:
    # copies are the same handle, and a pickle is the plain tuple.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: Any) -> Self:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))

    @property
    def host(self) -> str:
        """Always ``"127.0.0.1"``."""
        return self[0]

    @property
    def port(self) -> int:
        """The TCP port the server is bound to."""
        return self[1]

    @property
    def connections(self) -> int:
        """How many connections the server has accepted so far (0 for ``refusing``)."""
        return 0 if self._server is None else self._server.accepted


class HTTPAddress(Address):
    """The ``Address`` of an ``http()`` server, with its URL and requests."""

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:<port>"`` (no trailing slash)."""
        return f"http://{self[0]}:{self[1]}"

    @property
    def requests(self) -> list[HTTPRequest]:
        """The requests answered so far (a live list, appended before each response)."""
        assert isinstance(self._server, Server)
        assert isinstance(self._server.protocol, HTTPProtocol)
        return self._server.protocol.requests


# --------------------------------------------------------------------- public API


def refusing() -> AbstractContextManager[Address]:
    """A port on which every connection is refused (``ConnectionRefusedError``).

    The port stays bound (but not listening) while the context is open, so no
    other socket can take it and accept connections by accident.
    """
    return _refusing()


def resetting() -> AbstractContextManager[Address]:
    """A server that accepts each connection and resets it at once (TCP RST).

    The kernel completes the handshake before the server sees the connection,
    so ``connect()`` usually succeeds and the reset surfaces at the first read
    or write as ``ConnectionResetError`` (or ``BrokenPipeError`` on a write).
    """
    return serve(ResetProtocol(), Address)


def accept_then_close() -> AbstractContextManager[Address]:
    """A server that accepts each connection and closes it cleanly: reads see EOF (``b""``).

    Whatever the client sends is read and discarded, so the close is a clean
    FIN and never turns into a reset.
    """
    return serve(CloseProtocol(), Address)


def echo() -> AbstractContextManager[Address]:
    """A server that echoes every byte back."""
    return serve(EchoProtocol(0.0), Address)


def slow(delay: float | datetime.timedelta) -> AbstractContextManager[Address]:
    """A server that echoes each received chunk back ``delay`` seconds after receiving it.

    Args:
        delay: seconds (a number or ``timedelta``) of real time, ``>= 0``.

    Raises:
        ConfigError: when ``delay`` is not a finite number ``>= 0``.
    """
    return serve(EchoProtocol(_seconds("slow.delay", delay)), Address)


def http(script: Iterable[tuple[int, Any, Any]]) -> AbstractContextManager[HTTPAddress]:
    """A loopback HTTP/1.1 server answering each request with the next entry of ``script``.

    Entries are ``(status, headers, body)``: ``status`` an int in 200..599,
    ``headers`` a mapping (or pairs) of header names to ``str`` or number values,
    ``body`` ``bytes`` (a ``str`` is UTF-8 encoded). Once the script is used up
    its last entry repeats. Requests take entries in arrival order, across all
    connections. ``Content-Length`` is added unless given (so a script may
    lie about it), and connections are kept alive unless the request or the
    entry says ``Connection: close``. The yielded ``HTTPAddress`` has
    ``.url`` and ``.requests``:

    ```python
    with servers.http([(503, {"Retry-After": "1"}, b""), (200, {}, b"ok")]) as srv:
        assert fetch(srv.url + "/") == b"ok"  # the retrying client under test
    ```

    Raises:
        ConfigError: when the script is empty or an entry is malformed.
    """
    responses = _check_script(script)
    return serve(HTTPProtocol(responses), HTTPAddress)


# ---------------------------------------------------------------- validation


def _seconds(name: str, value: Any) -> float:
    if hasattr(value, "total_seconds"):  # datetime.timedelta
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    value = to_float(name, value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_token(what: str, text: str) -> None:
    # A CR or LF would let a script entry inject headers or split the response.
    if "\r" in text or "\n" in text or (what == "name" and (not text or ":" in text)):
        raise ConfigError(f"http.script header {what} is not valid: {text!r}")


def _check_script(script: Any) -> tuple[Response, ...]:
    if isinstance(script, str | bytes | Mapping) or not isinstance(script, Iterable):
        raise ConfigError(
            f"http.script must be a sequence of (status, headers, body), got {script!r}"
        )
    responses = []
    for i, entry in enumerate(script):
        where = f"http.script[{i}]"
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise ConfigError(f"{where} must be a (status, headers, body) tuple, got {entry!r}")
        status, headers, body = entry
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ConfigError(f"{where} status must be an int in 200..599, got {status!r}")
        if isinstance(headers, Mapping):
            pairs = list(headers.items())
        elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
            pairs = list(headers)
        else:
            raise ConfigError(f"{where} headers must be a mapping or pairs, got {headers!r}")
        lines = []
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ConfigError(f"{where} headers must be (name, value) pairs, got {pair!r}")
            name, value = pair
            if not isinstance(name, str):
                raise ConfigError(f"{where} header names must be str, got {name!r}")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ConfigError(f"{where} header {name!r} must be str or a number, got {value!r}")
            _check_token("name", name)
            _check_token("value", str(value))
            lines.append((name, str(value)))
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, bytes | bytearray | memoryview):
            body = bytes(body)
        else:
            raise ConfigError(f"{where} body must be bytes or str, got {body!r}")
        responses.append(Response(status, tuple(lines), body))
    if not responses:
        raise ConfigError("http.script must not be empty")
    return tuple(responses)


# ------------------------------------------------------------------ machinery
# (the servers themselves: retryx.testing._loopback)


@contextlib.contextmanager
def _refusing() -> Iterator[Address]:
    # Bound but not listening: the kernel answers SYNs with RST (ECONNREFUSED),
    # and holding the bind keeps the port from being handed to anyone else.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield Address((HOST, sock.getsockname()[1]))
