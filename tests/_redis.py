"""A throwaway ``redis-server`` on a free loopback port, for the Redis tests.

No persistence, no fixed port; the process is killed at the end. When the binary
is missing the tests skip, unless ``RETRYX_REQUIRE_REDIS=1`` (CI) makes it a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REQUIRED = os.environ.get("RETRYX_REQUIRE_REDIS") == "1"


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child process that can be stopped and restarted on its port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        # Bounded: a port grabbed by someone else between free_port() and the bind
        # shows up as an early exit, and the caller retries with another port.
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def ping(self) -> bool:
        """True when the server answers PING (a raw RESP exchange, no client needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server (SIGKILL: an abrupt outage, nothing flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def start_server(workdir: Path) -> RedisServer:
    """A started server, or a skip (a failure when Redis is required)."""
    if REDIS_SERVER is None:
        if REQUIRED:
            pytest.fail("redis-server is not installed but RETRYX_REQUIRE_REDIS=1")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    for _ in range(3):  # another process may take the free port before redis binds it
        server = RedisServer(workdir)
        try:
            server.start()
        except RuntimeError:
            continue
        return server
    pytest.fail("could not start redis-server on a free loopback port")


def serve(workdir: Path) -> Iterator[RedisServer]:
    """Generator body for fixtures: a server for the fixture's scope, killed after."""
    server = start_server(workdir)
    try:
        yield server
    finally:
        server.stop()
