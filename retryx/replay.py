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

import contextlib
import importlib
import inspect
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ._context import SCOPE, ReplayScope, current
from ._errors import ConfigError

__all__ = ["ReplayEntry", "ReplayQueue", "ReplayReport", "cli_list", "cli_run"]

logger = logging.getLogger("retryx")

# The call_id being replayed in this context. The replayed call's own
# ``fallback(defer_to=...)`` re-raises instead of storing a second entry, so the
# failure counts against the stored one.
_REPLAYING: ContextVar[str | None] = ContextVar("retryx_replaying", default=None)

_MAX_DEPTH = 100
# A deferral waits at most the time left before the policy's deadline (the caller was
# promised it), but never less than this: a give-up at the deadline still gets a short
# write. Without a deadline, the backends' own limit (30 s) applies.
_DEFER_MIN = 0.1


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """One stored call, from ``pending()`` or ``dead()``.

    ``target`` is ``"module:qualname"``; ``args``/``kwargs`` are the JSON-decoded
    arguments (tuples come back as lists inside them); ``attempts`` counts failed
    replays (0 when never replayed); ``last_error`` is ``"Type: message"`` of the
    latest failure (the original fault until a replay fails); ``created_at`` is
    epoch seconds.
    """

    call_id: str
    target: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    attempts: int
    last_error: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What one ``replay()`` run did; an entry moved to the dead letters counts in
    both ``failed`` and ``dead``.
    """

    replayed: int
    succeeded: int
    failed: int
    dead: int


@dataclass(frozen=True, slots=True)
class _Claimed:
    seq: int
    entry: ReplayEntry


class _Backend(Protocol):
    """What a storage backend does; every method is one atomic step."""

    def enqueue(
        self,
        call_id: str,
        target: str,
        args: str,
        kwargs: str,
        error: str,
        created_at: float,
        timeout: float | None = None,
    ) -> None: ...
    def last_seq(self) -> int: ...
    def claim(
        self, after: int, upto: int, token: str, timeout: float
    ) -> tuple[_Claimed | None, int]: ...
    def renew(self, call_id: str, token: str, timeout: float) -> None: ...
    def complete(self, call_id: str) -> None: ...
    def fail(self, call_id: str, token: str, error: str, max_replays: int) -> bool | None: ...
    def release(self, call_id: str, token: str) -> None: ...
    def entries(self, dead: bool) -> list[ReplayEntry]: ...
    def count(self) -> int: ...
    def purge(self, call_id: str) -> bool: ...
    def close(self) -> None: ...


def _entry(
    call_id: str,
    target: str,
    args: str,
    kwargs: str,
    attempts: int,
    last_error: str,
    created_at: float,
) -> ReplayEntry:
    """Build a ``ReplayEntry`` from stored columns (shared by the backends)."""
    return ReplayEntry(
        call_id,
        target,
        tuple(json.loads(args)),
        json.loads(kwargs),
        int(attempts),
        last_error,
        float(created_at),
    )


def _describe_error(exc: BaseException) -> str:
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    text = str(exc)
    return f"{name}: {text}" if text else name


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
            or not math.isfinite(claim_timeout)
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
        self._backend: _Backend = _open(url)

    def __repr__(self) -> str:
        return (
            f"ReplayQueue({_redact(self.url)!r}, max_replays={self.max_replays}, "
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
        runner: Any,
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
        if _REPLAYING.get() == call_id:
            raise exc  # a replay's failure counts against its stored entry
        if instance is None and args and _called_through_classmethod(runner, args[0]):
            # ``@classmethod`` over a pipeline binds like a function: the class
            # arrives as the first argument.
            instance, args = args[0], args[1:]
        try:
            target = _target_name(runner, instance)
            where = f"cannot defer {target}"
            args_json = _to_json(list(args), "args", where)
            kwargs_json = _to_json(kwargs, "kwargs", where)
        except ConfigError as error:
            raise error from exc
        failure: BaseException | None = None
        context = current()
        left = None if context is None else context.remaining
        bound = None if left is None else max(left, _DEFER_MIN)
        start = time.monotonic()
        try:
            self._backend.enqueue(
                call_id, target, args_json, kwargs_json, _describe_error(exc), time.time(), bound
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
                extra={"retryx": {"name": runner.name}},
            )
            exc.add_note(f"retryx: could not defer the call: {note}")
            raise exc
        logger.info(
            "deferred %s (call_id %s) after %s",
            target,
            call_id,
            type(exc).__name__,
            extra={"retryx": {"name": runner.name}},
        )

    def _defer_failure(self, failure: BaseException, bound: float | None, took: float) -> str:
        """What failed and where, for the note and the log line of a failed deferral."""
        text = (
            f"storing it in the replay queue at {_redact(self.url)} failed after {took:.2f}s "
            f"({_describe_error(failure)})"
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
        _check_limit(limit, "replay: limit")
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
                    error = _invoke(entry)
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


def _check_limit(limit: object, what: str) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"{what} must be None or an int >= 0, got {limit!r}")


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

    def __init__(self, backend: _Backend, timeout: float) -> None:
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


# --- naming and encoding a call ------------------------------------------------------------


def _called_through_classmethod(runner: Any, first: Any) -> bool:
    """Whether ``first`` is the class a classmethod over this pipeline was called on."""
    from ._wrapper import find

    if not isinstance(first, type):
        return False
    name = getattr(runner.target, "__name__", None)
    raw = inspect.getattr_static(first, name, None) if isinstance(name, str) else None
    if not isinstance(raw, classmethod):
        return False
    return find(raw.__func__) is runner


def _target_name(runner: Any, instance: Any) -> str:
    """``module:qualname`` that imports back to this very pipeline, else ``ConfigError``."""
    from ._drivers import runner_of_function
    from ._wrapper import Wrapper, find

    func = runner.target
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    label = qualname if isinstance(qualname, str) else repr(func)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ConfigError(f"cannot defer {label}: it has no module and qualified name to store")
    if instance is not None:
        method = qualname.rpartition(".")[2]
        raw = inspect.getattr_static(instance, method, None) if isinstance(instance, type) else None
        if isinstance(raw, Wrapper):
            raw = raw.__wrapped__
        if not isinstance(raw, classmethod):
            raise ConfigError(
                f"cannot defer {label}: it is a method of an instance, whose state cannot be "
                "stored; defer a function, staticmethod or classmethod that takes plain data"
            )
        # Named through the class it was called on, so a subclass replays as itself.
        module, qualname = instance.__module__, f"{instance.__qualname__}.{method}"
    if "<" in qualname:
        raise ConfigError(
            f"cannot defer {module}:{qualname}: it is defined inside a function (or is a "
            "lambda), so a replay worker cannot import it by name; define it at module level"
        )
    live = sys.modules.get(module)
    stored = module
    if module == "__main__":
        spec = getattr(live, "__spec__", None)
        name = getattr(spec, "name", None)
        if not name or name == "__main__":
            raise ConfigError(
                f"cannot defer __main__:{qualname}: it is defined in a script, which a replay "
                "worker cannot import by name; move it into a module (or run with python -m)"
            )
        stored = name
    obj: Any = live
    try:
        if obj is None:
            raise AttributeError(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigError(
            f"cannot defer {stored}:{qualname}: that name does not import back to the "
            "function (it is not reachable as a module attribute)"
        ) from None
    if instance is None and "." in qualname:
        # A plain function in a class body binds like a function (the instance
        # arrives as the first argument): it is still a method of an instance.
        owner: Any = live
        *path, method = qualname.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if (
            isinstance(owner, type)
            and runner_of_function(inspect.getattr_static(owner, method, None)) is not None
        ):
            raise ConfigError(
                f"cannot defer {label}: it is a method of an instance, whose state cannot be "
                "stored; defer a function, staticmethod or classmethod that takes plain data"
            )
    if find(obj) is not runner:
        raise ConfigError(
            f"cannot defer {stored}:{qualname}: that name imports something else than the "
            "decorated function (was it renamed or wrapped again?)"
        )
    return f"{stored}:{qualname}"


def _to_json(value: Any, what: str, where: str) -> str:
    _check_json(value, what, where, 0, set())
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_json(value: Any, path: str, where: str, depth: int, seen: set[int]) -> None:
    """Accept what round-trips through JSON (tuples become lists); name the bad part."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {path} is {value!r}, which JSON cannot hold")
        return
    if depth >= _MAX_DEPTH or id(value) in seen:
        raise ConfigError(f"{where}: {path} is nested too deeply (or refers to itself) for JSON")
    if isinstance(value, list | tuple):
        seen.add(id(value))
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", where, depth + 1, seen)
        seen.discard(id(value))
        return
    if isinstance(value, dict):
        seen.add(id(value))
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{where}: {path} has the key {key!r}; JSON object keys must be strings"
                )
            _check_json(item, f"{path}[{key!r}]", where, depth + 1, seen)
        seen.discard(id(value))
        return
    raise ConfigError(
        f"{where}: {path} ({type(value).__qualname__}) is not JSON-serialisable "
        "(deferred calls store their arguments as JSON)"
    )


