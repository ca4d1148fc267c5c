"""Client verdicts: database drivers (see ``retryx._clients``).

Nothing here imports a driver: the judges read class names along the MRO and the
attributes the drivers put on their errors (``sqlstate``, ``pgcode``, the MySQL
error number in ``args[0]``, MongoDB error labels, SQLAlchemy's ``orig``).

- PostgreSQL (psycopg 3, psycopg2, asyncpg), by SQLSTATE: class ``08`` and
  ``57P01``/``57P02``/``57P03`` connection, ``40001``/``40P01``/``55P03``
  contention, ``53300`` throttled, the rest permanent. ``53300`` and ``57P03`` are
  only ever sent while a session starts, before any statement: unsent.
  libpq reports failures to connect without a SQLSTATE, so psycopg's and
  psycopg2's ``OperationalError`` without one is judged by libpq's message (see
  ``_libpq``).
- MySQL (pymysql, mysqlclient's ``MySQLdb``), by error number. aiomysql raises
  pymysql's own classes, so pymysql's judge covers it.
- pymongo (motor raises pymongo's classes): ``ConnectionFailure`` and its
  subclasses, then the error labels.
- SQLAlchemy: a ``DBAPIError`` gets the verdict of the driver error in ``orig``.
"""

from __future__ import annotations

from collections.abc import Callable

from ._fault import CONNECTION as _CONNECTION
from ._fault import CONNECTION_UNSENT as _CONNECTION_UNSENT
from ._fault import CONTENTION as _CONTENTION
from ._fault import PERMANENT as _PERMANENT
from ._fault import THROTTLED_UNSENT as _THROTTLED_UNSENT
from ._fault import TIMEOUT as _TIMEOUT
from ._fault import TIMEOUT_UNSENT as _TIMEOUT_UNSENT
from ._fault import Fault

__all__ = ["JUDGES"]


_NAMES: dict[type, frozenset[str]] = {}


def _names(kind: type) -> frozenset[str]:
    """The names of ``kind`` and its bases, cached per class (a failure path, but a hot one)."""
    names = _NAMES.get(kind)
    if names is None:
        if len(_NAMES) >= 1024:  # classes made on the fly: keep the cache bounded
            _NAMES.clear()
        names = _NAMES[kind] = frozenset(klass.__name__ for klass in kind.__mro__)
    return names


# --- PostgreSQL ---------------------------------------------------------------------

_SQLSTATES: dict[str, Fault] = {
    "57P01": _CONNECTION,  # admin_shutdown: pg_terminate_backend, a fast shutdown
    "57P02": _CONNECTION,  # crash_shutdown
    "57P03": _CONNECTION_UNSENT,  # cannot_connect_now: starting up, in recovery
    "40001": _CONTENTION,  # serialization_failure
    "40P01": _CONTENTION,  # deadlock_detected
    "55P03": _CONTENTION,  # lock_not_available: lock_timeout, NOWAIT
    "53300": _THROTTLED_UNSENT,  # too_many_connections
}


def _sqlstate(code: str) -> Fault:
    fault = _SQLSTATES.get(code)
    if fault is not None:
        return fault
    return _CONNECTION if code.startswith("08") else _PERMANENT


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a subclass with a broken __str__: judged without its words
        return ""


# What the server says when it refuses a session (libpq quotes it after "FATAL:").
_REFUSALS = (
    ("too many connections", _THROTTLED_UNSENT),  # 53300, for a role or a database
    ("too many clients", _THROTTLED_UNSENT),  # 53300
    ("remaining connection slots are reserved", _THROTTLED_UNSENT),  # 53300
    ("the database system is", _CONNECTION_UNSENT),  # 57P03: starting up, shutting down
    ("terminating connection", _CONNECTION),  # 57P01, 57P02
)


def _libpq(message: str) -> Fault:
    """Judge a libpq error that has no SQLSTATE (psycopg 3 and psycopg2 give none
    while connecting) by its message: the server's own words after ``FATAL:``,
    else libpq's account of the socket.
    """
    if "FATAL:" in message:
        for words, fault in _REFUSALS:
            if words in message:
                return fault
        return _PERMANENT  # authentication failed, no such database or role
    if "Connection refused" in message:
        return _CONNECTION_UNSENT
    if "on socket" in message and "No such file or directory" in message:
        return _CONNECTION_UNSENT  # no server socket file: the server is not running
    if "timeout expired" in message:  # connect_timeout
        return _TIMEOUT_UNSENT
    if "could not translate host name" in message or "failed to resolve host" in message:
        # DNS (libpq's words; psycopg 3's own lookup): only "try again" is transient,
        # as for socket.gaierror EAI_AGAIN
        if "Temporary failure in name resolution" in message:
            return _CONNECTION_UNSENT
        return _PERMANENT
    return _CONNECTION  # the connection was lost or could not be made


def _libpq_driver(exc: BaseException, code: object) -> Fault:
    """psycopg 3 and psycopg2: the SQLSTATE, else libpq's message on an OperationalError."""
    if isinstance(code, str) and code:
        return _sqlstate(code)
    names = _names(type(exc))
    if "ConnectionTimeout" in names or "PoolTimeout" in names:
        return _TIMEOUT_UNSENT  # psycopg's connect_timeout; psycopg_pool had no connection free
    if "OperationalError" in names:
        return _libpq(_message(exc))
    return _PERMANENT  # InterfaceError ("connection already closed"), misuse


