"""Fault classification: the default rules (table-driven), Retry-After hints, ``retry_on`` forms."""

from __future__ import annotations

import dataclasses
import email.message
import errno
import math
import socket
import ssl
import types
import urllib.error
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from retryx import (
    AllEndpointsFailed,
    CircuitOpenError,
    ConfigError,
    Fault,
    NestedRetryError,
    Permanent,
    Transient,
    classify,
)
from retryx._classifiers import to_classifier
from retryx._classify import is_unsent
from retryx.testing import FakeClock

# --- errnos --------------------------------------------------------------------------------

TRANSIENT_ERRNOS = [
    ("ECONNREFUSED", "connection"),
    ("ECONNRESET", "connection"),
    ("ECONNABORTED", "connection"),
    ("ETIMEDOUT", "timeout"),
    ("EHOSTUNREACH", "connection"),
    ("ENETUNREACH", "connection"),
    ("ENETDOWN", "connection"),
    ("EPIPE", "connection"),
    ("EAGAIN", "connection"),
]


@pytest.mark.parametrize(("name", "cause"), TRANSIENT_ERRNOS, ids=[n for n, _ in TRANSIENT_ERRNOS])
def test_transient_errnos(name: str, cause: str) -> None:
    """``OSError`` with each listed errno is transient."""
    exc = OSError(getattr(errno, name), name)
    assert Fault(True, cause) == classify(exc)


@pytest.mark.parametrize("name", ["ENOENT", "EACCES", "EINVAL", "EEXIST", "EBADF"])
def test_other_errnos_are_permanent(name: str) -> None:
    """``OSError`` with an errno not on the list is permanent."""
    assert Fault(False, "permanent") == classify(OSError(getattr(errno, name), name))


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (ConnectionError(), "connection"),
        (ConnectionRefusedError(), "connection"),
        (ConnectionResetError(), "connection"),
        (ConnectionAbortedError(), "connection"),
        (BrokenPipeError(), "connection"),
        (TimeoutError(), "timeout"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
def test_connection_and_timeout_errors_are_transient(exc: Exception, cause: str) -> None:
    """``ConnectionError`` (and subclasses) and ``TimeoutError`` are transient without an errno."""
    assert Fault(True, cause) == classify(exc)


def test_gaierror_eai_again_is_transient() -> None:
    """A temporary DNS failure (``EAI_AGAIN``) is transient."""
    assert Fault(True, "connection") == classify(socket.gaierror(socket.EAI_AGAIN, "again"))


def test_gaierror_eai_noname_is_permanent() -> None:
    """An unknown host name (``EAI_NONAME``) is permanent."""
    assert Fault(False, "permanent") == classify(socket.gaierror(socket.EAI_NONAME, "unknown"))


def test_certificate_verification_error_is_permanent() -> None:
    """``ssl.SSLCertVerificationError`` is permanent: retrying cannot fix a bad certificate."""
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert Fault(False, "permanent") == classify(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("x"), KeyError("k"), RuntimeError(), Exception(), ZeroDivisionError()],
    ids=lambda e: type(e).__name__,
)
def test_everything_else_is_permanent(exc: Exception) -> None:
    """Exceptions matching no rule are permanent."""
    assert Fault(False, "permanent") == classify(exc)


@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), SystemExit(1), GeneratorExit()],
    ids=lambda e: type(e).__name__,
)
def test_base_exceptions_are_permanent(exc: BaseException) -> None:
    """``BaseException``s that are not ``Exception``s are never transient."""
    assert not classify(exc).transient


def test_urlerror_wrapping_a_transient_socket_error() -> None:
    """``urllib.error.URLError`` is classified by the socket error it wraps."""
    assert classify(
        urllib.error.URLError(ConnectionRefusedError(errno.ECONNREFUSED, "x"))
    ).transient
    assert not classify(urllib.error.URLError("unknown url type")).transient


# --- HTTP statuses -------------------------------------------------------------------------

TRANSIENT_STATUSES = [408, 425, 429, 500, 502, 503, 504]
PERMANENT_STATUSES = [200, 302, 400, 401, 403, 404, 409, 422, 501, 505]


