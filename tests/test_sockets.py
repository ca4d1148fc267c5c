"""retryx.sockets over real loopback sockets and the testing toolkit's fault servers."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import retryx
from retryx import AllEndpointsFailed, ConfigError, Policy, sockets
from retryx.testing import servers

FAST = Policy(attempts=3, backoff=retryx.backoff.fixed(0.01), jitter="none", deadline=2.0)


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    """Send ``data`` and read the echo."""
    sock.sendall(data)
    return sock.recv(1024)


def test_connect_fails_over_from_refusing_to_echo() -> None:
    """A refused endpoint is skipped and the returned socket round-trips bytes."""
    with (
        servers.refusing() as bad,
        servers.echo() as good,
        sockets.connect([bad, good], policy=FAST, timeout=1.0) as sock,
    ):
        assert good == sock.getpeername()
        assert b"ping" == roundtrip(sock)
        assert 1.0 == sock.gettimeout()


def test_connect_accepts_host_port_strings() -> None:
    """``"host:port"`` strings work like tuples."""
    with servers.echo() as (host, port), sockets.connect(f"{host}:{port}", policy=FAST) as sock:
        assert b"x" == roundtrip(sock, b"x")


def test_slow_server_trips_the_timeout_and_the_next_endpoint_answers() -> None:
    """With a probe, a peer that answers too late counts as failed; the next one answers."""
    with servers.slow(1.0) as slow, servers.echo() as good:
        started = time.monotonic()
        with sockets.connect([slow, good], policy=FAST, timeout=0.2, probe=b"hi") as sock:
            assert good == sock.getpeername()
        assert time.monotonic() - started < 1.0


def test_resetting_server_is_retried_then_fails_over() -> None:
    """A reset is transient: the sweep moves on to the echo server."""
    with (
        servers.resetting() as reset,
        servers.echo() as good,
        sockets.connect([reset, good], policy=FAST, probe=b"hi") as sock,
    ):
        assert good == sock.getpeername()


def test_all_refusing_raises_all_endpoints_failed_within_the_deadline() -> None:
    """Every endpoint refusing ends in AllEndpointsFailed with each endpoint's error, in time."""
    policy = Policy(attempts=50, backoff=retryx.backoff.fixed(0.05), jitter="none", deadline=0.5)
    with servers.refusing() as a, servers.refusing() as b:
        started = time.monotonic()
        with pytest.raises(AllEndpointsFailed) as info:
            sockets.connect([a, b], policy=policy)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0  # generous bound around the 0.5 s deadline
    assert {a, b} == set(info.value.errors)
    assert any("retryx: gave up" in note for note in info.value.__notes__)


def test_ipv6_endpoint_string_is_parsed() -> None:
    """``"[::1]:port"`` parses to ``("::1", port)``."""
    assert ("::1", 8080) == sockets.parse_endpoint("[::1]:8080")


@pytest.mark.parametrize(
    "bad", ["nohost", "host:", "host:99999", "[::1]8080", ":80", "h:abc", 42, ("h", "80")]
)
def test_bad_endpoints_are_config_errors_naming_the_string(bad: object) -> None:
    """A bad endpoint raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="bad endpoint"):
        sockets.connect([bad], policy=FAST)  # type: ignore[list-item]


def test_bad_timeout_is_a_config_error() -> None:
    """A non-positive timeout is rejected before connecting."""
    with pytest.raises(ConfigError, match="timeout"):
        sockets.connect("127.0.0.1:9", timeout=0)


def test_attempt_timeout_is_capped_by_the_deadline() -> None:
    """Inside a call the connect timeout is min(timeout, time left before the deadline)."""
    seen: list[float | None] = []

    @retryx.retry(Policy(deadline=3.0))
    def probe() -> None:
        seen.append(sockets._attempt_timeout(10.0))

    probe()
    assert seen[0] is not None
    assert 2.5 < seen[0] <= 3.0


def test_open_connection_fails_over_and_round_trips() -> None:
    """The asyncio variant fails over from a refusing endpoint to the echo server."""

    async def main(bad: tuple[str, int], good: tuple[str, int]) -> bytes:
        reader, writer = await sockets.open_connection([bad, good], policy=FAST)
        try:
            writer.write(b"hello")
            await writer.drain()
            return await asyncio.wait_for(reader.read(100), 2.0)
        finally:
            writer.close()
            await writer.wait_closed()

    with servers.refusing() as bad, servers.echo() as good:
        assert b"hello" == asyncio.run(main(bad, good))


def test_open_connection_slow_server_then_echo() -> None:
    """Async: a slow peer trips the per-attempt timeout and the next endpoint answers."""

    async def main(slow: tuple[str, int], good: tuple[str, int]) -> tuple[str, int]:
        _, writer = await sockets.open_connection(
            [slow, good], policy=FAST, timeout=0.2, probe=b"x"
        )
        peer: tuple[str, int] = writer.get_extra_info("peername")
        writer.close()
        await writer.wait_closed()
        return peer

    with servers.slow(1.0) as slow, servers.echo() as good:
        assert good == asyncio.run(main(slow, good))


def test_open_connection_all_refusing_raises() -> None:
    """Async: all endpoints refusing raise AllEndpointsFailed within the deadline."""
    policy = Policy(attempts=3, backoff="none", deadline=1.0)

    async def main(a: tuple[str, int], b: tuple[str, int]) -> None:
        await sockets.open_connection([a, b], policy=policy)

    with servers.refusing() as a, servers.refusing() as b, pytest.raises(AllEndpointsFailed):
        asyncio.run(main(a, b))
