"""``Fault``: what a classifier decided about one exception (a model module, no imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "CONNECTION",
    "CONNECTION_UNSENT",
    "CONTENTION",
    "EXPLICIT",
    "PERMANENT",
    "PUSHBACK",
    "SERVER",
    "THROTTLED",
    "THROTTLED_UNSENT",
    "TIMEOUT",
    "TIMEOUT_UNSENT",
    "Cause",
    "Fault",
]

Cause: TypeAlias = Literal[
    "connection",
    "timeout",
    "throttled",
    "server",
    "contention",
    "circuit_open",
    "explicit",
    "pushback",
    "permanent",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """What a classifier decided about one exception.

    ``transient`` faults are retried; ``cause`` says why, for logs and stats;
    ``retry_after`` is the peer's hint in seconds, or ``None``; ``unsent`` says the
    fault proves the request never reached the peer (so a non-idempotent call may
    be retried).
    """

    transient: bool
    cause: str
    retry_after: float | None = None
    unsent: bool = False


Fault.__module__ = "retryx"

# The verdicts the classifier and the client rules hand out, made once and shared.
PERMANENT = Fault(False, "permanent")
CONNECTION = Fault(True, "connection")
CONNECTION_UNSENT = Fault(True, "connection", unsent=True)
TIMEOUT = Fault(True, "timeout")
TIMEOUT_UNSENT = Fault(True, "timeout", unsent=True)
SERVER = Fault(True, "server")
THROTTLED = Fault(True, "throttled")
THROTTLED_UNSENT = Fault(True, "throttled", unsent=True)
CONTENTION = Fault(True, "contention")
EXPLICIT = Fault(True, "explicit")
PUSHBACK = Fault(False, "pushback")
