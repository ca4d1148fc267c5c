"""ASGI middleware: tell callers not to retry a request that retryx already retried.

```python
import retryx.asgi

app = retryx.asgi.Middleware(app)
```

Each HTTP request runs in a request scope. When a retryx layer inside the
handler gave up (any reason) and the response is a 5xx, the middleware adds
``Retryx-Pushback: no-retry``: the retryx clients of the caller then take the
response as permanent, so a chain A -> B -> C with 3 attempts per hop calls C
at most 3 times, not 9. When the layer gave up on a throttled fault with a
``Retry-After`` hint, or the middleware is given ``pushback=<seconds>``, the
value is that number of seconds instead (a ``retry_after`` hint for the
caller). A header the application set itself is kept. An application that
raises before starting its response after such a give-up gets a 500 with the
header (the exception still reaches the server). See ``docs/http.md``.

Needs no third-party package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import _pushback

__all__ = ["Middleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = _pushback.HEADER.lower().encode("latin-1")


class Middleware:
    """Wrap an ASGI application so its 5xx responses carry ``Retryx-Pushback``.

    Args:
        app: the ASGI application.
        pushback: seconds to send as ``Retryx-Pushback: <seconds>`` instead of
            ``no-retry`` (a ``timedelta`` is accepted), or ``None``.

    Raises:
        ConfigError: for a negative or non-numeric ``pushback``.
    """

    def __init__(self, app: ASGIApp, *, pushback: float | None = None) -> None:
        self.app = app
        self.pushback = _pushback.check_seconds("retryx.asgi.Middleware", pushback)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        request, token = _pushback.open_scope()
        seconds = self.pushback
        started = False

        async def send_with_pushback(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
                if message.get("status", 0) >= 500:
                    value = _pushback.header_value(request, seconds)
                    headers = list(message.get("headers", ()))
                    if value is not None and not any(k.lower() == _HEADER for k, _ in headers):
                        headers.append((_HEADER, value.encode("latin-1")))
                        message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_pushback)
        except Exception:
            # The server would answer a bare 500; when a retryx layer gave up, answer it
            # here with the pushback, then let the server log the exception as usual.
            value = _pushback.header_value(request, seconds)
            if not started and value is not None:
                headers = [(b"content-type", b"text/plain"), (_HEADER, value.encode("latin-1"))]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise
        finally:
            _pushback.close_scope(token)
