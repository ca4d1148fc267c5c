"""Client verdicts: redis-py, grpc, botocore / aiobotocore, google-api-core.

See ``retryx._clients``: each judge gets the exception and walks its MRO by module
and class name, so no client is ever imported here. ``client_retries`` spots a
redis-py client that retries on its own (an inner retry layer under retryx's).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

from ._fault import Fault

__all__ = ["JUDGES", "client_retries", "warn_client_retries"]

_PERMANENT = Fault(False, "permanent")
_CONNECTION = Fault(True, "connection")
_CONNECTION_UNSENT = Fault(True, "connection", unsent=True)
_TIMEOUT = Fault(True, "timeout")
_TIMEOUT_UNSENT = Fault(True, "timeout", unsent=True)
_SERVER = Fault(True, "server")
_THROTTLED = Fault(True, "throttled")
_CONTENTION = Fault(True, "contention")
_MAX_LINKS = 5


def _named(exc: BaseException, root: str, table: dict[str, Any]) -> Any:
    """The table entry of the most derived class of ``exc`` from package ``root``."""
    for klass in type(exc).__mro__:
        module = klass.__module__
        if (module == root or module.startswith(root + ".")) and klass.__name__ in table:
            return table[klass.__name__]
    return None


def _linked(exc: BaseException) -> list[BaseException]:
    """``exc``'s exception arguments and its ``__cause__`` / ``__context__`` chain."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    for _ in range(_MAX_LINKS):
        if current is None or any(current is seen for seen in found):
            break
        found.append(current)
        found.extend(arg for arg in current.args if isinstance(arg, BaseException))
        current = current.__cause__ or current.__context__
    return found


def _refused(exc: BaseException) -> bool:
    """True when a refused connection or a failed name lookup is chained to ``exc``."""
    for link in _linked(exc):
        if isinstance(link, OSError) and link.errno == errno.ECONNREFUSED:
            return True
        if type(link).__name__ == "gaierror" and type(link).__module__ == "socket":
            return True
    return False


# --- redis-py (sync, asyncio and cluster share redis.exceptions) ---------------------

_REDIS: dict[str, Fault | str] = {
    # ConnectionError subclasses that a retry cannot fix
    "AuthenticationError": _PERMANENT,
    "AuthorizationError": _PERMANENT,
    "ExternalAuthProviderError": _PERMANENT,
    "BusyLoadingError": _SERVER,
    "MaxConnectionsError": _CONNECTION_UNSENT,  # the local pool is full: nothing sent
    "ConnectionError": "connection",
    "TimeoutError": "timeout",
    # ResponseError subclasses: the server is moving or failing over
    "MasterDownError": _CONNECTION,
    "ClusterDownError": _SERVER,
    "TryAgainError": _SERVER,
    "ReadOnlyError": _CONNECTION,  # a replica after a failover: move to the primary
    "ResponseError": _PERMANENT,
    "WatchError": _CONTENTION,  # a WATCHed key changed: run the transaction again
    "RedisError": _PERMANENT,
    # the cluster client's own errors: a slot without a node is CLUSTERDOWN seen
    # from the client; "cannot be connected" carries the last node's fault
    "SlotNotCoveredError": _SERVER,
    "RedisClusterException": "cause",
}


def _redis(exc: BaseException) -> Fault | None:
    verdict = _named(exc, "redis", _REDIS)
    if verdict == "cause":
        cause = exc.__cause__
        inner = None if cause is None or cause is exc else _redis(cause)
        return _PERMANENT if inner is None else inner
    if verdict == "connection":
        return _CONNECTION_UNSENT if _refused(exc) else _CONNECTION
    if verdict == "timeout":
        # redis-py says "Timeout connecting to server" when the TCP connect timed out
        if str(exc).startswith("Timeout connecting"):
            return _TIMEOUT_UNSENT
        return _TIMEOUT
    return verdict  # type: ignore[no-any-return]


# --- grpc (sync RpcError and grpc.aio.AioRpcError) -----------------------------------

