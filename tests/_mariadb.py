"""A throwaway MariaDB server for the MySQL driver tests.

``mariadb-install-db`` in a temporary directory, ``mariadbd`` on a free loopback
port without grant tables (any user connects), killed at the end. Under root the
server runs as the ``mysql`` user (Debian's package creates it) or ``nobody``.

When the binaries are missing the tests skip, unless ``RETRYX_REQUIRE_MARIADB=1``
(CI) makes it a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retryx.testing._redis_server import free_port

__all__ = ["REQUIRED", "MariaDBServer", "serve"]

REQUIRED = os.environ.get("RETRYX_REQUIRE_MARIADB") == "1"

_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin"  # mariadbd lives in sbin
_SERVER = shutil.which("mariadbd", path=_PATH) or shutil.which("mysqld", path=_PATH)
_INSTALL = shutil.which("mariadb-install-db", path=_PATH) or shutil.which("mysql_install_db")
# small InnoDB files: a fresh data directory in a few MB, not 100
_INNODB = ["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M"]


def _user() -> str | None:
    """The user the server runs as under root (it drops privileges itself)."""
    if os.geteuid() != 0:
        return None
    for name in ("mysql", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'mysql' nor a 'nobody' user exists")


class MariaDBServer:
    """A running server: user ``root`` (no grants checked), InnoDB, lock waits of 1 s."""

    def __init__(self, server: str, install: str) -> None:
        self.server = server
        self.install = install
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="retryx-mariadb-"))
        self.user = _user()
        self.proc: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        """Create the data directory and start, waiting (bounded) until it is ready.

        Raises:
            RuntimeError: when the install fails or the server is not ready in 30 s.
        """
        data = self.workdir / "data"
        as_user = [] if self.user is None else [f"--user={self.user}"]
        install = [self.install, "--no-defaults", f"--datadir={data}", *as_user]
        install += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        install += ["--skip-name-resolve", *_INNODB]
        done = subprocess.run(install, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stderr.decode(errors='replace')}")
        log = self.workdir / "error.log"
        argv = [self.server, "--no-defaults", f"--datadir={data}", *as_user, *_INNODB]
        argv += [f"--port={self.port}", f"--bind-address={self.host}"]
        argv += [f"--socket={self.workdir / 'sock'}", f"--pid-file={self.workdir / 'pid'}"]
        argv += ["--skip-grant-tables", "--skip-log-bin", "--innodb-lock-wait-timeout=1"]
        argv += [f"--log-error={log}"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {log.read_text(errors='replace')}")
            if log.exists() and b"ready for connections" in log.read_bytes():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("mariadbd was not ready within 30 s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: nothing to keep), then remove the files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def serve() -> Iterator[MariaDBServer]:
    """Generator body for fixtures: a server for the fixture's scope, stopped after."""
    if _SERVER is None or _INSTALL is None:
        reason = "MariaDB is not installed (apt-get install mariadb-server)"
        if REQUIRED:
            pytest.fail(f"RETRYX_REQUIRE_MARIADB=1 but {reason}")
        pytest.skip(f"{reason} (set RETRYX_REQUIRE_MARIADB=1 to fail instead)")
    server = MariaDBServer(_SERVER, _INSTALL)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()
