"""Client verdicts: HTTP clients (see ``retryx._clients``).

The stdlib (``http.client``, ``urllib``), requests, urllib3, httpx, aiohttp and
azure-core, matched by class name, never imported. Each package has a table
``qualname -> rule``; the judge asks the rule of the most derived class of that
package in the exception's MRO (found once per type), so the order of a
hierarchy is respected (requests' ``ConnectTimeout`` is also a
``ConnectionError``; urllib3's ``NewConnectionError`` is also a
``ConnectTimeoutError``). A rule returns a ``Fault``, or ``None`` to leave the
exception to ``classify``'s generic rules (the HTTP status of a response error).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ._fault import Fault

__all__ = ["JUDGES"]

Rule = Callable[[BaseException], Fault | None]

_CONNECTION = Fault(True, "connection")
_CONNECTION_UNSENT = Fault(True, "connection", unsent=True)
_TIMEOUT = Fault(True, "timeout")
_TIMEOUT_UNSENT = Fault(True, "timeout", unsent=True)
_PERMANENT = Fault(False, "permanent")
_MAX_LINKS = 6  # how deep a wrapper's chain is searched for a certificate or DNS verdict
_MAX_TYPES = 256  # per package; bounded even for a program that makes types forever

_verdict: Callable[[BaseException], Fault] | None = None


def _wrapped(inner: BaseException) -> Fault:
    """``classify``'s verdict on a wrapped error, with its ``unsent`` flag."""
    global _verdict
    if _verdict is None:
        from ._classify import verdict  # bound late: _classify imports this module

        _verdict = verdict
    return _verdict(inner)


# --- looking into the wrapped errors --------------------------------------------------


