"""google-api-core's real exceptions, made by the library's own conversions, judged by ``classify``.

HTTP: ``exceptions.from_http_response`` fed a real ``requests`` response from a
loopback server (what the REST transports do). gRPC: ``grpc_helpers.wrap_errors``
around a real call to the in-process gRPC server (what the gRPC transports do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.api_core")
requests = pytest.importorskip("requests")

from google.api_core import exceptions  # noqa: E402

from retryx import Fault, classify  # noqa: E402
from retryx._classify import is_unsent  # noqa: E402
from retryx.testing import servers  # noqa: E402

PERMANENT = Fault(False, "permanent")


def http_error(status: int, headers: dict[str, str] | None = None) -> Any:
    """The exception google-api-core makes from a real response with ``status``."""
    body = json.dumps({"error": {"code": status, "message": "scripted", "status": "X"}})
    script = [(status, {"Content-Type": "application/json", **(headers or {})}, body)]
    with servers.http(script) as srv, requests.Session() as session:
        response = session.get(srv.url + "/v1/things")
    return exceptions.from_http_response(response)


@pytest.mark.parametrize(
    ("status", "name", "fault"),
    [
        (503, "ServiceUnavailable", Fault(True, "connection")),
        (500, "InternalServerError", Fault(True, "server")),
        (502, "BadGateway", Fault(True, "server")),
        (504, "GatewayTimeout", Fault(True, "server")),
        (429, "TooManyRequests", Fault(True, "throttled")),
        (400, "BadRequest", PERMANENT),
        (401, "Unauthorized", PERMANENT),
        (403, "Forbidden", PERMANENT),
        (404, "NotFound", PERMANENT),
        (409, "Conflict", PERMANENT),
        (412, "PreconditionFailed", PERMANENT),
        (501, "MethodNotImplemented", PERMANENT),
    ],
)
def test_http_statuses(status: int, name: str, fault: Fault) -> None:
    """Each HTTP status, through from_http_response, gets the section 14 verdict."""
    exc = http_error(status)
    assert name == type(exc).__name__
    assert fault == classify(exc)
    assert not is_unsent(exc)


def test_http_status_without_a_class_goes_by_its_code() -> None:
    """A status google-api-core has no class for is judged by its code (418: permanent)."""
    exc = http_error(418)
    assert "GoogleAPICallError" == type(exc).__name__
    assert PERMANENT == classify(exc)


def test_http_retry_after_is_the_hint() -> None:
    """A Retry-After header on the response is the retry_after."""
    assert Fault(True, "throttled", 7.0) == classify(http_error(429, {"Retry-After": "7"}))


# --- gRPC transport --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrapped() -> Iterator[Any]:
    """A gRPC method on the in-process server, wrapped by google-api-core's wrap_errors."""
    pytest.importorskip("grpc")
    import grpc
    from google.api_core import grpc_helpers

    from tests._grpc import METHOD, start_server

    server, port = start_server()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield grpc_helpers.wrap_errors(channel.unary_unary(METHOD))
    finally:
        server.stop(None)


def test_retry_none_turns_the_default_retry_off(wrapped: Any) -> None:
    """A method with a default Retry (as generated clients have) calls once with retry=None."""
    from google.api_core import gapic_v1
    from google.api_core import retry as google_retry

    from tests._grpc import CALLS

    default = google_retry.Retry(
        predicate=google_retry.if_exception_type(exceptions.ServiceUnavailable),
        initial=0.01,
        maximum=0.01,
        timeout=0.2,
    )
    method = gapic_v1.method.wrap_method(wrapped, default_retry=default, default_timeout=5)
    with pytest.raises(exceptions.RetryError):
        method(b"tag google-default UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        method(b"tag google-off UNAVAILABLE", retry=None)
    assert CALLS["google-default"] > 1
    assert 1 == CALLS["google-off"]


def grpc_error(wrapped: Any, request: bytes) -> Any:
    with pytest.raises(exceptions.GoogleAPICallError) as info:
        wrapped(request, timeout=5)
    return info.value


@pytest.mark.parametrize(
    ("code", "name", "fault"),
    [
        ("UNAVAILABLE", "ServiceUnavailable", Fault(True, "connection")),
        ("INTERNAL", "InternalServerError", Fault(True, "server")),
        ("DEADLINE_EXCEEDED", "DeadlineExceeded", Fault(True, "timeout")),
        ("RESOURCE_EXHAUSTED", "ResourceExhausted", Fault(True, "throttled")),
        ("ABORTED", "Aborted", Fault(True, "contention")),
        ("UNKNOWN", "Unknown", PERMANENT),
        ("DATA_LOSS", "DataLoss", PERMANENT),
        ("INVALID_ARGUMENT", "InvalidArgument", PERMANENT),
        ("NOT_FOUND", "NotFound", PERMANENT),
        ("ALREADY_EXISTS", "AlreadyExists", PERMANENT),
        ("PERMISSION_DENIED", "PermissionDenied", PERMANENT),
        ("UNAUTHENTICATED", "Unauthenticated", PERMANENT),
        ("FAILED_PRECONDITION", "FailedPrecondition", PERMANENT),
        ("OUT_OF_RANGE", "OutOfRange", PERMANENT),
        ("UNIMPLEMENTED", "MethodNotImplemented", PERMANENT),
        ("CANCELLED", "Cancelled", PERMANENT),
    ],
)
def test_grpc_codes(wrapped: Any, code: str, name: str, fault: Fault) -> None:
    """Each gRPC code, through wrap_errors/from_grpc_error, gets the section 14 verdict."""
    exc = grpc_error(wrapped, code.encode())
    assert name == type(exc).__name__
    assert fault == classify(exc)


def test_grpc_pushback_is_honoured(wrapped: Any) -> None:
    """The wrapped RpcError's grpc-retry-pushback-ms trailer still counts."""
    assert Fault(True, "throttled", 0.5) == classify(grpc_error(wrapped, b"RESOURCE_EXHAUSTED 500"))
    assert Fault(False, "pushback") == classify(grpc_error(wrapped, b"UNAVAILABLE -1"))


def test_grpc_refused_is_unsent() -> None:
    """ServiceUnavailable wrapping a gRPC call that never connected is unsent."""
    pytest.importorskip("grpc")
    import grpc
    from google.api_core import grpc_helpers

    from tests._grpc import METHOD
    from tests._redis import free_port

    with grpc.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        exc = grpc_error(grpc_helpers.wrap_errors(channel.unary_unary(METHOD)), b"ok")
    assert "ServiceUnavailable" == type(exc).__name__
    assert Fault(True, "connection", unsent=True) == classify(exc)
    assert is_unsent(exc)


def test_google_retry_giving_up_is_permanent(wrapped: Any) -> None:
    """google-api-core's own Retry giving up (RetryError) is permanent: no second retry layer."""
    from google.api_core import retry as google_retry

    inner = google_retry.Retry(initial=0.01, maximum=0.02, timeout=0.2)
    with pytest.raises(exceptions.RetryError) as info:
        inner(wrapped)(b"UNAVAILABLE", timeout=5)
    assert "ServiceUnavailable" == type(info.value.cause).__name__
    assert PERMANENT == classify(info.value)
