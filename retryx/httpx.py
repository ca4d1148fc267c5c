"""httpx transports that retry per a ``retryx.Policy``, with one breaker per host.

```python
import httpx
import retryx.httpx

client = httpx.Client(transport=retryx.httpx.Transport(retryx.Policy(attempts=3)))
```

Each request goes through a retryx pipeline of its host (``retryx.retry`` and
``retryx.circuit_breaker``, named ``"httpx@host:port"`` and ``"host:port"``):
GET, HEAD, OPTIONS, PUT, DELETE and TRACE are retried on any transient fault,
POST and PATCH only when the fault proves the request unsent or the request
has an ``Idempotency-Key`` header, and a streamed body is never sent twice.
Statuses 408, 425, 429, 500, 502, 503 and 504 are retried (``Retry-After``
honoured); after the last attempt that response is returned. A response with
``Retryx-Pushback: no-retry`` is not retried. See ``docs/http.md``.

Needs the optional ``httpx`` package (``pip install 'retryx[httpx]'``).
"""

from __future__ import annotations

try:
    import httpx  # absolute: the real package, not this module
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError("retryx.httpx needs the httpx package: pip install 'retryx[httpx]'") from _exc

from ._breaker import CircuitBreaker
from ._budget import RetryBudget
from ._http_client import RETRYABLE_STATUSES, Hosts, StatusFault, capped, may_resend, time_left
from ._policy import Policy
from ._stats import Stats

__all__ = ["AsyncTransport", "Transport"]


class Transport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` retrying through retryx around ``transport``.

    Args:
        policy: how requests are retried (default ``retryx.Policy()``); its
            ``deadline`` bounds each request, retries included.
        transport: the transport that sends each attempt (default
            ``httpx.HTTPTransport()``).
        breakers: ``True`` for one ``CircuitBreaker`` per host (named
            ``"host:port"``), ``False`` for none, or a breaker whose settings
            each host's breaker copies.
        budget: a ``RetryBudget`` shared by every host (and whoever else holds it).

    Raises:
        ConfigError: for a bad argument, or ``policy.attempt_timeout`` (a sync
            request cannot be interrupted: use httpx's own timeouts).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        breakers: bool | CircuitBreaker = True,
        budget: RetryBudget | None = None,
    ) -> None:
        self._transport = inner = transport if transport is not None else httpx.HTTPTransport()
        self._hosts = hosts = Hosts("httpx", policy, breakers, budget, is_async=False)
        deadline = hosts.policy.deadline is not None

        # A plain function (not a bound method): the pipeline's fastest driver.
        def attempt(request: httpx.Request) -> httpx.Response:
            if deadline:
                _cap_timeouts(request)
            response = inner.handle_request(request)
            if response.status_code in RETRYABLE_STATUSES:
                # Read and close it: a retried attempt must give its connection
                # back, and the last one is returned, readable, after giving up.
                try:
                    response.read()
                finally:
                    response.close()
                raise StatusFault(response)
            return response

        hosts.attempt = attempt

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through its host's pipeline."""
        url = request.url
        key = (url.scheme, url.host, url.port)
        host = self._hosts.lookup(key) or self._hosts.add(key, *key)
        resend = may_resend(request.method, request.headers, _replayable(request))
        try:
            response: httpx.Response = (host.resend if resend else host.once)(request)
        except StatusFault as fault:
            return fault.response  # type: ignore[no-any-return]
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._transport.close()

    def stats(self, host: str) -> Stats:
        """The counters of the requests to ``host`` (``"host:port"``)."""
        return self._hosts.find(host).stats()

    def breaker(self, host: str) -> CircuitBreaker | None:
        """The breaker of ``host`` (``"host:port"``), or ``None`` with ``breakers=False``."""
        return self._hosts.find(host).breaker


class AsyncTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` retrying through retryx around ``transport``.

    The arguments are ``Transport``'s (``transport`` default
    ``httpx.AsyncHTTPTransport()``); ``policy.attempt_timeout`` bounds each attempt
    (a ``TimeoutError``, retried like any timeout).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        breakers: bool | CircuitBreaker = True,
        budget: RetryBudget | None = None,
    ) -> None:
        self._transport = inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._hosts = hosts = Hosts("httpx", policy, breakers, budget, is_async=True)
        deadline = hosts.policy.deadline is not None

        async def attempt(request: httpx.Request) -> httpx.Response:
            if deadline:
                _cap_timeouts(request)
            response = await inner.handle_async_request(request)
            if response.status_code in RETRYABLE_STATUSES:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                raise StatusFault(response)
            return response

        hosts.attempt = attempt

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through its host's pipeline."""
        url = request.url
        key = (url.scheme, url.host, url.port)
        host = self._hosts.lookup(key) or self._hosts.add(key, *key)
        resend = may_resend(request.method, request.headers, _replayable(request))
        try:
            response: httpx.Response = await (host.resend if resend else host.once)(request)
        except StatusFault as fault:
            return fault.response  # type: ignore[no-any-return]
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()

    def stats(self, host: str) -> Stats:
        """The counters of the requests to ``host`` (``"host:port"``)."""
        return self._hosts.find(host).stats()

    def breaker(self, host: str) -> CircuitBreaker | None:
        """The breaker of ``host`` (``"host:port"``), or ``None`` with ``breakers=False``."""
        return self._hosts.find(host).breaker


def _cap_timeouts(request: httpx.Request) -> None:
    # With a deadline, each attempt's connect/read/write/pool timeouts end by it.
    left = time_left()
    if left is not None:
        timeouts = request.extensions.get("timeout") or dict.fromkeys(_TIMEOUT_KEYS)
        capped_timeouts = {key: capped(value, left) for key, value in timeouts.items()}
        request.extensions = {**request.extensions, "timeout": capped_timeouts}


_TIMEOUT_KEYS = ("connect", "read", "write", "pool")


def _replayable(request: httpx.Request) -> bool:
    # An in-memory body (what content=, data=, json= make) can be sent again; a
    # generator, a file or a multipart upload streams and is sent once.
    return isinstance(request.stream, httpx.ByteStream)
