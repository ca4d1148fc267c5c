"""A throwaway PostgreSQL cluster for the database tests.

``initdb`` in a temporary directory, ``postgres`` on a free loopback port (and a
Unix socket in the same directory), killed at the end. PostgreSQL refuses to run
as root, so under root the server runs as the ``postgres`` user (Debian's package
creates it) or, without one, as ``nobody``, in a directory that user owns.

When the binaries are missing the tests skip, unless ``RETRYX_REQUIRE_POSTGRES=1``
(CI) makes it a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retryx.testing._redis_server import free_port

__all__ = ["REQUIRED", "PostgresServer", "serve"]

REQUIRED = os.environ.get("RETRYX_REQUIRE_POSTGRES") == "1"


def _bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: on PATH, else Debian's."""
    found = shutil.which("initdb")
    if found is not None and shutil.which("postgres") is not None:
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def _run_as() -> dict[str, Any]:
    """``Popen`` arguments that drop root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """A running cluster: superuser ``postgres``, trust authentication, database ``postgres``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.workdir = Path(tempfile.mkdtemp(prefix="retryx-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._as = _run_as()
        if self._as:
            os.chown(self.workdir, self._as["user"], self._as["group"])

    def dsn(self, **extra: object) -> str:
        """A libpq connection string for this server (``extra`` overrides the keys)."""
        keys: dict[str, object] = {"host": self.host, "port": self.port}
        keys |= {"user": "postgres", "dbname": "postgres"} | extra
        return " ".join(f"{key}={value}" for key, value in keys.items())

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.workdir / "data"

    def start(self) -> None:
        """``initdb`` and start, waiting (bounded) until the server accepts sessions.

        Raises:
            RuntimeError: when ``initdb`` fails or the server does not come up in 20 s.
        """
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres"]
        initdb += ["-A", "trust", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"]
        self._run(initdb)
        self._launch("ready to accept connections")

    def start_standby_of(self, primary: PostgresServer) -> None:
        """A copy of ``primary`` that stays in recovery with hot standby off, so every
        session it is asked for is refused with SQLSTATE 57P03 (cannot connect now).

        Raises:
            RuntimeError: when the copy fails or the server does not listen in 20 s.
        """
        backup = [str(self.bindir / "pg_basebackup"), "-D", str(self.data), "-h", primary.host]
        backup += ["-p", str(primary.port), "-U", "postgres", "-c", "fast", "--no-sync"]
        self._run(backup)
        signal_file = self.data / "standby.signal"
        signal_file.touch()
        if self._as:
            os.chown(signal_file, self._as["user"], self._as["group"])
        self._launch("listening on IPv4", "hot_standby=off")

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False, **self._as)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")

    def _launch(self, ready: str, *settings: str) -> None:
        log = self.workdir / "server.log"
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-h", self.host, "-k", str(self.workdir)]
        for setting in (
            "max_connections=40",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "deadlock_timeout=50ms",  # a deadlock is found in 50 ms, not 1 s
            "lc_messages=C",  # libpq's messages are read in English
            "shared_buffers=16MB",
            *settings,
        ):
            argv += ["-c", setting]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, **self._as)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {log.read_text(errors='replace')}")
            if ready.encode() in log.read_bytes():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not log {ready!r} within 20 s")

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT ends the backends too), then remove the files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def serve(standby_of: PostgresServer | None = None) -> Iterator[PostgresServer]:
    """Generator body for fixtures: a cluster for the fixture's scope, stopped after
    (with ``standby_of``, a standby of that cluster that refuses every session).
    """
    bindir = _bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql)"
        if REQUIRED:
            pytest.fail(f"RETRYX_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"{reason} (set RETRYX_REQUIRE_POSTGRES=1 to fail instead)")
    server = PostgresServer(bindir)
    try:
        if standby_of is None:
            server.start()
        else:
            server.start_standby_of(standby_of)
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
