"""botocore's and aiobotocore's real faults, from loopback endpoints, judged by ``classify``.

A real DynamoDB client (JSON protocol) talks to ``retryx.testing.servers.http``
answering AWS-style errors (``x-amzn-ErrorType`` and the JSON ``__type``), to a
refusing port, and to ports that never answer. botocore's own retries are off
(``total_max_attempts=1``), as docs/clients.md recommends.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("botocore")

import botocore.session
from botocore.config import Config

from retryx import Fault, Policy, backoff, classify, retry
from retryx._classify import is_unsent
from retryx.testing import servers
from tests import _sockets

THROTTLING = [
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
]
PERMANENT = Fault(False, "permanent")
ONE_ATTEMPT = {"total_max_attempts": 1}


def aws_error(status: int, code: str, headers: dict[str, str] | None = None) -> Any:
    """One scripted AWS JSON-protocol error response."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code})
    head = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return (status, {**head, **(headers or {})}, body)


@functools.cache
def session() -> Any:
    """One botocore session: loading the service model once keeps the tests fast."""
    return botocore.session.get_session()


def dynamodb(url: str, **config: Any) -> Any:
    return session().create_client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries=ONE_ATTEMPT, **config),
    )


def fault_of(url: str, **config: Any) -> BaseException:
    """The exception a real ``list_tables`` call against ``url`` raises."""
    client = dynamodb(url, **config)
    try:
        with pytest.raises(Exception) as info:
            client.list_tables()
    finally:
        client.close()
    return info.value


def answered(status: int, code: str, headers: dict[str, str] | None = None) -> BaseException:
    with servers.http([aws_error(status, code, headers)]) as srv:
        return fault_of(srv.url)


@pytest.fixture
def silent() -> Iterator[str]:
    with _sockets.silent() as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def full_backlog() -> Iterator[str]:
    with _sockets.full_backlog() as port:
        yield f"http://127.0.0.1:{port}"


# --- ClientError by code and status -----------------------------------------------------------


@pytest.mark.parametrize("code", THROTTLING)
def test_throttling_codes_are_throttled(code: str) -> None:
    """Each of botocore's throttling codes is transient, cause throttled."""
    exc = answered(400, code)
    assert "ClientError" in [k.__name__ for k in type(exc).__mro__]
    assert Fault(True, "throttled") == classify(exc)
    assert not is_unsent(exc)


def test_retry_after_header_is_the_hint() -> None:
    """A Retry-After header on a throttling answer is the retry_after."""
    assert Fault(True, "throttled", 2.0) == classify(
        answered(400, "ThrottlingException", {"Retry-After": "2"})
    )


@pytest.mark.parametrize("code", ["RequestTimeout", "RequestTimeoutException"])
def test_request_timeout_codes_are_timeouts(code: str) -> None:
    """RequestTimeout and RequestTimeoutException are transient, cause timeout."""
    assert Fault(True, "timeout") == classify(answered(400, code))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_statuses_are_server_faults(status: int) -> None:
    """An unlisted code with status 500, 502, 503 or 504 is transient, cause server."""
    assert Fault(True, "server") == classify(answered(status, "InternalServerError"))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (400, "ResourceNotFoundException"),
        (400, "ConditionalCheckFailedException"),
        (403, "AccessDeniedException"),
        (400, "UnrecognizedClientException"),
        (501, "NotImplemented"),
        (429, "SomethingElse"),
    ],
)
def test_other_codes_are_permanent(status: int, code: str) -> None:
    """Every other code is permanent."""
    assert PERMANENT == classify(answered(status, code))


# --- transport faults -------------------------------------------------------------------------


def test_refused_endpoint_is_unsent() -> None:
    """A refusing port gives EndpointConnectionError: connection, unsent."""
    with servers.refusing() as (host, port):
        exc = fault_of(f"http://{host}:{port}")
    assert "EndpointConnectionError" == type(exc).__name__
    assert Fault(True, "connection", unsent=True) == classify(exc)
    assert is_unsent(exc)


def test_closed_connection_is_a_connection_fault() -> None:
    """A connection closed before the answer is ConnectionClosedError: connection, maybe sent."""
    with servers.accept_then_close() as (host, port):
        exc = fault_of(f"http://{host}:{port}")
    assert "ConnectionClosedError" == type(exc).__name__
    assert Fault(True, "connection") == classify(exc)
    assert not is_unsent(exc)


def test_reset_connection_is_a_connection_fault() -> None:
    """A reset is a connection fault; unsent only when it came before the connect completed.

    The reset races the client: botocore sees it in connect (EndpointConnectionError,
    nothing sent) or at the first read (ConnectionClosedError).
    """
    with servers.resetting() as (host, port):
        exc = fault_of(f"http://{host}:{port}")
    unsent = type(exc).__name__ == "EndpointConnectionError"
    assert type(exc).__name__ in {"EndpointConnectionError", "ConnectionClosedError"}
    assert Fault(True, "connection", unsent=unsent) == classify(exc)