_GRPC_CODES = {
    "UNAVAILABLE": _CONNECTION,
    "DEADLINE_EXCEEDED": _TIMEOUT,
    "RESOURCE_EXHAUSTED": _THROTTLED,
    "ABORTED": _CONTENTION,
}
_GRPC_PUSHBACK = "grpc-retry-pushback-ms"
# grpc's client load-balancing policies say this when no subchannel could connect:
# the call never left the client.
_GRPC_NOT_CONNECTED = "failed to connect to all addresses"


def _grpc(exc: BaseException) -> Fault | None:
    names = {klass.__name__ for klass in type(exc).__mro__}
    if "FutureTimeoutError" in names:
        return _TIMEOUT
    code = getattr(exc, "code", None)
    if "RpcError" not in names or not callable(code):
        return None
    try:
        status = code()
    except Exception:  # a non-terminated call object: no status to judge
        return None
    fault = _GRPC_CODES.get(getattr(status, "name", ""), _PERMANENT)
    return _pushback(exc, fault) if fault.transient else fault


def _pushback(call: Any, fault: Fault) -> Fault:
    """``fault`` adjusted by the server's ``grpc-retry-pushback-ms`` trailer, if any."""
    try:
        trailers = call.trailing_metadata() or ()
    except Exception:
        trailers = ()
    for key, value in trailers:
        if key == _GRPC_PUSHBACK:
            try:
                millis = int(value.decode() if isinstance(value, bytes) else value)
            except ValueError:
                break  # malformed: ignored, as grpc's own retry does
            if millis < 0:
                return Fault(False, "pushback")  # the server says: do not retry
            return Fault(True, fault.cause, millis / 1000.0, fault.unsent)
    if fault.cause == "connection":
        details = getattr(call, "details", None)
        text = details() if callable(details) else None
        if isinstance(text, str) and text.startswith(_GRPC_NOT_CONNECTED):
            return _CONNECTION_UNSENT
    return fault


# --- botocore / aiobotocore ------------------------------------------------------------

_BOTO: dict[str, Fault | str] = {
    "EndpointConnectionError": _CONNECTION_UNSENT,
    "ConnectTimeoutError": _TIMEOUT_UNSENT,
    "ReadTimeoutError": _TIMEOUT,
    "ConnectionClosedError": _CONNECTION,
    "ResponseStreamingError": _CONNECTION,
    "IncompleteReadError": _CONNECTION,
    "ProxyConnectionError": _CONNECTION,
    "SSLError": _PERMANENT,
    "HTTPClientError": _CONNECTION,
    "ConnectionError": _CONNECTION,
    "BotoCoreError": _PERMANENT,
    "ClientError": "client",
}
# botocore's own lists (botocore.retries.standard), so both layers agree.
_BOTO_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
        "TransactionInProgressException",
        "PriorRequestNotComplete",
    }
)
_BOTO_TIMEOUT = frozenset({"RequestTimeout", "RequestTimeoutException"})
_SERVER_STATUSES = frozenset({500, 502, 503, 504})


def _botocore(exc: BaseException) -> Fault | None:
    verdict = _named(exc, "botocore", _BOTO) or _named(exc, "aiobotocore", _BOTO)
    if verdict is _CONNECTION_UNSENT and _aiohttp_after_connect(exc):
        return _CONNECTION
    if verdict != "client":
        return verdict  # type: ignore[no-any-return]
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return _PERMANENT
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = error.get("Code")
    if code in _BOTO_THROTTLED:
        cause = "throttled"
    elif code in _BOTO_TIMEOUT:
        cause = "timeout"
    elif meta.get("HTTPStatusCode") in _SERVER_STATUSES:
        cause = "server"
    else:
        return _PERMANENT
    headers = meta.get("HTTPHeaders") or {}
    return Fault(True, cause, _retry_after(headers.get("retry-after")))


