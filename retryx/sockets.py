"""Socket helpers: TCP connect with retry and failover, sync and asyncio.

``connect(["db1:5432", "db2:5432"])`` tries each endpoint in turn (one sweep per
attempt) and retries the sweep per the policy; the failure reports every
endpoint's error in ``AllEndpointsFailed.errors``, keyed by ``(host, port)``.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from ._breaker import CircuitBreaker
from ._context import current
from ._decorators import failover, retry
from ._errors import ConfigError
from ._policy import Policy

if TYPE_CHECKING:
    import asyncio

__all__ = ["Endpoint", "connect", "open_connection", "parse_endpoint"]

Endpoint: TypeAlias = "str | tuple[str, int]"
"""``"host:port"``, ``"[v6addr]:port"`` or a ``(host, port)`` tuple."""

DEFAULT_POLICY = Policy.interactive(name="retryx.sockets.connect")
"""What ``connect`` uses without a policy: 3 attempts, short backoff, a 5 s deadline."""


def parse_endpoint(endpoint: Any) -> tuple[str, int]:
    """Normalise an endpoint to ``(host, port)``.

    Raises:
        ConfigError: naming the endpoint when it cannot be parsed.
    """
    if isinstance(endpoint, tuple) and len(endpoint) == 2:
        host, port = endpoint
    elif isinstance(endpoint, str):
        text = endpoint.strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise ConfigError(f"bad endpoint {endpoint!r}: expected '[v6addr]:port'")
            port = rest[1:]
        else:
            host, sep, port = text.rpartition(":")
            if not sep or ":" in host:
                raise ConfigError(
                    f"bad endpoint {endpoint!r}: expected 'host:port' (IPv6 as '[::1]:port')"
                )
        try:
            port = int(port)
        except ValueError:
            raise ConfigError(f"bad endpoint {endpoint!r}: port is not a number") from None
    else:
        raise ConfigError(f"bad endpoint {endpoint!r}: expected 'host:port' or (host, port)")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"bad endpoint {endpoint!r}: empty host")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"bad endpoint {endpoint!r}: port must be in 1..65535")
    return (host, port)


def _normalise(endpoints: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(endpoints, str) or (
        isinstance(endpoints, tuple) and len(endpoints) == 2 and isinstance(endpoints[1], int)
    ):
        endpoints = [endpoints]
    if not isinstance(endpoints, Sequence) or not endpoints:
        raise ConfigError(f"endpoints must be a non-empty sequence, got {endpoints!r}")
    return tuple(parse_endpoint(e) for e in endpoints)


def _check(timeout: float, policy: Policy | None) -> Policy:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
    if policy is None:
        return DEFAULT_POLICY
    if not isinstance(policy, Policy):
        raise ConfigError(f"policy must be a Policy, got {policy!r}")
    return policy


# An endpoint's breaker opens after this many failures in a row (failover's default).
_BREAKER_FAILURES = 3
_BREAKER_RECOVERY = 30.0  # failover's default recovery, the longest an endpoint stays open


def _endpoint_breaker(name: str, policy: Policy, endpoints: int) -> CircuitBreaker:
    """The template of every endpoint's breaker for ``policy``.

    An open endpoint makes the retry wait its ``retry_after``. With failover's default
    30 s recovery, a refusing endpoint held a call for 30 s after its third refusal,
    whatever the policy's backoff said (``--max 0.5`` waited 30 s). The recovery is
    capped by the policy's longest wait between attempts and by its deadline, so an
    endpoint's breaker never makes a call wait longer than the policy itself would.
    A single endpoint has nothing to fail over to: its breaker opens only once a
    whole call's attempts failed, so every attempt of a call is a real one.
    """
    backoff: Any = policy.backoff
    waits = (backoff.delay(n) for n in range(1, min(policy.attempts or 64, 64)))
    recovery = min(_BREAKER_RECOVERY, max(waits, default=0.0))
    if policy.deadline is not None:
        recovery = min(recovery, policy.deadline)
    failures = _BREAKER_FAILURES if endpoints > 1 else max(_BREAKER_FAILURES, policy.attempts or 0)
    return CircuitBreaker(name, failure_threshold=failures, recovery_timeout=float(recovery))


def _attempt_timeout(timeout: float) -> float:
    """``min(timeout, time left before the deadline)``."""
    context = current()
    remaining = None if context is None else context.remaining
    if remaining is None:
        return timeout
    if remaining <= 0:
        raise TimeoutError("retryx.sockets: no time left before the deadline")
    return min(timeout, remaining)


# Pipelines are cached per (endpoints, policy, order, kind) so the per-endpoint
# circuit breakers remember failures across calls.
_cache: OrderedDict[Hashable, Callable[..., Any]] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 64


def _pipeline(key: Hashable, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
        made = make()
        _cache[key] = made
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return made


def connect(
    endpoints: Endpoint | Sequence[Endpoint],
    *,
    policy: Policy | None = None,
    timeout: float = 5.0,
    order: str = "priority",
    probe: bytes | None = None,
) -> socket.socket:
    """Connect over TCP with retry and failover; returns the connected socket.

    Each attempt sweeps the endpoints once; each connection attempt's timeout is
    ``min(timeout, time left before the policy deadline)``. The returned socket
    keeps ``timeout`` as its timeout. With ``probe``, the bytes are sent after
    connecting and a reply must arrive within the timeout (so a peer that accepts
    but does not answer counts as failed and the next endpoint is tried).

    Raises:
        ConfigError: for a bad endpoint, timeout or policy.
        AllEndpointsFailed: when every attempt failed everywhere (the last one).
    """
    hosts = _normalise(endpoints)
    chosen = _check(timeout, policy)

    def make() -> Callable[..., Any]:
        def _connect(*, endpoint: tuple[str, int], timeout: float, probe: bytes | None) -> Any:
            sock = socket.create_connection(endpoint, timeout=_attempt_timeout(timeout))
            try:
                if probe is not None:
                    sock.sendall(probe)
                    if not sock.recv(65536):
                        raise ConnectionResetError(f"{endpoint}: closed before answering")
                sock.settimeout(timeout)
            except BaseException:
                sock.close()
                raise
            return sock

        _connect.__qualname__ = "retryx.sockets.connect"  # the name in logs and events
        breaker = _endpoint_breaker(_connect.__qualname__, chosen, len(hosts))
        layer = failover(hosts, param="endpoint", order=order, breaker=breaker)
        return retry(chosen)(layer(_connect))

    fn = _pipeline(("sync", hosts, chosen, order), make)
    sock: socket.socket = fn(timeout=timeout, probe=probe)
    return sock


async def open_connection(
    endpoints: Endpoint | Sequence[Endpoint],
    *,
    policy: Policy | None = None,
    timeout: float = 5.0,
    order: str = "priority",
    probe: bytes | None = None,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` with retry and failover; returns ``(reader, writer)``.

    Same semantics as ``connect``; extra keyword arguments (``ssl=...``) go to
    ``asyncio.open_connection``.
    """
    import asyncio

    hosts = _normalise(endpoints)
    chosen = _check(timeout, policy)

    def make() -> Callable[..., Any]:
        async def _open(
            *, endpoint: tuple[str, int], timeout: float, probe: bytes | None, kwargs: Any
        ) -> Any:
            async with asyncio.timeout(_attempt_timeout(timeout)):
                reader, writer = await asyncio.open_connection(*endpoint, **kwargs)
                try:
                    if probe is not None:
                        writer.write(probe)
                        await writer.drain()
                        if not await reader.read(65536):
                            raise ConnectionResetError(f"{endpoint}: closed before answering")
                except BaseException:
                    writer.close()
                    raise
            return reader, writer

        _open.__qualname__ = "retryx.sockets.open_connection"
        breaker = _endpoint_breaker(_open.__qualname__, chosen, len(hosts))
        layer = failover(hosts, param="endpoint", order=order, breaker=breaker)
        return retry(chosen)(layer(_open))

    fn = _pipeline(("async", hosts, chosen, order), make)
    pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] = await fn(
        timeout=timeout, probe=probe, kwargs=kwargs
    )
    return pair