def test_connect_timeout_is_unsent(full_backlog: str) -> None:
    """A connect that times out is ConnectTimeoutError: timeout, unsent."""
    exc = fault_of(full_backlog, connect_timeout=0.2)
    assert "ConnectTimeoutError" == type(exc).__name__
    assert Fault(True, "timeout", unsent=True) == classify(exc)


def test_read_timeout_is_a_timeout(silent: str) -> None:
    """A server that never answers gives ReadTimeoutError: timeout, maybe sent."""
    exc = fault_of(silent, read_timeout=0.2)
    assert "ReadTimeoutError" == type(exc).__name__
    assert Fault(True, "timeout") == classify(exc)
    assert not is_unsent(exc)


def test_retry_rides_out_throttling() -> None:
    """@retry over a botocore call retries two throttled answers and returns the third."""
    script = [aws_error(400, "ThrottlingException"), aws_error(503, "ServiceUnavailable")]
    ok = (200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps({"TableNames": ["t"]}))
    with servers.http([*script, ok]) as srv:
        client = dynamodb(srv.url)

        @retry(Policy(attempts=3, backoff=backoff.fixed(0.01), jitter="none"))
        def tables() -> list[str]:
            return list(client.list_tables()["TableNames"])

        try:
            assert ["t"] == tables()
        finally:
            client.close()
        assert 3 == len(srv.requests)


@pytest.mark.parametrize(
    ("retries", "sent"),
    [
        ({"total_max_attempts": 1}, 1),
        ({"max_attempts": 0, "mode": "standard"}, 1),
        ({"max_attempts": 0, "mode": "adaptive"}, 1),
        ({"max_attempts": 0, "mode": "legacy"}, 1),
        ({"max_attempts": 1, "mode": "standard"}, 2),  # max_attempts counts retries only
    ],
)
def test_documented_settings_turn_botocore_retries_off(retries: dict[str, Any], sent: int) -> None:
    """The settings docs/clients.md gives make botocore send one request (no inner retry)."""
    with servers.http([aws_error(400, "ThrottlingException")]) as srv:
        client = session().create_client(
            "dynamodb",
            endpoint_url=srv.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries=retries),
        )
        try:
            with pytest.raises(Exception, match="ThrottlingException"):
                client.list_tables()
        finally:
            client.close()
        assert sent == len(srv.requests)


# --- aiobotocore --------------------------------------------------------------------------------


@functools.cache
def aio_session() -> Any:
    """One aiobotocore session (skips without aiobotocore)."""
    return pytest.importorskip("aiobotocore.session").get_session()


def async_fault_of(url: str, **config: Any) -> BaseException:
    """The exception a real aiobotocore ``list_tables`` call against ``url`` raises."""

    async def main() -> BaseException:
        async with aio_session().create_client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries=ONE_ATTEMPT, **config),
        ) as client:
            with pytest.raises(Exception) as info:
                await client.list_tables()
            return info.value

    return asyncio.run(main())


def test_aio_throttling_and_server_answers() -> None:
    """aiobotocore: a throttling code is throttled, a 503 is server, a 400 permanent."""
    script = [
        aws_error(400, "ProvisionedThroughputExceededException"),
        aws_error(503, "ServiceUnavailable"),
        aws_error(400, "ValidationException"),
    ]
    with servers.http(script) as srv:
        faults = [classify(async_fault_of(srv.url)) for _ in script]
    assert [Fault(True, "throttled"), Fault(True, "server"), PERMANENT] == faults


def test_aio_refused_endpoint_is_unsent() -> None:
    """aiobotocore: a refusing port is EndpointConnectionError, unsent."""
    with servers.refusing() as (host, port):
        exc = async_fault_of(f"http://{host}:{port}")
    assert "EndpointConnectionError" == type(exc).__name__
    assert Fault(True, "connection", unsent=True) == classify(exc)


def test_aio_connect_timeout_is_unsent(full_backlog: str) -> None:
    """aiobotocore: a connect that times out is ConnectTimeoutError, unsent."""
    exc = async_fault_of(full_backlog, connect_timeout=0.2)
    assert "ConnectTimeoutError" == type(exc).__name__
    assert Fault(True, "timeout", unsent=True) == classify(exc)


def test_aio_read_timeout_is_a_timeout(silent: str) -> None:
    """aiobotocore: a server that never answers is a read timeout."""
    exc = async_fault_of(silent, read_timeout=0.2)
    assert "ReadTimeoutError" in [k.__name__ for k in type(exc).__mro__]
    assert Fault(True, "timeout") == classify(exc)


def test_aio_closed_connection_is_a_connection_fault() -> None:
    """aiobotocore: a connection closed before the answer is a connection fault."""
    with servers.accept_then_close() as (host, port):
        exc = async_fault_of(f"http://{host}:{port}")
    assert Fault(True, "connection") == classify(exc), type(exc).__mro__