def _aiohttp_after_connect(exc: BaseException) -> bool:
    """aiobotocore also calls a connection lost after connecting EndpointConnectionError
    (any aiohttp ``ClientConnectionError``): only ``ClientConnectorError`` is unsent.
    """
    kwargs = getattr(exc, "kwargs", None)
    error = kwargs.get("error") if isinstance(kwargs, dict) else None
    if error is None or not type(error).__module__.startswith("aiohttp"):
        return False
    return all(klass.__name__ != "ClientConnectorError" for klass in type(error).__mro__)


def _retry_after(value: Any) -> float | None:
    if value is None:
        return None
    from ._classify import parse_retry_after  # only on a fault; _classify imports us

    return parse_retry_after(value)


# --- google-api-core -------------------------------------------------------------------

_GOOGLE: dict[str, Fault | str] = {
    "ServiceUnavailable": _CONNECTION,
    "InternalServerError": _SERVER,
    "BadGateway": _SERVER,
    "DeadlineExceeded": _TIMEOUT,  # before GatewayTimeout, its base class
    "GatewayTimeout": _SERVER,
    "ResourceExhausted": _THROTTLED,
    "TooManyRequests": _THROTTLED,
    "Aborted": _CONTENTION,
    # the library's names for the other statuses: permanent, whatever their base
    "Unknown": _PERMANENT,
    "DataLoss": _PERMANENT,
    "MethodNotImplemented": _PERMANENT,
    "Conflict": _PERMANENT,
    "ClientError": _PERMANENT,
    "ServerError": "codes",
    "GoogleAPICallError": "codes",
    "GoogleAPIError": _PERMANENT,  # RetryError included: google's own retry gave up
}
_GOOGLE_STATUSES = {500: _SERVER, 502: _SERVER, 503: _CONNECTION, 504: _SERVER, 429: _THROTTLED}


def _google(exc: BaseException) -> Fault | None:
    verdict = _named(exc, "google.api_core", _GOOGLE)
    if verdict == "codes":  # a status google-api-core has no class for
        grpc_code = getattr(getattr(exc, "grpc_status_code", None), "name", None)
        if grpc_code is not None:
            verdict = _GRPC_CODES.get(grpc_code, _PERMANENT)
        else:
            verdict = _GOOGLE_STATUSES.get(getattr(exc, "code", None), _PERMANENT)  # type: ignore[arg-type]
    if not isinstance(verdict, Fault):
        return None
    if not verdict.transient:
        return verdict
    response = getattr(exc, "response", None)
    if callable(getattr(response, "trailing_metadata", None)):
        return _pushback(response, verdict)  # from_grpc_error keeps the RpcError
    headers = getattr(response, "headers", None)
    hint = None if headers is None else _retry_after(headers.get("Retry-After"))
    return verdict if hint is None else Fault(True, verdict.cause, hint, verdict.unsent)


JUDGES: dict[str, Callable[[BaseException], Fault | None]] = {
    "redis": _redis,
    "grpc": _grpc,
    "botocore": _botocore,
    "aiobotocore": _botocore,
    "google": _google,
}


# --- inner retry layers ------------------------------------------------------------------

logger = logging.getLogger("retryx")
_warned: set[str] = set()


def client_retries(client: Any) -> str | None:
    """How a redis-py client retries on its own (sync, asyncio or cluster), or ``None``."""
    if not type(client).__module__.startswith("redis"):
        return None
    get_retry = getattr(client, "get_retry", None)
    retry = get_retry() if callable(get_retry) else getattr(client, "retry", None)
    retries = getattr(retry, "_retries", 0)
    if isinstance(retries, int) and retries != 0:
        times = "forever" if retries < 0 else f"up to {retries} times"
        return f"redis-py retries failed commands {times} (its Retry object)"
    return None


def warn_client_retries(client: Any, where: str) -> None:
    """Log once per process and place when ``client`` retries under retryx's own layer."""
    found = client_retries(client)
    if found is None or where in _warned:
        return
    _warned.add(where)
    logger.warning(
        "%s: %s, under retryx's own retry layer; turn it off so that retryx is the "
        "only one: redis.Redis(..., retry=Retry(NoBackoff(), 0)) "
        "(see docs/clients.md)",
        where,
        found,
    )
