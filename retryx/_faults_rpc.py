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

from ._fault import CONNECTION as _CONNECTION
from ._fault import CONNECTION_UNSENT as _CONNECTION_UNSENT
from ._fault import CONTENTION as _CONTENTION
from ._fault import PERMANENT as _PERMANENT
from ._fault import PUSHBACK as _PUSHBACK
from ._fault import SERVER as _SERVER
from ._fault import THROTTLED as _THROTTLED
from ._fault import TIMEOUT as _TIMEOUT
from ._fault import TIMEOUT_UNSENT as _TIMEOUT_UNSENT
from ._fault import Fault

__all__ = ["JUDGES", "client_retries", "warn_client_retries"]

_MAX_LINKS = 5
_CACHE_SIZE = 1024


class _Names:
    """Per exception type, the entry of ``table`` for its most derived class from the
    packages ``roots``: the MRO walk runs once per type, later faults are a dict hit.
    """

    __slots__ = ("cache", "roots", "table")

    def __init__(self, roots: tuple[str, ...], table: dict[str, Any]) -> None:
        self.roots = roots
        self.table = table
        self.cache: dict[type, Any] = {}

    def __call__(self, exc: BaseException) -> Any:
        kind = type(exc)
        try:
            return self.cache[kind]
        except KeyError:
            pass
        entry = None
        for klass in kind.__mro__:
            module = klass.__module__
            if klass.__name__ in self.table and any(
                module == root or module.startswith(root + ".") for root in self.roots
            ):
                entry = self.table[klass.__name__]
                break
        if len(self.cache) >= _CACHE_SIZE:  # classes made at run time (botocore's)
            self.cache.clear()
        self.cache[kind] = entry
        return entry


def _refused(exc: BaseException) -> bool:
    """True when a refused connect or a failed name lookup is chained to ``exc``
    (as its ``__cause__`` / ``__context__``, or among their arguments).
    """
    current: BaseException | None = exc
    for _ in range(_MAX_LINKS):  # bounded, so a cycle ends too
        if current is None:
            return False
        if _refusal(current) or any(_refusal(arg) for arg in current.args):
            return True
        current = current.__cause__ or current.__context__
    return False


def _refusal(link: object) -> bool:
    if not isinstance(link, OSError):
        return False
    if link.errno == errno.ECONNREFUSED:
        return True
    return type(link).__name__ == "gaierror" and type(link).__module__ == "socket"


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
    # from the client; "cannot be connected" is raised from the last node's fault
    "SlotNotCoveredError": _SERVER,
    "RedisClusterException": "cause",
}


_redis_names = _Names(("redis",), _REDIS)


def _redis(exc: BaseException) -> Fault | None:
    verdict = _redis_names(exc)
    if verdict == "cause":
        # the node's redis fault it was raised from; else no opinion, so classify's
        # chain walk still finds a socket fault behind it (or calls it permanent)
        cause = exc.__cause__
        return None if cause is None or cause is exc else _redis(cause)
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


_grpc_names = _Names(("grpc",), {"FutureTimeoutError": _TIMEOUT, "RpcError": "rpc"})


def _grpc(exc: BaseException) -> Fault | None:
    kind = _grpc_names(exc)
    if kind != "rpc":
        return kind  # type: ignore[no-any-return]
    code = getattr(exc, "code", None)
    if not callable(code):
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
                millis = -1  # gRFC A6: an unparseable pushback also means "do not retry"
            if millis < 0:
                return _PUSHBACK  # the server says: do not retry
            return _hinted(fault, millis)
    if fault.cause == "connection":
        details = getattr(call, "details", None)
        text = details() if callable(details) else None
        if isinstance(text, str) and text.startswith(_GRPC_NOT_CONNECTED):
            return _CONNECTION_UNSENT
    return fault


_hints: dict[tuple[Fault, int], Fault] = {}


def _hinted(fault: Fault, millis: int) -> Fault:
    """``fault`` with a pushback of ``millis``; servers repeat a few values, so the
    records are kept (a frozen dataclass costs about half a microsecond to build).
    """
    hinted = _hints.get((fault, millis))
    if hinted is None:
        hinted = Fault(True, fault.cause, millis / 1000.0, fault.unsent)
        if len(_hints) >= _CACHE_SIZE:
            _hints.clear()
        _hints[fault, millis] = hinted
    return hinted


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
_BY_CAUSE = {"throttled": _THROTTLED, "timeout": _TIMEOUT, "server": _SERVER}


_boto_names = _Names(("botocore", "aiobotocore"), _BOTO)


def _botocore(exc: BaseException) -> Fault | None:
    verdict = _boto_names(exc)
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
    hint = (meta.get("HTTPHeaders") or {}).get("retry-after")
    if hint is None:
        return _BY_CAUSE[cause]
    return Fault(True, cause, _retry_after(hint))


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


_google_names = _Names(("google.api_core",), _GOOGLE)


def _google(exc: BaseException) -> Fault | None:
    verdict = _google_names(exc)
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