def _links(exc: BaseException) -> list[BaseException]:
    """The errors ``exc`` wraps, nearest first: ``reason``/``os_error``/``args[0]``,
    then the ``__cause__``/``__context__`` chain (bounded, cycle-safe)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < _MAX_LINKS:
        link = todo.pop(0)
        for attr in ("reason", "os_error", "__cause__", "__context__"):
            inner = getattr(link, attr, None)
            if isinstance(inner, BaseException) and inner is not exc and inner not in found:
                found.append(inner)
                todo.append(inner)
        first = link.args[0] if link.args else None
        if isinstance(first, BaseException) and first is not exc and first not in found:
            found.append(first)
            todo.append(first)
    return found


def _refused_for_good(exc: BaseException) -> bool:
    """A certificate failure, or DNS saying the name does not exist, among the wrapped errors."""
    ssl = sys.modules.get("ssl")
    socket = sys.modules.get("socket")
    no_name = () if socket is None else _no_name_errnos(socket)
    for link in (exc, *_links(exc)):
        if ssl is not None and isinstance(link, ssl.SSLCertVerificationError):
            return True
        if socket is not None and isinstance(link, socket.gaierror) and link.errno in no_name:
            return True
    return False


def _no_name_errnos(socket: object) -> tuple[int, ...]:
    # EAI_NODATA ("no address associated with hostname") is not on every platform.
    return tuple(
        n for n in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if n
    )


def _connect(fault: Fault) -> Rule:
    """A failure to connect: ``fault``, unless the certificate or DNS say no for good."""

    def rule(exc: BaseException) -> Fault:
        return _PERMANENT if _refused_for_good(exc) else fault

    return rule


def _by_inner(default: Fault | None) -> Rule:
    """The verdict of the wrapped error (``reason``, ``args[0]`` or the chain), else ``default``."""

    def rule(exc: BaseException) -> Fault | None:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            args = exc.args
            inner = args[0] if args and isinstance(args[0], BaseException) else None
        if inner is None:
            inner = exc.__cause__ if exc.__cause__ is not None else exc.__context__
        if inner is None or inner is exc:
            return default
        return _wrapped(inner)

    return rule


def _ssl_error(exc: BaseException) -> Fault:
    """An SSL failure: permanent for a bad certificate; otherwise the link broke."""
    return _PERMANENT if _refused_for_good(exc) else _CONNECTION


def _constant(fault: Fault | None) -> Rule:
    def rule(exc: BaseException) -> Fault | None:
        return fault

    return rule


_NO_OPINION = _constant(None)  # a response error: classify reads its status and headers
_C = _constant(_CONNECTION)
_T = _constant(_TIMEOUT)
_TU = _constant(_TIMEOUT_UNSENT)
_P = _constant(_PERMANENT)


def _table_judge(root: str, table: dict[str, Rule]) -> Rule:
    """A judge asking the rule of the most derived class of ``root`` in the MRO."""
    cache: dict[type, Rule | None] = {}

    def judge(exc: BaseException) -> Fault | None:
        kind = type(exc)
        try:
            rule = cache[kind]
        except KeyError:
            rule = None
            for klass in kind.__mro__:
                if klass.__module__.partition(".")[0] == root:
                    rule = table.get(klass.__qualname__)
                    if rule is not None:
                        break
            if len(cache) >= _MAX_TYPES:
                cache.clear()
            cache[kind] = rule
        return None if rule is None else rule(exc)

    return judge


# --- the tables ---------------------------------------------------------------------------

_STDLIB_HTTP: dict[str, Rule] = {
    # RemoteDisconnected is also a ConnectionResetError: classify knows it already.
    "RemoteDisconnected": _C,
    "IncompleteRead": _C,
}

_STDLIB_URLLIB: dict[str, Rule] = {
    "HTTPError": _NO_OPINION,  # status from .code, Retry-After from .headers
    "URLError": _by_inner(None),  # a str reason (an unknown URL type) stays permanent
}

_REQUESTS: dict[str, Rule] = {
    "ConnectTimeout": _TU,  # both a ConnectionError and a Timeout
    "ReadTimeout": _T,
    "Timeout": _T,
    "SSLError": _ssl_error,  # a ConnectionError
    "ConnectionError": _by_inner(_CONNECTION),  # the urllib3 error it wraps
    "ChunkedEncodingError": _C,
    "HTTPError": _NO_OPINION,
    "InvalidURL": _P,
    "MissingSchema": _P,
    "InvalidSchema": _P,
    "InvalidHeader": _P,
    "URLRequired": _P,
    "TooManyRedirects": _P,
}

_URLLIB3: dict[str, Rule] = {
    "NameResolutionError": _connect(_CONNECTION_UNSENT),
    "NewConnectionError": _connect(_CONNECTION_UNSENT),  # also a ConnectTimeoutError
    "ConnectTimeoutError": _TU,
    "ReadTimeoutError": _T,
    "TimeoutError": _T,
    "SSLError": _ssl_error,
    "ProtocolError": _C,
    "IncompleteRead": _C,
    "InvalidChunkLength": _C,
    "ProxyError": _C,
    "MaxRetryError": _by_inner(None),  # its reason
    "LocationValueError": _P,  # also LocationParseError
}

_HTTPX: dict[str, Rule] = {
    "ConnectError": _connect(_CONNECTION_UNSENT),
    "ConnectTimeout": _TU,
    "PoolTimeout": _TU,
    "ReadTimeout": _T,
    "WriteTimeout": _T,
    "TimeoutException": _T,
    "ReadError": _C,
    "WriteError": _C,
    "CloseError": _C,
    "NetworkError": _C,
    "RemoteProtocolError": _C,
    "ProxyError": _C,
    "HTTPStatusError": _NO_OPINION,
    "UnsupportedProtocol": _P,
    "LocalProtocolError": _P,
    "InvalidURL": _P,
    "DecodingError": _P,
    "TooManyRedirects": _P,
}

_AIOHTTP: dict[str, Rule] = {
    "ClientConnectorCertificateError": _P,
    "ClientConnectorSSLError": _P,
    "ClientSSLError": _P,
    "ClientConnectorDNSError": _connect(_CONNECTION_UNSENT),
    "ClientConnectorError": _connect(_CONNECTION_UNSENT),  # its os_error: DNS may say no
    "ConnectionTimeoutError": _TU,  # the connect phase timed out
    "SocketTimeoutError": _T,
    "ServerTimeoutError": _T,
    "ServerDisconnectedError": _C,
    "ClientPayloadError": _C,
    "ClientOSError": _C,
    "ClientConnectionResetError": _C,
    "ClientConnectionError": _C,
    "ServerFingerprintMismatch": _P,
    "TooManyRedirects": _P,
    "ClientResponseError": _NO_OPINION,  # .status and .headers on the exception itself
    "InvalidURL": _P,
}

_AZURE: dict[str, Rule] = {
    "ServiceRequestTimeoutError": _connect(_TIMEOUT_UNSENT),
    "ServiceRequestError": _connect(_CONNECTION_UNSENT),
    "ServiceResponseTimeoutError": _T,
    "ServiceResponseError": _C,
    "HttpResponseError": _NO_OPINION,  # .status_code, .response.headers
}

JUDGES: dict[str, Callable[[BaseException], Fault | None]] = {
    "http": _table_judge("http", _STDLIB_HTTP),
    "urllib": _table_judge("urllib", _STDLIB_URLLIB),
    "requests": _table_judge("requests", _REQUESTS),
    "urllib3": _table_judge("urllib3", _URLLIB3),
    "httpx": _table_judge("httpx", _HTTPX),
    "aiohttp": _table_judge("aiohttp", _AIOHTTP),
    "azure": _table_judge("azure", _AZURE),
}
