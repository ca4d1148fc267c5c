"""Tell transient faults from permanent ones.

``classify`` is the default classifier; ``_classifiers.to_classifier`` normalises
every form ``retry_on`` and ``counts`` accept into one callable like it.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Mapping
from typing import Any, Protocol

from . import _clock
from ._clients import FAST_CONNECTION, FAST_TIMEOUT
from ._clients import judge as _judge_client
from ._errors import (
    AllEndpointsFailed,
    CircuitOpenError,
    NestedRetryError,
    Permanent,
    RetryxError,
    Transient,
)
from ._fault import CONNECTION as _CONNECTION
from ._fault import PERMANENT as _PERMANENT
from ._fault import PUSHBACK as _PUSHBACK
from ._fault import TIMEOUT as _TIMEOUT
from ._fault import Cause, Fault
from ._pushback import HEADER, NO_RETRY

__all__ = [
    "Cause",
    "Classifier",
    "Fault",
    "chained",
    "classify",
    "is_unsent",
    "retry_after_hint",
    "verdict",
]


class Classifier(Protocol):
    """Anything that maps an exception to a ``Fault``."""

    def __call__(self, exc: BaseException, /) -> Fault: ...


_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EPIPE,
        errno.EAGAIN,
    }
)
_PUSHBACK_HEADER = HEADER.lower()  # _header() compares lower-cased names
_TRANSIENT_STATUSES = {408: "timeout", 425: "server", 429: "throttled", 500: "server"}
_TRANSIENT_STATUSES |= {502: "server", 503: "throttled", 504: "server"}

# The exact builtin socket types answered at once (sets owned by ``_clients``, which
# takes out the types a registered or configured rule applies to).
_CONNECTION_TYPES = FAST_CONNECTION
_TIMEOUT_TYPES = FAST_TIMEOUT
_MAX_LINKS = 5  # links of __cause__/__context__ searched for a socket fault
_MAX_FRAMES = 1000  # traceback entries followed to find where an exception was raised
_INF = float("inf")
_MARKERS = (RetryxError, Transient, Permanent)


def _status(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        if holder is None:
            continue
        for attr in ("status_code", "status", "code"):
            if attr == "code" and holder is exc and not _is_http_error(exc):
                continue  # ``code`` is only trusted on urllib's HTTPError
            value = getattr(holder, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _is_http_error(exc: BaseException) -> bool:
    error = _urllib_http_error()
    return error is not None and isinstance(exc, error)


def _urllib_http_error() -> type[BaseException] | None:
    module = sys.modules.get("urllib.error")  # never imported by retryx itself
    error: type[BaseException] | None = None if module is None else module.HTTPError
    return error


def _headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None and (_is_http_error(exc) or _status(exc) is not None):
        # urllib's HTTPError, and clients (aiohttp's ClientResponseError) that put
        # the status and the headers on the exception itself.
        headers = getattr(exc, "headers", None)
    return headers


def _header(headers: Any, name: str) -> Any:
    """Case-insensitive lookup on any mapping (or object with ``items()``)."""
    items = headers.items() if hasattr(headers, "items") else ()
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def parse_retry_after(value: Any) -> float | None:
    """Seconds from a Retry-After value: delta-seconds or an HTTP-date (past -> 0).

    A value too large for a float (``10**400``, a date past year 9999) is
    ``inf``: a hint beyond any deadline, so the caller gives up at once.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return max(0.0, float(value))
        except OverflowError:  # an int beyond a float's range
            return _INF if value > 0 else 0.0
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # only HTTP-dates need it

    try:
        when = parsedate_to_datetime(text)
    except OverflowError:
        return _INF
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older email.utils
        return None
    try:
        return max(0.0, when.timestamp() - _clock.now())
    except (OverflowError, ValueError):  # pragma: no cover - platform limits of timestamp()
        return _INF


def retry_after_hint(exc: BaseException) -> float | None:
    """The peer's Retry-After hint carried by ``exc``, in seconds, or ``None``."""
    hint = getattr(exc, "retry_after", None)
    if hint is not None:
        return parse_retry_after(hint)
    headers = _headers(exc)
    if headers is None:
        return None
    return parse_retry_after(_header(headers, "retry-after"))


