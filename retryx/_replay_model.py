"""What ``replay.py``, its storage backends and its command line share: the stored entry,
the backend protocol, and how errors, URLs and limits are shown and checked.

The backends (``_replay_sqlite.py``, ``_replay_redis.py``) import this module and
``replay.py`` imports them, never the reverse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ._errors import ConfigError

__all__ = [
    "Backend",
    "Claimed",
    "ReplayEntry",
    "check_limit",
    "describe_error",
    "make_entry",
    "redact",
]


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


ReplayEntry.__module__ = "retryx.replay"


@dataclass(frozen=True, slots=True)
class Claimed:
    """An entry a worker claimed, with its place (``seq``) in the queue."""

    seq: int
    entry: ReplayEntry


class Backend(Protocol):
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
    ) -> tuple[Claimed | None, int]: ...
    def renew(self, call_id: str, token: str, timeout: float) -> None: ...
    def complete(self, call_id: str) -> None: ...
    def fail(self, call_id: str, token: str, error: str, max_replays: int) -> bool | None: ...
    def release(self, call_id: str, token: str) -> None: ...
    def entries(self, dead: bool) -> list[ReplayEntry]: ...
    def count(self) -> int: ...
    def purge(self, call_id: str) -> bool: ...
    def close(self) -> None: ...


def make_entry(
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


def describe_error(exc: BaseException) -> str:
    """``"module.Type: message"`` of ``exc`` (builtins without the module), as stored."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    text = str(exc)
    return f"{name}: {text}" if text else name


def redact(url: str) -> str:
    """``url`` without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


def check_limit(limit: object, what: str) -> None:
    """``ConfigError`` naming ``what`` unless ``limit`` is ``None`` or an int >= 0."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"{what} must be None or an int >= 0, got {limit!r}")
