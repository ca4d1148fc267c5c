"""Deferred replay: store calls that keep failing, and replay them later.

``@fallback(defer_to=queue)`` stores a call that finally failed with a transient
fault (its ``module:qualname``, JSON arguments, ``call_id`` and error) and returns
``None``; ``queue.replay()`` later re-runs the stored calls through their own
decorated pipelines, with the original ``call_id`` in ``retryx.current()``.

Backends: ``"sqlite:///rel.db"`` / ``"sqlite:////abs/path.db"`` (stdlib ``sqlite3``,
one machine, several processes) and ``"redis://host:port/db"`` (extra
``retryx[redis]``, a fleet). See ``docs/replay.md``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ._context import current
from ._errors import ConfigError, to_float
from ._replay_calls import REPLAYING, called_through_classmethod, invoke, target_name, to_json
from ._replay_model import Backend, ReplayEntry, check_limit, describe_error, redact

if TYPE_CHECKING:  # typed for checkers; loaded on first use at run time (__getattr__)
    from ._cli_replay import cli_list, cli_run

__all__ = ["ReplayEntry", "ReplayQueue", "ReplayReport", "cli_list", "cli_run"]

logger = logging.getLogger("retryx")

# A deferral waits at most the time left before the policy's deadline (the caller was
# promised it), but never less than this: a give-up at the deadline still gets a short
# write. Without a deadline, the backends' own limit (30 s) applies.
_DEFER_MIN = 0.1


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What one ``replay()`` run did; an entry moved to the dead letters counts in
    both ``failed`` and ``dead``.
    """

    replayed: int
    succeeded: int
    failed: int
    dead: int


# --- the queue ----------------------------------------------------------------------------