def _status_fault(exc: BaseException, status: int) -> Fault:
    """The verdict on a response error: its status, Retry-After and ``Retryx-Pushback``.

    ``Retryx-Pushback: no-retry`` (a retryx layer behind the peer already gave
    up) is permanent, cause ``pushback``; ``Retryx-Pushback: <seconds>`` is the hint.
    """
    hint: float | None = None
    headers = _headers(exc)
    pushback = None if headers is None else _header(headers, _PUSHBACK_HEADER)
    if pushback is not None:
        if isinstance(pushback, bytes):
            pushback = pushback.decode("latin-1")
        if isinstance(pushback, str) and pushback.strip().lower() == NO_RETRY:
            return _PUSHBACK
        hint = parse_retry_after(pushback)
    cause = _TRANSIENT_STATUSES.get(status)
    if cause is None:
        return _PERMANENT
    return Fault(True, cause, retry_after_hint(exc) if hint is None else hint)


def classify(exc: BaseException) -> Fault:
    """The default classifier: transient for connection, timeout, throttling and 5xx faults.

    Transient (retried):

    - ``ConnectionError`` and subclasses (cause ``connection``), ``TimeoutError``
      (``timeout``), an ``OSError`` with a transient errno (ECONNREFUSED,
      ECONNRESET, ECONNABORTED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ENETDOWN,
      EPIPE, EAGAIN), ``socket.gaierror`` with EAI_AGAIN;
    - the faults of the common clients (requests, urllib3, httpx, aiohttp,
      redis, grpc, botocore, the database drivers, ...; see ``docs/clients.md``)
      and the rules taught with ``retryx.faults.register`` or the ``[faults]``
      configuration table, which come first;
    - an exception carrying an HTTP status (``exc.status_code``, ``exc.status``,
      ``exc.response.status_code``, or ``code`` on ``urllib.error.HTTPError``)
      in 408, 425, 429, 500, 502, 503, 504 (429 and 503: cause ``throttled``);
    - ``Transient``, and any exception with ``is_transient = True``
      (cause ``explicit``);
    - ``CircuitOpenError`` (cause ``circuit_open``, ``retry_after`` = seconds
      until the breaker admits a trial call) and an ``AllEndpointsFailed``
      with at least one transient error;
    - an exception no rule knows whose ``__cause__``/``__context__`` chain
      (up to 5 links) holds a transient socket fault: that fault's verdict.

    Everything else is permanent, including other HTTP statuses, a response
    with ``Retryx-Pushback: no-retry`` (cause ``pushback``),
    ``socket.gaierror`` EAI_NONAME, ``ssl.SSLCertVerificationError``,
    ``Permanent``, ``NestedRetryError``, and ``KeyboardInterrupt``, ``SystemExit``
    and other exceptions that do not derive from ``Exception``. ``retry_after``
    comes from ``exc.retry_after``, a ``Retryx-Pushback: <seconds>`` or a
    ``Retry-After`` header (delta-seconds or HTTP-date) on the response.

    Args:
        exc: the exception an attempt raised.

    Returns:
        The ``Fault``: ``transient``, ``cause``, ``retry_after`` and ``unsent``.
    """
    # The common socket faults first (exact builtin types, so none of the marker
    # classes below can be among them): no further probing needed.
    kind = type(exc)
    if kind in _CONNECTION_TYPES:
        return _CONNECTION
    if kind in _TIMEOUT_TYPES:
        return _TIMEOUT
    if not isinstance(exc, Exception):
        return _PERMANENT
    if isinstance(exc, _MARKERS):  # one check for all of retryx's own types
        marked = _marked(exc)
        if marked is not None:
            return marked
    if getattr(exc, "is_transient", False) is True:
        return Fault(True, "explicit", retry_after_hint(exc))
    judged = _judge_client(exc)
    if judged is not None:
        return judged
    status = _status(exc)
    if status is not None:
        return _status_fault(exc, status)
    judged = _classify_os(exc)
    if judged is not None:
        return judged
    return _from_chain(exc) or _PERMANENT


def _marked(exc: Exception) -> Fault | None:
    """The verdict on retryx's own exceptions: they say what they are (``None``: a
    ``RetryxError`` such as ``ConfigError`` that is judged like any exception)."""
    if isinstance(exc, Permanent | NestedRetryError):
        return _PERMANENT
    if isinstance(exc, CircuitOpenError):
        return Fault(True, "circuit_open", exc.retry_after)
    if isinstance(exc, AllEndpointsFailed):
        for error in exc.errors.values():
            fault = classify(error)
            if fault.transient:
                return Fault(True, fault.cause, exc.retry_after)
        return _PERMANENT
    if isinstance(exc, Transient):
        return Fault(True, "explicit", retry_after_hint(exc))
    return None


