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
from typing import Any

from ._fault import CONNECTION as _CONNECTION
from ._fault import CONNECTION_UNSENT as _CONNECTION_UNSENT
from ._fault import PERMANENT as _PERMANENT
from ._fault import TIMEOUT as _TIMEOUT
from ._fault import TIMEOUT_UNSENT as _TIMEOUT_UNSENT
from ._fault import Fault

__all__ = ["JUDGES"]

Rule = Callable[[BaseException], Fault | None]

_MAX_LINKS = 6  # how deep a wrapper's chain is searched for a certificate or DNS verdict
_MAX_TYPES = 256  # per package; bounded even for a program that makes types forever

_verdict: Callable[[BaseException], Fault] | None = None
_judge: Callable[[BaseException], Fault | None] | None = None
_chain: Callable[[BaseException], BaseException | None] | None = None
_no_name: tuple[int, ...] = ()  # the gaierror errnos meaning "no such name"
_special: tuple[type[BaseException], ...] = ()  # see _special_types


def _bind() -> None:
    global _verdict, _judge, _chain
    from ._classify import chained, verdict  # bound late: both modules import this one
    from ._clients import judge

    _verdict, _judge, _chain = verdict, judge, chained


def _wrapped(inner: BaseException) -> Fault:
    """The verdict on a wrapped error, with its ``unsent`` flag: a client judge's
    first (no detour through ``classify``), else ``classify``'s."""
    if _verdict is None or _judge is None:
        _bind()
    assert _verdict is not None
    assert _judge is not None
    fault = _judge(inner)
    return _verdict(inner) if fault is None else fault


def _chained(exc: BaseException) -> BaseException | None:
    """``retryx._classify.chained``: the cause, or a context raised in its handler."""
    if _chain is None:
        _bind()
    assert _chain is not None
    return _chain(exc)


# --- looking into the wrapped errors --------------------------------------------------


def _refused_for_good(exc: BaseException) -> bool:
    """A certificate failure, or DNS saying the name does not exist, in ``exc`` or its
    chain (``_chained``; at most ``_MAX_LINKS``; a cycle only repeats).

    On the path of every connect failure, so kept to plain attribute reads.
    """
    special = _special or _special_types()
    if not special:
        return False
    link: BaseException | None = exc
    for _ in range(_MAX_LINKS):
        if link is None:
            return False
        if isinstance(link, special):
            if _is_gaierror(link):
                return getattr(link, "errno", None) in _no_name
            return True  # a certificate failure
        cause = link.__cause__
        if cause is not None:
            link = cause
            continue
        context = link.__context__
        if context is None:
            return False
        dead_end = context.__cause__ is None and context.__context__ is None
        if dead_end and not isinstance(context, special):
            return False  # nothing to find there: no need to ask where it was raised
        link = _chained(link)
    return False


def _is_gaierror(exc: BaseException) -> bool:
    socket = sys.modules.get("socket")
    return socket is not None and isinstance(exc, socket.gaierror)


def _special_types() -> tuple[type[BaseException], ...]:
    """``(ssl.SSLCertVerificationError, socket.gaierror)`` of the modules loaded so far;
    remembered once both are (a client that raised a connect fault loaded both)."""
    global _special, _no_name
    ssl = sys.modules.get("ssl")
    socket = sys.modules.get("socket")
    found: list[type[BaseException]] = []
    if ssl is not None:
        found.append(ssl.SSLCertVerificationError)
    if socket is not None:
        found.append(socket.gaierror)
        # EAI_NODATA ("no address associated with hostname") is not on every platform.
        names = ("EAI_NONAME", "EAI_NODATA")
        _no_name = tuple(n for n in (getattr(socket, name, None) for name in names) if n)
    special = tuple(found)
    if len(special) == 2:
        _special = special
    return special


def _connect(fault: Fault) -> Rule:
    """A failure to connect: ``fault``, unless the certificate or DNS say no for good."""

    def rule(exc: BaseException) -> Fault:
        return _PERMANENT if _refused_for_good(exc) else fault

    return rule


def _by_inner(default: Fault | None) -> Rule:
    """The verdict of the wrapped error (``reason``, ``args[0]`` or the chain), else ``default``."""

    def rule(exc: BaseException) -> Fault | None:
        # requests' ConnectionError and urllib's URLError hold the error in args[0],
        # urllib3's MaxRetryError in .reason; else the chain says.
        args = exc.args
        inner: Any = args[0] if args else None
        if not isinstance(inner, BaseException):
            inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = _chained(exc)
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


class _TableJudge:
    """A judge asking the rule of the most derived class of ``root`` in the MRO.

    ``rule_for(kind)`` tells that rule (``retryx._clients`` asks it once per type,
    so its routes hold the rules themselves).
    """

    __slots__ = ("_cache", "root", "table")

    def __init__(self, root: str, table: dict[str, Rule]) -> None:
        self.root = root
        self.table = table
        self._cache: dict[type, Rule | None] = {}

    def rule_for(self, kind: type) -> Rule | None:
        for klass in kind.__mro__:
            if klass.__module__.partition(".")[0] == self.root:
                rule = self.table.get(klass.__qualname__)
                if rule is not None:
                    return None if rule is _NO_OPINION else rule
        return None

    def __call__(self, exc: BaseException) -> Fault | None:
        kind = type(exc)
        cache = self._cache
        try:
            rule = cache[kind]
        except KeyError:
            rule = self.rule_for(kind)
            if len(cache) >= _MAX_TYPES:
                cache.clear()
            cache[kind] = rule
        return None if rule is None else rule(exc)


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
    "http": _TableJudge("http", _STDLIB_HTTP),
    "urllib": _TableJudge("urllib", _STDLIB_URLLIB),
    "requests": _TableJudge("requests", _REQUESTS),
    "urllib3": _TableJudge("urllib3", _URLLIB3),
    "httpx": _TableJudge("httpx", _HTTPX),
    "aiohttp": _TableJudge("aiohttp", _AIOHTTP),
    "azure": _TableJudge("azure", _AZURE),
}
