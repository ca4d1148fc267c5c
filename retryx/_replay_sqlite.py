"""The SQLite replay backend: one file, WAL mode, safe for several processes.

Schema (table ``retryx_replay``, ``PRAGMA user_version = 1``): one row per entry,
``seq`` orders them (AUTOINCREMENT, never reused); ``dead`` marks dead letters;
``claim_token``/``claim_until`` (epoch seconds) are a worker's claim, free when
``claim_until`` has passed. Writes that change the queue's contents run in
``BEGIN IMMEDIATE`` transactions, so two workers never claim one row.

Durability: an enqueue commits with ``synchronous=FULL`` (the call is on disk
when the caller gets ``None``); claims and replay outcomes use ``NORMAL``, since
losing one in a power cut only means a call runs again (at-least-once).

A file deleted (or replaced) under an open connection would silently swallow every
write: each use checks that the path still names the open file (device and inode)
and reopens the path when it does not, and an enqueue checks again after its commit,
so a deferral is only reported once it is in the file the path names.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any

from ._replay_model import Claimed, ReplayEntry, make_entry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retryx_replay (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    error TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    claim_token TEXT,
    claim_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS retryx_replay_state ON retryx_replay (dead, seq);
PRAGMA user_version = 1;
"""

_COLUMNS = "call_id, target, args, kwargs, attempts, last_error, created_at"
_BUSY_TIMEOUT = 30.0  # seconds a statement waits for another process's lock

logger = logging.getLogger("retryx")


def _identity(path: str) -> tuple[int, int] | None:
    """The (device, inode) that ``path`` names now, or None when it names nothing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


class SQLiteBackend:
    """One connection per thread (and per process, after a fork)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[tuple[int, sqlite3.Connection]] = []

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            if _identity(self.path) == local.identity:
                return conn
            self._lost(conn)
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        except BaseException:
            conn.close()
            raise
        local.conn, local.pid, local.sync = conn, os.getpid(), "FULL"
        local.identity = _identity(self.path)
        with self._lock:
            self._all.append((os.getpid(), conn))
        return conn

    def _lost(self, conn: sqlite3.Connection) -> None:
        """The path no longer names this thread's open file: drop it, loudly."""
        logger.error(
            "replay queue file %s was deleted or replaced while open; reopening the path "
            "(entries only in the old file are lost unless it is restored)",
            self.path,
        )
        self._local.conn = None
        with self._lock:
            self._all = [pair for pair in self._all if pair[1] is not conn]
        conn.close()

    def _sync(self, conn: sqlite3.Connection, mode: str) -> None:
        if self._local.sync != mode:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._local.sync = mode

    def _write(self, mode: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Run one statement in its own ``BEGIN IMMEDIATE`` transaction."""
        conn = self._conn()
        self._sync(conn, mode)
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(sql, params).fetchall()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return rows

    # --- the Backend protocol ---------------------------------------------------------

    def enqueue(
        self,
        call_id: str,
        target: str,
        args: str,
        kwargs: str,
        error: str,
        created_at: float,
        timeout: float | None = None,
    ) -> None:
        for _ in range(2):  # once more when the file was replaced during the write
            conn = self._conn()
            self._sync(conn, "FULL")
            if timeout is not None:  # waiting for another process's lock: the time left
                conn.execute(f"PRAGMA busy_timeout = {max(1, round(timeout * 1000))}")
            try:
                # One autocommit INSERT: one transaction. An id already stored stays as is.
                conn.execute(
                    "INSERT INTO retryx_replay (call_id, target, args, kwargs, error,"
                    " created_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (call_id) DO NOTHING",
                    (call_id, target, args, kwargs, error, created_at, error),
                )
            finally:
                if timeout is not None:
                    conn.execute(f"PRAGMA busy_timeout = {round(_BUSY_TIMEOUT * 1000)}")
            if _identity(self.path) == self._local.identity:
                return  # committed into the file the path names: durable
        raise OSError(f"the replay queue file {self.path} keeps being deleted or replaced")

    def last_seq(self) -> int:
        row = self._conn().execute("SELECT max(seq) FROM retryx_replay").fetchone()
        return int(row[0] or 0)

    def claim(
        self, after: int, upto: int, token: str, timeout: float
    ) -> tuple[Claimed | None, int]:
        now = time.time()
        rows = self._write(
            "NORMAL",
            "UPDATE retryx_replay SET claim_token = ?, claim_until = ? WHERE seq = ("
            " SELECT seq FROM retryx_replay WHERE dead = 0 AND seq > ? AND seq <= ?"
            " AND claim_until <= ? ORDER BY seq LIMIT 1"
            f") RETURNING seq, {_COLUMNS}",
            (token, now + timeout, after, upto, now),
        )
        if not rows:
            return None, upto
        seq, *columns = rows[0]
        return Claimed(seq, make_entry(*columns)), seq

    def renew(self, call_id: str, token: str, timeout: float) -> None:
        self._write(
            "NORMAL",
            "UPDATE retryx_replay SET claim_until = ? WHERE call_id = ? AND claim_token = ?",
            (time.time() + timeout, call_id, token),
        )

    def complete(self, call_id: str) -> None:
        # Deleted even when the claim was lost meanwhile: the call did succeed.
        self._write("NORMAL", "DELETE FROM retryx_replay WHERE call_id = ?", (call_id,))

    def fail(self, call_id: str, token: str, error: str, max_replays: int) -> bool | None:
        rows = self._write(
            "NORMAL",
            "UPDATE retryx_replay SET attempts = attempts + 1, last_error = ?,"
            " dead = (attempts + 1 >= ?), claim_token = NULL, claim_until = 0"
            " WHERE call_id = ? AND claim_token = ? RETURNING dead",
            (error, max_replays, call_id, token),
        )
        return bool(rows[0][0]) if rows else None

    def release(self, call_id: str, token: str) -> None:
        self._write(
            "NORMAL",
            "UPDATE retryx_replay SET claim_token = NULL, claim_until = 0"
            " WHERE call_id = ? AND claim_token = ?",
            (call_id, token),
        )

    def entries(self, dead: bool) -> list[ReplayEntry]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM retryx_replay WHERE dead = ? ORDER BY seq", (int(dead),)
        )
        return [make_entry(*row) for row in rows]

    def count(self) -> int:
        row = self._conn().execute("SELECT count(*) FROM retryx_replay WHERE dead = 0").fetchone()
        return int(row[0])

    def purge(self, call_id: str) -> bool:
        rows = self._write(
            "NORMAL", "DELETE FROM retryx_replay WHERE call_id = ? RETURNING seq", (call_id,)
        )
        return bool(rows)

    def release_thread(self) -> None:
        """Close this thread's connection (a helper thread that is ending)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._all = [pair for pair in self._all if pair[1] is not conn]
        if self._local.pid == os.getpid():
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        self._local = threading.local()
        for pid, conn in conns:
            if pid == os.getpid():  # a connection inherited through fork is not ours to close
                conn.close()