def _loaded(module: str) -> Any:
    """``sys.modules[module]`` or ``None``: an exception of a module nobody imported
    cannot exist, so retryx never imports ``socket`` or ``ssl`` just to look.
    """
    return sys.modules.get(module)


def _classify_os(exc: BaseException) -> Fault | None:
    """The builtin socket rules; ``None`` for an exception they know nothing about."""
    ssl = _loaded("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return _PERMANENT
    socket = _loaded("socket")
    if socket is not None and isinstance(exc, socket.gaierror):
        return _CONNECTION if exc.errno == socket.EAI_AGAIN else _PERMANENT
    if isinstance(exc, ConnectionError):
        return _CONNECTION
    if isinstance(exc, TimeoutError):
        return _TIMEOUT
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _TRANSIENT_ERRNOS:
            return _TIMEOUT if exc.errno == errno.ETIMEDOUT else _CONNECTION
        return _PERMANENT
    return None


def _from_chain(exc: BaseException) -> Fault | None:
    """A transient socket fault in the ``__cause__``/``__context__`` chain of an
    exception no rule knows (at most 5 links; a cycle ends the walk), with its
    ``unsent`` flag. A link the socket rules call permanent ends the walk too."""
    seen = [exc]
    link: BaseException | None = exc
    for _ in range(_MAX_LINKS):
        assert link is not None
        link = chained(link)
        if link is None or any(link is s for s in seen):
            return None
        seen.append(link)
        fault = _classify_os(link)
        if fault is not None:
            if not fault.transient:
                return None
            return Fault(True, fault.cause, None, _unsent_builtin(link))
    return None


def chained(exc: BaseException) -> BaseException | None:
    """The error ``exc`` wraps: its ``__cause__``, else its ``__context__`` when ``exc``
    was raised in the very frame that caught that context (``except E: raise X``).

    An implicit context is set for any exception raised while another is being
    handled, anywhere below the handler: a retry loop that runs the next attempt
    in its ``except`` block gives every later fault the first fault as context,
    though it did not cause them. ``__suppress_context__`` is not heeded: libraries
    re-raise with ``raise exc from None`` to shorten tracebacks (httpcore does), not
    to say the context did not cause it.
    """
    cause = exc.__cause__
    if cause is not None:
        return cause
    context = exc.__context__
    if context is None:
        return None
    tb = exc.__traceback__
    caught = context.__traceback__
    if tb is None or caught is None:
        return context  # nothing tells where they were raised: trust the link
    for _ in range(_MAX_FRAMES):  # to the frame that raised exc (bounded)
        if tb.tb_next is None:
            break
        tb = tb.tb_next
    # A traceback starts at the frame that caught the exception.
    return context if tb.tb_frame is caught.tb_frame else None


def _unsent_builtin(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    socket = _loaded("socket")
    return bool(
        socket is not None and isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
    )


def is_unsent(exc: BaseException) -> bool:
    """True when ``exc`` proves the request never reached the peer."""
    if type(exc) in _CONNECTION_TYPES:
        return type(exc) is ConnectionRefusedError
    fault = _judge_client(exc)
    if fault is not None:
        return fault.unsent
    if _unsent_builtin(exc):
        return True
    if isinstance(exc, Transient):
        return exc.unsent
    if isinstance(exc, CircuitOpenError):
        return True  # rejected by the breaker: nothing was sent
    if isinstance(exc, AllEndpointsFailed):
        return all(is_unsent(e) for e in exc.errors.values())
    if not isinstance(exc, Exception) or isinstance(exc, Permanent | NestedRetryError):
        return False
    if getattr(exc, "is_transient", False) is True or _status(exc) is not None:
        return False
    if _classify_os(exc) is not None:
        return False
    chained = _from_chain(exc)
    return chained is not None and chained.unsent


def verdict(exc: BaseException) -> Fault:
    """``classify(exc)`` with its ``unsent`` flag set as ``is_unsent`` says (for wrappers)."""
    fault = classify(exc)
    if fault.transient and not fault.unsent and is_unsent(exc):
        return Fault(True, fault.cause, fault.retry_after, True)
    return fault


def hints_from(headers: Mapping[str, str]) -> float | None:
    """Retry-After seconds from a header mapping (case-insensitive), or ``None``."""
    return parse_retry_after(_header(headers, "retry-after"))
