"""A requests adapter that retries per a ``retryx.Policy``, with one breaker per host.

```python
import requests
import retryx.requests

session = requests.Session()
adapter = retryx.requests.Adapter(retryx.Policy(attempts=3))
session.mount("https://", adapter)
session.mount("http://", adapter)
```

It replaces urllib3's ``Retry`` (the adapter runs urllib3 with ``max_retries=0``):
each request goes through a retryx pipeline of its host (named
``"requests@host:port"``, breaker ``"host:port"``) with the method rules, the
statuses and the ``Retry-After`` and ``Retryx-Pushback`` handling of
``retryx.httpx``. After the last attempt on a retryable status that response is
returned. See ``docs/http.md``.

Needs the optional ``requests`` package (``pip install 'retryx[requests]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    import requests  # absolute: the real package, not this module
    from requests.adapters import HTTPAdapter
    from urllib3.util import parse_url
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "retryx.requests needs the requests package: pip install 'retryx[requests]'"
    ) from _exc

from ._breaker import CircuitBreaker
from ._budget import RetryBudget
from ._http_client import (
    RETRYABLE_STATUSES,
    Host,
    Hosts,
    StatusFault,
    capped,
    may_resend,
    time_left,
)
from ._policy import Policy
from ._stats import Stats

__all__ = ["Adapter"]


def _cap_timeout(options: Mapping[str, Any]) -> Mapping[str, Any]:
    # With a deadline, each attempt's (connect, read) timeouts end by it.
    left = time_left()
    if left is None:
        return options
    timeout = options.get("timeout")
    if isinstance(timeout, tuple):
        connect, read = timeout
        timeout = (capped(connect, left), capped(read, left))
    elif timeout is None or isinstance(timeout, int | float):
        timeout = capped(timeout, left)
    else:  # a urllib3 Timeout object: left as given
        return options
    return {**options, "timeout": timeout}


class Adapter(HTTPAdapter):
    """A ``requests.adapters.HTTPAdapter`` retrying through retryx, for ``Session.mount``.

    Args:
        policy: how requests are retried (default ``retryx.Policy()``).
        breakers: ``True`` for one ``CircuitBreaker`` per host (named
            ``"host:port"``), ``False`` for none, or a breaker whose settings
            each host's breaker copies.
        budget: a ``RetryBudget`` shared by every host (and whoever else holds it).
        pool_connections, pool_maxsize, pool_block: ``HTTPAdapter``'s pool settings.

    Raises:
        ConfigError: for a bad argument, or ``policy.attempt_timeout`` (a sync
            request cannot be interrupted: pass ``timeout=`` to requests).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        breakers: bool | CircuitBreaker = True,
        budget: RetryBudget | None = None,
        pool_connections: int = 10,
        pool_maxsize: int = 10,
        pool_block: bool = False,
    ) -> None:
        send = super().send
        self._hosts = hosts = Hosts("requests", policy, breakers, budget, is_async=False)
        deadline = hosts.policy.deadline is not None

        # A plain function (not a bound method): the pipeline's fastest driver.
        def attempt(
            request: requests.PreparedRequest, options: Mapping[str, Any]
        ) -> requests.Response:
            if deadline:
                options = _cap_timeout(options)
            response = send(request, **options)
            if response.status_code in RETRYABLE_STATUSES:
                # Read and release it: a retried attempt gives its connection back
                # to the pool, and the last one is returned, readable, on giving up.
                try:
                    response.content  # noqa: B018
                finally:
                    response.close()
                raise StatusFault(response)
            return response

        hosts.attempt = attempt
        super().__init__(
            pool_connections=pool_connections,
            pool_maxsize=pool_maxsize,
            max_retries=0,  # retryx retries; urllib3 must not multiply the attempts
            pool_block=pool_block,
        )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` through its host's pipeline."""
        host = self._host(request.url or "")
        body = request.body
        replayable = body is None or isinstance(body, bytes | str)
        resend = may_resend(request.method or "", request.headers, replayable)
        options = {
            "stream": stream,
            "timeout": timeout,
            "verify": verify,
            "cert": cert,
            "proxies": proxies,
        }
        try:
            response: requests.Response = (host.resend if resend else host.once)(request, options)
        except StatusFault as fault:
            return fault.response  # type: ignore[no-any-return]
        return response

    def _host(self, url: str) -> Host:
        # Keyed by the URL's scheme and authority, cut out without parsing.
        start = url.find("://") + 3
        end = url.find("/", start)
        origin = url if end < 0 else url[:end]
        found = self._hosts.lookup(origin)
        if found is None:
            parsed = parse_url(url)
            found = self._hosts.add(origin, parsed.scheme or "http", parsed.host or "", parsed.port)
        return found

    def stats(self, host: str) -> Stats:
        """The counters of the requests to ``host`` (``"host:port"``)."""
        return self._hosts.find(host).stats()

    def breaker(self, host: str) -> CircuitBreaker | None:
        """The breaker of ``host`` (``"host:port"``), or ``None`` with ``breakers=False``."""
        return self._hosts.find(host).breaker
