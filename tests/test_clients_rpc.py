"""gRPC's real faults (sync and grpc.aio) from a real in-process server, judged by ``classify``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

grpc = pytest.importorskip("grpc")

from retryx import Fault, Policy, backoff, classify, retry  # noqa: E402
from retryx._classify import is_unsent  # noqa: E402
from tests._grpc import CALLS, METHOD, start_server  # noqa: E402
from tests._redis import free_port  # noqa: E402

# section 14: four codes are transient, every other one permanent
TRANSIENT = {
    "UNAVAILABLE": "connection",
    "DEADLINE_EXCEEDED": "timeout",
    "RESOURCE_EXHAUSTED": "throttled",
    "ABORTED": "contention",
}
CODES = [code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


def expected(code: str, retry_after: float | None = None) -> Fault:
    cause = TRANSIENT.get(code)
    return Fault(False, "permanent") if cause is None else Fault(True, cause, retry_after)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """``127.0.0.1:PORT`` of an in-process gRPC server (generic handler, raw bytes)."""
    server, port = start_server()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


@pytest.fixture(scope="module")
def call(target: str) -> Iterator[Any]:
    """The unary-unary method on a sync channel to ``target``."""
    with grpc.insecure_channel(target) as channel:
        yield channel.unary_unary(METHOD)


def rpc_error(call: Any, request: bytes, timeout: float = 5.0) -> Any:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=timeout)
    return info.value


def aio_error(target: str, request: bytes, timeout: float = 5.0) -> Any:
    async def main() -> Any:
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary(METHOD)(request, timeout=timeout)
            return info.value

    return asyncio.run(main())


# --- sync --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_each_status_code(call: Any, code: str) -> None:
    """A server aborting with each status code gets the section 14 verdict."""
    exc = rpc_error(call, code.encode())
    assert code == exc.code().name
    assert expected(code) == classify(exc)
    assert not is_unsent(exc)


@pytest.mark.parametrize("code", sorted(TRANSIENT))
def test_pushback_is_the_retry_after(call: Any, code: str) -> None:
    """A grpc-retry-pushback-ms trailer >= 0 is the retry_after hint, in seconds."""
    assert expected(code, 1.5) == classify(rpc_error(call, f"{code} 1500".encode()))
    assert expected(code, 0.0) == classify(rpc_error(call, f"{code} 0".encode()))


@pytest.mark.parametrize("code", sorted(TRANSIENT))
def test_negative_pushback_makes_the_fault_permanent(call: Any, code: str) -> None:
    """A negative grpc-retry-pushback-ms tells the client not to retry: permanent."""
    assert Fault(False, "pushback") == classify(rpc_error(call, f"{code} -1".encode()))


def test_unparseable_pushback_makes_the_fault_permanent(call: Any) -> None:
    """A pushback that is not an integer means "do not retry" (gRFC A6), as a negative one."""
    assert Fault(False, "pushback") == classify(rpc_error(call, b"ABORTED soon"))


def test_pushback_on_a_permanent_code_stays_permanent(call: Any) -> None:
    """A pushback trailer does not make a permanent code transient."""
    assert Fault(False, "permanent") == classify(rpc_error(call, b"INVALID_ARGUMENT 100"))


def test_client_deadline_is_a_timeout(call: Any) -> None:
    """The client's own deadline passing gives DEADLINE_EXCEEDED: timeout."""
    exc = rpc_error(call, b"sleep 1", timeout=0.1)
    assert "DEADLINE_EXCEEDED" == exc.code().name
    assert Fault(True, "timeout") == classify(exc)


def test_refused_port_is_unavailable_and_unsent() -> None:
    """No server listening: UNAVAILABLE before any connection, so unsent."""
    with grpc.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        exc = rpc_error(channel.unary_unary(METHOD), b"ok")
    assert "UNAVAILABLE" == exc.code().name
    assert Fault(True, "connection", unsent=True) == classify(exc)
    assert is_unsent(exc)


def test_unavailable_from_the_server_may_have_been_sent(call: Any) -> None:
    """UNAVAILABLE sent by a server is connection, but not unsent."""
    exc = rpc_error(call, b"UNAVAILABLE")
    assert Fault(True, "connection") == classify(exc)
    assert not is_unsent(exc)


def test_channel_ready_timeout_is_a_timeout() -> None:
    """channel_ready_future(...).result(timeout) on a refusing port: FutureTimeoutError."""
    channel = grpc.insecure_channel(f"127.0.0.1:{free_port()}")
    with channel, pytest.raises(grpc.FutureTimeoutError) as info:
        grpc.channel_ready_future(channel).result(timeout=0.1)
    assert Fault(True, "timeout") == classify(info.value)


def test_retry_recovers_when_the_server_comes_up() -> None:
    """@retry over a gRPC call succeeds once a server starts on the refusing port."""
    port = free_port()
    servers: list[Any] = []
    attempts: list[BaseException | None] = []

    @retry(Policy(attempts=40, backoff=backoff.fixed(0.05), jitter="none", deadline=10))
    def fetch() -> bytes:
        if len(attempts) == 2:
            servers.append(start_server(port)[0])  # the server comes up after two refusals
        attempts.append(None)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            return bytes(channel.unary_unary(METHOD)(b"ok", timeout=2))

    try:
        assert b"ok" == fetch()
        assert 3 == len(attempts)
    finally:
        for server in servers:
            server.stop(None)


RETRY_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "retryx.test.Faults"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@pytest.mark.parametrize(("enable_retries", "calls"), [(1, 3), (0, 1)])
def test_enable_retries_0_turns_service_config_retries_off(
    target: str, enable_retries: int, calls: int
) -> None:
    """A service-config retryPolicy retries inside grpc unless grpc.enable_retries is 0."""
    tag = f"service-config-{enable_retries}"
    options = [("grpc.service_config", RETRY_CONFIG), ("grpc.enable_retries", enable_retries)]
    with grpc.insecure_channel(target, options=options) as channel:
        exc = rpc_error(channel.unary_unary(METHOD), f"tag {tag} UNAVAILABLE".encode())
    assert "UNAVAILABLE" == exc.code().name
    assert calls == CALLS[tag]


# --- grpc.aio ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_aio_each_status_code(target: str, code: str) -> None:
    """grpc.aio: each status code gets the same verdict as the sync client."""
    exc = aio_error(target, code.encode())
    assert code == exc.code().name
    assert expected(code) == classify(exc)


def test_aio_pushback(target: str) -> None:
    """grpc.aio: the pushback trailer is the retry_after; negative is permanent."""
    assert expected("RESOURCE_EXHAUSTED", 0.25) == classify(
        aio_error(target, b"RESOURCE_EXHAUSTED 250")
    )
    assert Fault(False, "pushback") == classify(aio_error(target, b"UNAVAILABLE -5"))


def test_aio_refused_port_is_unavailable_and_unsent() -> None:
    """grpc.aio: no server listening is UNAVAILABLE, connection, unsent."""
    exc = aio_error(f"127.0.0.1:{free_port()}", b"ok")
    assert "UNAVAILABLE" == exc.code().name
    assert Fault(True, "connection", unsent=True) == classify(exc)


def test_aio_client_deadline_is_a_timeout(target: str) -> None:
    """grpc.aio: the client's deadline passing is a timeout."""
    assert Fault(True, "timeout") == classify(aio_error(target, b"sleep 1", timeout=0.1))