# --- running a stored call -------------------------------------------------------------------


def _resolve(target: str) -> Any:
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _invoke(entry: ReplayEntry) -> str | None:
    """Run one stored call through its pipeline; ``None`` on success, else the error."""
    scope_token = SCOPE.set(ReplayScope(entry.call_id))
    replay_token = _REPLAYING.set(entry.call_id)
    try:
        result = _resolve(entry.target)(*entry.args, **entry.kwargs)
        if inspect.isawaitable(result):
            _run_awaitable(result)
    except Exception as exc:
        return _describe_error(exc)
    finally:
        _REPLAYING.reset(replay_token)
        SCOPE.reset(scope_token)
    return None


def _run_awaitable(awaitable: Any) -> Any:
    """Run a coroutine in a fresh event loop (in a thread when one is running here)."""
    import asyncio
    import contextvars

    async def main() -> Any:
        return await awaitable

    if asyncio._get_running_loop() is None:
        return asyncio.run(main())
    # replay() called from async code: asyncio.run needs a thread of its own.
    context = contextvars.copy_context()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, main())))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="retryx-replay-loop")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


# --- URLs ---------------------------------------------------------------------------------------


def _open(url: str) -> _Backend:
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
            raise ConfigError(f"ReplayQueue: bad queue name {name!r} in {_redact(url)!r}")
        rest = "&".join(f"{k}={v}" for k, v in query if k != "queue")
        return RedisBackend(urlunsplit(parts._replace(query=rest)), name)
    raise ConfigError(
        f"ReplayQueue: unsupported URL {_redact(url)!r}; use sqlite:///path.db or redis://host:port/db"
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


def _redact(url: str) -> str:
    """``url`` without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


# --- command line (wired into ``retryx replay list|run`` by _cli) ---------------------------------


def cli_list(url: str) -> int:
    """Print the pending entries and dead letters of the queue at ``url``; exit status."""
    try:
        queue = ReplayQueue(url)
        pending, dead = queue.pending(), queue.dead()
    except ConfigError as exc:
        print(f"retryx replay list: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"retryx replay list: error: cannot read {_redact(url)}: {exc}", file=sys.stderr)
        return 1
    queue.close()
    for title, entries in (("pending", pending), ("dead", dead)):
        print(f"{title}: {len(entries)}")
        if entries:
            print(_table(entries))
    return 0


def _table(entries: list[ReplayEntry]) -> str:
    header = ("CALL_ID", "TARGET", "ATTEMPTS", "CREATED", "LAST_ERROR")
    rows = [
        (
            e.call_id,
            e.target,
            str(e.attempts),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at)),
            _shorten(e.last_error, 80),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join((*cells, row[-1])).rstrip())
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def cli_run(url: str, limit: int | None = None) -> int:
    """Replay the queue at ``url`` (up to ``limit`` entries), printing failures and a
    summary; a progress bar goes to stderr on a terminal. Exit status: 1 when any
    replay failed, 2 for a bad URL or limit, else 0.
    """
    # Targets are imported by name: like `python -m`, look in the working directory.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        queue = ReplayQueue(url)
        _check_limit(limit, "--limit")
        total = queue._backend.count()
    except ConfigError as exc:
        print(f"retryx replay run: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"retryx replay run: error: cannot read {_redact(url)}: {exc}", file=sys.stderr)
        return 1
    if limit is not None:
        total = min(total, limit)
    bar = _ProgressBar(total) if sys.stderr.isatty() else None
    done = [0, 0]  # replayed, failed: what to report if the storage fails mid-run

    def progress(entry: ReplayEntry, error: str | None) -> None:
        done[0] += 1
        if error is not None:
            done[1] += 1
            if bar is not None:
                bar.clear()
            print(f"failed  {entry.call_id}  {entry.target}: {_shorten(error, 200)}", flush=True)
        if bar is not None:
            bar.step()

    try:
        report = queue._replay(limit, progress)
    except Exception as exc:
        # The storage failed after the queue opened (disk full, read-only file, Redis
        # gone): one line, exit 1. Nothing is lost: an entry is removed only once its
        # replay is recorded; one whose outcome could not be written keeps its claim,
        # which expires after claim_timeout, and it is replayed again.
        if bar is not None:
            bar.clear()
        with contextlib.suppress(Exception):
            queue.close()
        print(
            f"retryx replay run: error: the queue at {_redact(url)} failed after {done[0]} "
            f"replayed ({done[1]} failed): {_describe_error(exc)}; unfinished entries "
            "stay queued",
            file=sys.stderr,
        )
        return 1
    finally:
        if bar is not None:
            bar.clear()
    with contextlib.suppress(Exception):
        queue.close()
    print(
        f"replayed {report.replayed}: {report.succeeded} succeeded, {report.failed} failed"
        f" ({report.dead} moved to dead letters)"
    )
    return 1 if report.failed else 0


class _ProgressBar:
    """A one-line bar on stderr, drawn only once a run has lasted ``delay`` seconds."""

    delay = 0.5

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.start = time.monotonic()
        self.drawn_at = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.drawn_at < 0.1 and self.done < self.total):
            return
        self.drawn_at = now
        filled = min(30, 30 * self.done // self.total)
        rate = self.done / max(now - self.start, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} ({rate:.0f}/s)"
        )
        sys.stderr.flush()

    def clear(self) -> None:
        if self.drawn_at:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