def _psycopg(exc: BaseException) -> Fault | None:
    return _libpq_driver(exc, getattr(exc, "sqlstate", None))


def _psycopg2(exc: BaseException) -> Fault | None:
    return _libpq_driver(exc, getattr(exc, "pgcode", None))


def _asyncpg(exc: BaseException) -> Fault | None:
    """asyncpg: the SQLSTATE of a server error; a closed connection is a connection fault.

    asyncpg raises the builtin ``ConnectionRefusedError`` / ``TimeoutError`` while
    connecting, which the default rules already judge.
    """
    code = getattr(exc, "sqlstate", None)
    if isinstance(code, str) and code:
        return _sqlstate(code)
    if _message(exc) == "connection is closed":  # the server ended the session while idle
        return _CONNECTION
    return _PERMANENT


# --- MySQL --------------------------------------------------------------------------

_MYSQL_ERRORS: dict[int, Fault] = {
    2002: _CONNECTION_UNSENT,  # CR_CONNECTION_ERROR: can't connect (socket)
    2003: _CONNECTION_UNSENT,  # CR_CONN_HOST_ERROR: can't connect (TCP)
    2006: _CONNECTION,  # CR_SERVER_GONE_ERROR
    2013: _CONNECTION,  # CR_SERVER_LOST (also a read timeout)
    2055: _CONNECTION,  # CR_SERVER_LOST_EXTENDED
    1053: _CONNECTION,  # ER_SERVER_SHUTDOWN
    1205: _CONTENTION,  # ER_LOCK_WAIT_TIMEOUT
    1213: _CONTENTION,  # ER_LOCK_DEADLOCK
    1040: _THROTTLED_UNSENT,  # ER_CON_COUNT_ERROR: sent instead of the greeting
}


def _mysql(exc: BaseException) -> Fault | None:
    """pymysql (and so aiomysql) and mysqlclient: the error number in ``args[0]``."""
    number = exc.args[0] if exc.args else None
    if isinstance(number, int):
        return _MYSQL_ERRORS.get(number, _PERMANENT)
    return _PERMANENT


# --- MongoDB ------------------------------------------------------------------------

_MONGO_CLASSES = (  # most specific first
    ("NetworkTimeout", _TIMEOUT),
    ("ServerSelectionTimeoutError", _CONNECTION_UNSENT),  # no server was ever asked
    ("ConnectionFailure", _CONNECTION),  # AutoReconnect, NotPrimaryError, ...
)
_MONGO_LABELS = (
    ("TransientTransactionError", _CONTENTION),  # retry the whole transaction
    ("RetryableWriteError", _CONNECTION),
)


def _pymongo(exc: BaseException) -> Fault | None:
    """pymongo and motor: the connection failures, then the error labels."""
    names = _names(type(exc))
    for name, fault in _MONGO_CLASSES:
        if name in names:
            return fault
    has_label = getattr(exc, "has_error_label", None)
    if callable(has_label):
        for label, labelled in _MONGO_LABELS:
            if has_label(label):
                return labelled
    return _PERMANENT


# --- SQLAlchemy ---------------------------------------------------------------------


def _sqlalchemy(exc: BaseException) -> Fault | None:
    """SQLAlchemy: a wrapped driver error gets the driver error's verdict.

    ``DBAPIError.orig`` holds the driver's exception (for the asyncio dialects,
    an emulated DB-API error whose own ``orig`` is the driver's); when SQLAlchemy
    saw the connection die (``connection_invalidated``) the cause is connection.
    The pool's ``TimeoutError`` (no connection free in time) is a timeout that
    sent nothing.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException) and orig is not exc:
        fault = _verdict(orig)
        if getattr(exc, "connection_invalidated", False) is True:
            return _CONNECTION_UNSENT if fault.unsent else _CONNECTION
        return fault
    if type(exc).__name__ == "TimeoutError":
        return _TIMEOUT_UNSENT
    return None


# The classifier's entry points, bound at first use: their modules import this one.
# (A function-level import would cost about a microsecond on every judgement.)
_judge: Callable[[BaseException], Fault | None] | None = None
_classify: Callable[[BaseException], Fault] | None = None
_is_unsent: Callable[[BaseException], bool] | None = None


def _verdict(exc: BaseException) -> Fault:
    """The full verdict on ``exc`` (a driver error SQLAlchemy wrapped), ``unsent`` included."""
    global _judge, _classify, _is_unsent
    if _judge is None or _classify is None or _is_unsent is None:
        from ._classify import classify, is_unsent
        from ._clients import judge

        _judge, _classify, _is_unsent = judge, classify, is_unsent
    fault = _judge(exc)  # a driver's error: its rule's verdict is complete
    if fault is not None:
        return fault
    fault = _classify(exc)
    if fault.unsent or not fault.transient:
        return fault
    # the default rules leave ``unsent`` to is_unsent (a refused connect under asyncpg)
    return Fault(True, fault.cause, fault.retry_after, True) if _is_unsent(exc) else fault


JUDGES: dict[str, Callable[[BaseException], Fault | None]] = {
    "psycopg": _psycopg,
    "psycopg2": _psycopg2,
    "asyncpg": _asyncpg,
    "pymysql": _mysql,
    "MySQLdb": _mysql,
    "pymongo": _pymongo,
    "sqlalchemy": _sqlalchemy,
}