class StatusCode(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status_code = status


class Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Response:
    def __init__(self, status: int, headers: Any = None) -> None:
        self.status_code = status
        self.headers = {} if headers is None else headers


class ResponseError(Exception):
    def __init__(self, status: int, headers: Any = None) -> None:
        super().__init__(status)
        self.response = Response(status, headers)


def http_error(status: int, headers: Mapping[str, str] | None = None) -> urllib.error.HTTPError:
    message = email.message.Message()
    for key, value in (headers or {}).items():
        message[key] = value
    return urllib.error.HTTPError("http://example.test/", status, "status", message, None)


@pytest.fixture(
    params=[StatusCode, Status, ResponseError, http_error],
    ids=["status_code", "status", "response.status_code", "urllib.HTTPError"],
)
def with_status(request: pytest.FixtureRequest) -> Any:
    """Every way an exception may carry an HTTP status."""
    return request.param


@pytest.mark.parametrize("status", TRANSIENT_STATUSES)
def test_transient_http_statuses(with_status: Any, status: int) -> None:
    """408, 425, 429, 500, 502, 503 and 504 are transient however the status is carried."""
    fault = classify(with_status(status))
    assert fault.transient
    expected = "throttled" if status in (429, 503) else ("timeout", "server")
    assert fault.cause == expected or fault.cause in expected


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_statuses_have_cause_throttled(with_status: Any, status: int) -> None:
    """429 and 503 have cause ``"throttled"``."""
    assert "throttled" == classify(with_status(status)).cause


@pytest.mark.parametrize("status", PERMANENT_STATUSES)
def test_other_http_statuses_are_permanent(with_status: Any, status: int) -> None:
    """Any other HTTP status is permanent."""
    assert Fault(False, "permanent") == classify(with_status(status))


def test_status_beats_the_exception_type() -> None:
    """A ``ConnectionError`` subclass carrying a 404 status is permanent (the peer answered)."""

    class ClientError(ConnectionError):
        status_code = 404

    assert not classify(ClientError()).transient


def test_code_attribute_is_only_read_on_urllib_errors() -> None:
    """``exc.code`` is read as a status only on ``urllib.error.HTTPError``."""

    class Coded(Exception):
        code = 503

    assert not classify(Coded()).transient


@pytest.mark.parametrize("value", [True, "503", 503.0, 99, 600, None])
def test_non_status_values_are_ignored(value: Any) -> None:
    """Only ints in 100..599 count as a status (not bools, strings, floats)."""
    exc = StatusCode(0)
    exc.status_code = value
    assert not classify(exc).transient


# --- Retry-After ---------------------------------------------------------------------------


def test_retry_after_attribute() -> None:
    """``exc.retry_after`` (seconds) is the hint."""
    exc = StatusCode(503)
    exc.retry_after = 2.5  # type: ignore[attr-defined]
    assert Fault(True, "throttled", 2.5) == classify(exc)


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER", "rEtRy-AfTeR"])
def test_retry_after_header_lookup_is_case_insensitive(name: str) -> None:
    """The header is found whatever its case."""
    assert 7.0 == classify(ResponseError(503, {name: "7"})).retry_after


class OddMapping(Mapping[str, str]):
    """A mapping that is not a dict."""

    def __init__(self, **items: str) -> None:
        self._items = {k.replace("_", "-"): v for k, v in items.items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _message(**items: str) -> email.message.Message:
    message = email.message.Message()
    for key, value in items.items():
        message[key.replace("_", "-")] = value
    return message


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "4"},
        types.MappingProxyType({"retry-after": "4"}),
        OddMapping(Retry_After="4"),
        _message(Retry_After="4"),
        {b"Retry-After": b"4"},
    ],
    ids=["dict", "mappingproxy", "custom-Mapping", "email.Message", "bytes"],
)
def test_retry_after_header_on_any_mapping(headers: Any) -> None:
    """The header is read from any mapping of headers."""
    assert 4.0 == classify(ResponseError(429, headers)).retry_after


def test_retry_after_http_date(clock: FakeClock) -> None:
    """An HTTP-date is turned into seconds from now (retryx's wall clock)."""
    when = datetime.fromtimestamp(clock.now() + 30, tz=UTC)
    exc = ResponseError(503, {"Retry-After": format_datetime(when, usegmt=True)})
    assert 30.0 == classify(exc).retry_after


def test_retry_after_http_date_in_the_past_is_zero(clock: FakeClock) -> None:
    """An HTTP-date in the past means 0."""
    when = datetime.fromtimestamp(clock.now() - 3600, tz=UTC)
    exc = ResponseError(503, {"Retry-After": format_datetime(when, usegmt=True)})
    assert 0.0 == classify(exc).retry_after