class ReplayQueue:
    """A durable queue of deferred calls, for ``@fallback(defer_to=queue)``.

    Args:
        url: ``"sqlite:///rel.db"`` (relative to the working directory),
            ``"sqlite:////abs/path.db"``, or ``"redis://host:port/db"``
            (``rediss://`` too; ``?queue=NAME`` keeps several queues apart on one
            Redis, default ``default``).
        max_replays: failed replays after which an entry moves to the dead letters.
        claim_timeout: seconds a worker's claim on an entry lasts without renewal;
            a live worker renews it while the call runs, so only a crashed
            worker's claims expire and come back.

    Raises:
        ConfigError: for a bad URL or setting, or a missing ``redis`` package.
    """

    __slots__ = ("_backend", "_lock", "claim_timeout", "max_replays", "url")

    def __init__(self, url: str, *, max_replays: int = 10, claim_timeout: float = 60.0) -> None:
        if not isinstance(url, str):
            raise ConfigError(f"ReplayQueue.url must be a string, got {url!r}")
        if isinstance(max_replays, bool) or not isinstance(max_replays, int) or max_replays < 1:
            raise ConfigError(f"ReplayQueue.max_replays must be an int >= 1, got {max_replays!r}")
        if (
            isinstance(claim_timeout, bool)
            or not isinstance(claim_timeout, int | float)
            or not math.isfinite(to_float("ReplayQueue.claim_timeout", claim_timeout))
            or claim_timeout <= 0
        ):
            raise ConfigError(
                f"ReplayQueue.claim_timeout must be a finite number of seconds > 0, "
                f"got {claim_timeout!r}"
            )
        self.url = url
        self.max_replays = max_replays
        self.claim_timeout = float(claim_timeout)
        self._lock = threading.Lock()
        self._backend: Backend = _open(url)

    def __repr__(self) -> str:
        return (
            f"ReplayQueue({redact(self.url)!r}, max_replays={self.max_replays}, "
            f"claim_timeout={self.claim_timeout})"
        )

    def __enter__(self) -> ReplayQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this queue opened (it reopens them on next use)."""
        self._backend.close()

    # --- storing (called by the pipeline) ------------------------------------------------

    def defer(
        self,
        pipeline: Any,
        call_id: str,
        exc: Exception,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """Store a call that finally failed with transient ``exc`` (the pipeline calls this).

        Raises:
            ConfigError: chained from ``exc``, when the callable cannot be imported
                by name or an argument is not JSON; nothing is stored.
            Exception: ``exc`` itself while that very call is being replayed, or
                when the store cannot be written (with a note saying why).
        """
        if REPLAYING.get() == call_id:
            raise exc  # a replay's failure counts against its stored entry
        if instance is None and args and called_through_classmethod(pipeline, args[0]):
            # ``@classmethod`` over a pipeline binds like a function: the class
            # arrives as the first argument.
            instance, args = args[0], args[1:]
        try:
            target = target_name(pipeline, instance)
            where = f"cannot defer {target}"
            args_json = to_json(list(args), "args", where)
            kwargs_json = to_json(kwargs, "kwargs", where)
        except ConfigError as error:
            raise error from exc
        failure: BaseException | None = None
        context = current()
        left = None if context is None else context.remaining
        bound = None if left is None else max(left, _DEFER_MIN)
        start = time.monotonic()
        try:
            self._backend.enqueue(
                call_id, target, args_json, kwargs_json, describe_error(exc), time.time(), bound
            )
        except Exception as error:
            failure = error
        if failure is not None:
            # The caller sees its own fault, as without a queue; raised outside the
            # handler so the fault's __context__ is left alone.
            note = self._defer_failure(failure, bound, time.monotonic() - start)
            logger.error(
                "could not defer %s (call_id %s): %s",
                target,
                call_id,
                note,
                extra={"retryx": {"name": pipeline.name}},
            )
            exc.add_note(f"retryx: could not defer the call: {note}")
            raise exc
        logger.info(
            "deferred %s (call_id %s) after %s",
            target,
            call_id,
            type(exc).__name__,
            extra={"retryx": {"name": pipeline.name}},
        )

    def _defer_failure(self, failure: BaseException, bound: float | None, took: float) -> str:
        """What failed and where, for the note and the log line of a failed deferral."""
        text = (
            f"storing it in the replay queue at {redact(self.url)} failed after {took:.2f}s "
            f"({describe_error(failure)})"
        )
        if bound is not None and took >= 0.9 * bound:
            text += f"; it was given the {bound:.2f}s left before the policy's deadline"
            if self.url.partition(":")[0].lower() in ("redis", "rediss"):
                text += " (Redis may still store it when it answers, and replay it later)"
        return text

    # --- reading ---------------------------------------------------------------------------

    def pending(self) -> list[ReplayEntry]:
        """Entries waiting for a replay (those being replayed right now included), oldest first."""
        return self._backend.entries(dead=False)

    def dead(self) -> list[ReplayEntry]:
        """Dead letters: entries that failed ``max_replays`` replays, oldest first."""
        return self._backend.entries(dead=True)

    def purge(self, call_id: str) -> bool:
        """Remove the entry ``call_id`` (pending or dead); ``True`` when one was removed."""
        if not isinstance(call_id, str):
            raise ConfigError(f"ReplayQueue.purge: call_id must be a string, got {call_id!r}")
        return self._backend.purge(call_id)

    # --- replaying -------------------------------------------------------------------------

    def replay(self, limit: int | None = None) -> ReplayReport:
        """Replay up to ``limit`` stored calls (all of them by default), once each.

        Each call runs through its own decorated pipeline with its stored
        ``call_id``; success removes the entry, failure keeps it with
        ``attempts + 1`` and ``last_error``, and the ``max_replays``-th failure
        moves it to the dead letters. Entries stored during the run wait for the
        next one. At-least-once: a worker that dies mid-call leaves its claim to
        expire after ``claim_timeout``, and the call runs again.

        Raises:
            ConfigError: for a bad ``limit``.
        """
        return self._replay(limit, None)

    def _replay(
        self, limit: int | None, progress: Callable[[ReplayEntry, str | None], None] | None
    ) -> ReplayReport:
        check_limit(limit, "replay: limit")
        backend = self._backend
        upto = backend.last_seq()
        after = 0
        replayed = succeeded = failed = dead = 0
        with _Heartbeat(backend, self.claim_timeout) as heartbeat:
            while limit is None or replayed < limit:
                token = os.urandom(8).hex()
                claimed, after = backend.claim(after, upto, token, self.claim_timeout)
                if claimed is None:
                    if after >= upto:
                        break
                    continue  # a batch of entries held by other workers: look further
                entry = claimed.entry
                heartbeat.watch(entry.call_id, token)
                try:
                    error = invoke(entry)
                except BaseException:
                    # Interrupted (KeyboardInterrupt, SystemExit): no verdict, give it back.
                    heartbeat.watch(None, None)
                    backend.release(entry.call_id, token)
                    raise
                heartbeat.watch(None, None)
                replayed += 1
                if error is None:
                    backend.complete(entry.call_id)
                    succeeded += 1
                    logger.info(
                        "replayed %s (call_id %s)",
                        entry.target,
                        entry.call_id,
                        extra={"retryx": {"name": entry.target}},
                    )
                else:
                    failed += 1
                    moved = backend.fail(entry.call_id, token, error, self.max_replays)
                    if moved:
                        dead += 1
                    _log_failure(entry, error, bool(moved), self.max_replays)
                if progress is not None:
                    progress(entry, error)
        return ReplayReport(replayed, succeeded, failed, dead)


ReplayQueue.__module__ = "retryx.replay"


def _log_failure(entry: ReplayEntry, error: str, moved: bool, max_replays: int) -> None:
    if moved:
        logger.error(
            "replay of %s (call_id %s) failed %d times, moved to dead letters: %s",
            entry.target,
            entry.call_id,
            max_replays,
            error,
            extra={"retryx": {"name": entry.target, "attempt": entry.attempts + 1}},
        )
    else:
        logger.warning(
            "replay of %s (call_id %s) failed (replay %d): %s",
            entry.target,
            entry.call_id,
            entry.attempts + 1,
            error,
            extra={"retryx": {"name": entry.target, "attempt": entry.attempts + 1}},
        )


class _Heartbeat:
    """Renews the claim of the call in progress every ``claim_timeout / 3`` s.

    A live worker never loses a slow call to another worker; a killed one stops
    renewing, and its claim expires after ``claim_timeout``.
    """

    def __init__(self, backend: Backend, timeout: float) -> None:
        self._backend = backend
        self._timeout = timeout
        self._lock = threading.Lock()
        self._current: tuple[str, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def watch(self, call_id: str | None, token: str | None) -> None:
        with self._lock:
            self._current = None if call_id is None or token is None else (call_id, token)
        if self._thread is None and call_id is not None:
            self._thread = threading.Thread(
                target=self._run, name="retryx-replay-heartbeat", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._timeout / 3):
                with self._lock:
                    current = self._current
                if current is not None:
                    try:
                        self._backend.renew(current[0], current[1], self._timeout)
                    except Exception as error:  # the next renewal may work
                        logger.warning("could not renew a replay claim: %s", error)
        finally:
            release = getattr(self._backend, "release_thread", None)
            if release is not None:
                release()


# --- URLs ---------------------------------------------------------------------------------------


def _open(url: str) -> Backend:
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from ._replay_sqlite import SQLiteBackend

        return SQLiteBackend(_sqlite_path(url))
    if scheme in ("redis", "rediss"):
        from ._replay_redis import RedisBackend

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        names = [value for key, value in query if key == "queue"]
        name = names[-1] if names else "default"
        if not name or any(c in name for c in "{}"):
            raise ConfigError(f"ReplayQueue: bad queue name {name!r} in {redact(url)!r}")
        rest = "&".join(f"{k}={v}" for k, v in query if k != "queue")
        return RedisBackend(urlunsplit(parts._replace(query=rest)), name)
    raise ConfigError(
        f"ReplayQueue: unsupported URL {redact(url)!r}; use sqlite:///path.db or redis://host:port/db"
    )


def _sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ConfigError(
            f"ReplayQueue: bad SQLite URL {url!r}; use sqlite:///relative.db or "
            "sqlite:////absolute/path.db"
        )
    path = url[len("sqlite:///") :]
    if "?" in path or "#" in path:
        raise ConfigError(f"ReplayQueue: SQLite URLs take no query or fragment, got {url!r}")
    if not path or path.endswith("/") or path == ":memory:":
        raise ConfigError(
            f"ReplayQueue: {url!r} does not name a database file (a replay queue must be durable)"
        )
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ConfigError(f"ReplayQueue: the directory of {url!r} does not exist: {parent}")
    return path


def __getattr__(name: str) -> Any:
    # The command-line functions live with the rest of ``retryx replay``; loaded on
    # first use, so the queue never imports its command line.
    if name in ("cli_list", "cli_run"):
        from . import _cli_replay

        return getattr(_cli_replay, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
