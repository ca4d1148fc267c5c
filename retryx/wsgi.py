"""WSGI middleware: tell callers not to retry a request that retryx already retried.

```python
import retryx.wsgi

app = retryx.wsgi.Middleware(app)
```

The WSGI twin of ``retryx.asgi.Middleware``: each request runs in a request
scope, and a 5xx response of a request whose retryx layer gave up gets
``Retryx-Pushback: no-retry`` (or ``<seconds>``: see ``retryx.asgi``). The
headers are settled when the application returns (or, for an application that
calls ``start_response`` while its body is iterated, at that call); a
``write()`` call sends them at once. See ``docs/http.md``.

Needs no third-party package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _pushback

__all__ = ["Middleware"]

StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_HEADER = _pushback.HEADER.lower()


class Middleware:
    """Wrap a WSGI application so its 5xx responses carry ``Retryx-Pushback``.

    Args:
        app: the WSGI application.
        pushback: seconds to send as ``Retryx-Pushback: <seconds>`` instead of
            ``no-retry`` (a ``timedelta`` is accepted), or ``None``.

    Raises:
        ConfigError: for a negative or non-numeric ``pushback``.
    """

    def __init__(self, app: WSGIApp, *, pushback: float | None = None) -> None:
        self.app = app
        self.pushback = _pushback.check_seconds("retryx.wsgi.Middleware", pushback)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = _Response(start_response, self.pushback)
        request, token = _pushback.open_scope()
        response.request = request
        try:
            body = self.app(environ, response.start_response)
            response.flush()
        finally:
            _pushback.close_scope(token)
        return _Body(body, response)


class _Response:
    """Holds the application's ``start_response`` call until the handler is done."""

    __slots__ = ("_write", "args", "flushed", "pushback", "real", "request")

    def __init__(self, real: StartResponse, pushback: float | None) -> None:
        self.real = real
        self.pushback = pushback
        self.request: _pushback.RequestScope | None = None
        self.args: tuple[Any, ...] | None = None
        self.flushed = False
        self._write: Callable[[bytes], object] = _no_write

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        self.args = (status, headers, exc_info)
        if self.flushed:  # called again while the body is iterated (an error page)
            self.flushed = False
            self.flush()
        return self.write

    def write(self, data: bytes) -> object:
        # The legacy write() callable sends the headers now: settle them first.
        return self.flush()(data)

    def flush(self) -> Callable[[bytes], object]:
        if self.flushed or self.args is None:
            return self._write
        status, headers, exc_info = self.args
        if self.request is not None and status[:1] == "5":
            value = _pushback.header_value(self.request, self.pushback)
            if value is not None and not any(k.lower() == _HEADER for k, _ in headers):
                headers = [*headers, (_pushback.HEADER, value)]
        self.flushed = True
        self._write = (
            self.real(status, headers, exc_info) if exc_info else self.real(status, headers)
        )
        return self._write


def _no_write(data: bytes) -> object:
    raise AssertionError("write() called before start_response()")


class _Body:
    """The application's body, iterated inside the request scope."""

    def __init__(self, body: Iterable[bytes], response: _Response) -> None:
        self._body = body
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        request = response.request
        assert request is not None
        iterator = iter(self._body)
        while True:
            token = _pushback.enter_scope(request)
            try:
                chunk = next(iterator)
            except StopIteration:
                response.flush()
                return
            finally:
                _pushback.close_scope(token)
            response.flush()
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