@pytest.mark.parametrize("value", ["soon", "", "Mon, 99 Foo 2024"])
def test_unreadable_retry_after_is_no_hint(value: str) -> None:
    """A header that is neither seconds nor an HTTP-date gives no hint (the backoff applies)."""
    fault = classify(ResponseError(503, {"Retry-After": value}))
    assert fault.transient
    assert None is fault.retry_after


def test_urllib_http_error_retry_after_from_its_headers() -> None:
    """``urllib.error.HTTPError``: status from ``exc.code``, Retry-After from ``exc.headers``."""
    assert Fault(True, "throttled", 12.0) == classify(http_error(503, {"Retry-After": "12"}))
    assert Fault(True, "throttled", 1.0) == classify(http_error(429, {"retry-after": "1"}))


def test_retry_after_without_a_status() -> None:
    """A hint on a transient fault without status (``Transient``) is kept."""
    assert Fault(True, "explicit", 3.0) == classify(Transient("busy", retry_after=3))


# --- markers -------------------------------------------------------------------------------


def test_is_transient_attribute() -> None:
    """Any exception with ``is_transient = True`` is transient (cause ``"explicit"``)."""

    class Flagged(ValueError):
        is_transient = True

    class NotFlagged(ValueError):
        is_transient = False

    class Truthy(ValueError):
        is_transient = "yes"

    assert Fault(True, "explicit") == classify(Flagged())
    assert not classify(NotFlagged()).transient
    assert not classify(Truthy()).transient


def test_transient_and_permanent_markers() -> None:
    """``Transient`` is transient, ``Permanent`` permanent, even mixed with other bases."""

    class PermanentConnection(Permanent, ConnectionError):
        pass

    assert Fault(True, "explicit") == classify(Transient("x"))
    assert Fault(False, "permanent") == classify(Permanent("x"))
    assert Fault(False, "permanent") == classify(PermanentConnection())


def test_circuit_open_error() -> None:
    """``CircuitOpenError`` is transient, cause ``circuit_open``, hinting its ``retry_after``."""
    assert Fault(True, "circuit_open", 4.5) == classify(CircuitOpenError("db", 4.5))
    assert math.isinf(classify(CircuitOpenError("db", math.inf)).retry_after or 0)


def test_nested_retry_error_is_permanent() -> None:
    """``NestedRetryError`` is permanent: the outer layer must not retry it."""
    assert Fault(False, "permanent") == classify(NestedRetryError("outer", "inner"))


def test_all_endpoints_failed_is_transient_iff_any_error_is() -> None:
    """``AllEndpointsFailed`` is transient when any endpoint's error is transient."""
    mixed = AllEndpointsFailed({"a": ValueError("x"), "b": ConnectionResetError()})
    assert classify(mixed).transient
    assert "connection" == classify(mixed).cause
    assert not classify(AllEndpointsFailed({"a": ValueError(), "b": KeyError()})).transient


def test_all_endpoints_open_hints_the_smallest_retry_after() -> None:
    """When every endpoint is open the hint is the smallest ``retry_after``."""
    exc = AllEndpointsFailed({"a": CircuitOpenError("a", 9.0), "b": CircuitOpenError("b", 2.0)})
    assert Fault(True, "circuit_open", 2.0) == classify(exc)


def test_fault_is_a_frozen_record() -> None:
    """``Fault`` is a frozen ``retryx.Fault`` record; ``retry_after`` defaults to None."""
    fault = Fault(True, "timeout")
    assert None is fault.retry_after
    assert Fault(True, "timeout", None) == fault
    assert "retryx" == Fault.__module__
    with pytest.raises(dataclasses.FrozenInstanceError):
        fault.transient = False  # type: ignore[misc]


# --- retry_on forms ------------------------------------------------------------------------


class Throttled(Exception):
    pass


@pytest.fixture(
    params=[
        pytest.param(KeyError, id="type"),
        pytest.param((KeyError,), id="tuple"),
        pytest.param([KeyError, Throttled], id="list"),
        pytest.param("KeyError", id="builtin-name"),
        pytest.param(("KeyError", "email.errors:MessageError"), id="names"),
        pytest.param(lambda exc: isinstance(exc, KeyError), id="predicate-bool"),
        pytest.param(
            lambda exc: Fault(isinstance(exc, KeyError), "explicit"), id="predicate-fault"
        ),
    ]
)
def keyerror_classifier(request: pytest.FixtureRequest) -> Any:
    """Each accepted ``retry_on`` form, normalised; all treat ``KeyError`` as transient."""
    return to_classifier(request.param, field="Policy.retry_on")


