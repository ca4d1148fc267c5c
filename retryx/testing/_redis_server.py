"""A throwaway ``redis-server`` on a free loopback port (tests and benchmarks).

No persistence, no fixed port; stopping kills the process (an abrupt outage,
nothing flushed), and ``start()`` may bring it back on the same port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["REDIS_SERVER", "RedisServer", "free_port", "redis_server"]

REDIS_SERVER = shutil.which("redis-server")
"""The ``redis-server`` binary, or ``None`` when it is not installed."""


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child process that can be stopped and restarted on its port."""

    def __init__(self, workdir: Path, port: int | None = None, args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.args = tuple(args)  # more redis-server options, e.g. ("--cluster-enabled", "yes")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers PING.

        Raises:
            RuntimeError: when it exits early (its port was taken) or stays silent.
        """
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        argv += ["--loglevel", "warning", *self.args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def start_server(workdir: Path, tries: int = 3, args: Sequence[str] = ()) -> RedisServer:
    """A started server on a free port, trying another port when one was taken."""
    error: RuntimeError | None = None
    for _ in range(tries):
        server = RedisServer(workdir, args=args)
        try:
            server.start()
        except RuntimeError as exc:
            error = exc
            continue
        return server
    raise RuntimeError(f"could not start redis-server on a free loopback port: {error}")


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """Yield the URL of a fresh server for the block, or ``None`` without redis-server."""
    if REDIS_SERVER is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="retryx-redis-") as workdir:
        server = start_server(Path(workdir))
        try:
            yield server.url
        finally:
            server.stop()