def test_retry_on_forms_select_keyerror(keyerror_classifier: Any) -> None:
    """A listed fault is transient with cause ``explicit``; an unlisted one is permanent."""
    assert Fault(True, "explicit") == keyerror_classifier(KeyError("k"))
    assert not keyerror_classifier(ConnectionRefusedError()).transient
    assert not keyerror_classifier(ValueError()).transient


def test_retry_on_types_include_subclasses() -> None:
    """Subclasses of a listed type are transient too."""
    classifier = to_classifier(OSError, field="retry_on")
    assert classifier(FileNotFoundError()).transient


def test_retry_on_type_keeps_the_specific_cause() -> None:
    """A listed type keeps ``classify``'s more specific transient cause and hint."""
    classifier = to_classifier((ConnectionError, TimeoutError, StatusCode), field="retry_on")
    assert Fault(True, "connection") == classifier(ConnectionResetError())
    assert Fault(True, "timeout") == classifier(TimeoutError())
    exc = StatusCode(404)
    exc.retry_after = 5  # type: ignore[attr-defined]
    assert Fault(True, "explicit", 5.0) == classifier(exc)


def test_retry_on_predicate_false_or_none_is_permanent() -> None:
    """A predicate returning ``False`` (or ``None``) makes the fault permanent."""
    assert not to_classifier(lambda exc: False, field="retry_on")(ConnectionError()).transient
    assert not to_classifier(lambda exc: None, field="retry_on")(ConnectionError()).transient


def test_retry_on_predicate_returning_a_fault_is_used_as_is() -> None:
    """A ``Fault`` returned by the predicate is the verdict, cause and hint included."""
    verdict = Fault(True, "throttled", 1.5)
    assert verdict is to_classifier(lambda exc: verdict, field="retry_on")(ValueError())


def test_retry_on_classify_is_classify() -> None:
    """``retry_on=classify`` (or ``None``) is the default classifier itself."""
    assert classify is to_classifier(classify, field="retry_on")
    assert classify is to_classifier(None, field="retry_on")


def test_retry_on_never_makes_base_exceptions_transient() -> None:
    """``retry_on=BaseException`` or an always-true predicate never retries BaseExceptions."""
    for spec in (BaseException, lambda exc: True):
        classifier = to_classifier(spec, field="retry_on")
        assert not classifier(KeyboardInterrupt()).transient
        assert not classifier(SystemExit()).transient


def test_retry_on_dotted_names_are_imported() -> None:
    """``"module:Qualname"`` strings are imported, nested qualnames included."""
    classifier = to_classifier(["socket:gaierror", "urllib.error:HTTPError"], field="retry_on")
    assert classifier(socket.gaierror(socket.EAI_NONAME, "x")).transient


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("NoSuchThing", "'NoSuchThing'"),
        ("len", "'len'"),
        ("os:path_nope", "'os:path_nope'"),
        ((), "empty"),
        ([KeyError, 3], "3"),
        (3.5, "3.5"),
    ],
)
def test_bad_retry_on_is_config_error(spec: Any, shown: str) -> None:
    """A ``retry_on`` value of no accepted form raises ``ConfigError`` naming field and value."""
    with pytest.raises(ConfigError) as info:
        to_classifier(spec, field="Policy.retry_on")
    assert "Policy.retry_on" in str(info.value)
    assert shown in str(info.value)


# --- unsent faults (idempotent=False) ------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "unsent"),
    [
        (ConnectionRefusedError(), True),
        (socket.gaierror(socket.EAI_AGAIN, "again"), True),
        (Transient("x", unsent=True), True),
        (CircuitOpenError("db", 1.0), True),
        (socket.gaierror(socket.EAI_NONAME, "no"), False),
        (ConnectionResetError(), False),
        (TimeoutError(), False),
        (Transient("x"), False),
        (AllEndpointsFailed({"a": ConnectionRefusedError(), "b": CircuitOpenError("b", 1)}), True),
        (AllEndpointsFailed({"a": ConnectionRefusedError(), "b": ConnectionResetError()}), False),
    ],
    ids=[
        "refused",
        "EAI_AGAIN",
        "Transient-unsent",
        "circuit-open",
        "EAI_NONAME",
        "reset",
        "timeout",
        "Transient",
        "all-unsent",
        "some-sent",
    ],
)
def test_is_unsent(exc: Exception, unsent: bool) -> None:
    """Only faults proving the request never reached the peer count as unsent."""
    assert unsent == is_unsent(exc)
