"""The ``Retryx-Pushback`` protocol: a service that already retried tells its caller not to.

- the *sending* side (``retryx.asgi`` / ``retryx.wsgi`` middlewares) opens a
  ``RequestScope`` per request; the pipeline reports every give-up inside it
  (``note_give_up``, on the failure path only), and the middleware turns a 5xx
  response of a request whose retryx layer gave up into ``Retryx-Pushback:
  no-retry`` (or ``<seconds>``: see ``header_value``);
- the *receiving* side is ``retryx.classify`` (``_classify._status_fault``):
  ``no-retry`` makes a response permanent (cause ``"pushback"``), a number is a
  ``retry_after`` hint; the HTTP clients judge responses through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from ._errors import ConfigError
from ._fault import Fault

__all__ = [
    "HEADER",
    "NO_RETRY",
    "RequestScope",
    "check_seconds",
    "close_scope",
    "enter_scope",
    "header_value",
    "note_give_up",
    "open_scope",
]

HEADER = "Retryx-Pushback"
NO_RETRY = "no-retry"


class RequestScope:
    """What retryx layers did during one served request: the last give-up, if any."""

    __slots__ = ("classifier", "exception", "gave_up")

    def __init__(self) -> None:
        self.gave_up = False
        self.exception: BaseException | None = None
        self.classifier: Callable[[BaseException], Fault] | None = None


# The request being served in this thread or task (``None`` outside a middleware).
# Tasks and ``asyncio.to_thread`` copy the context, so work a handler spawns
# reports into the same scope object.
_REQUEST: ContextVar[RequestScope | None] = ContextVar("retryx_request", default=None)


def open_scope() -> tuple[RequestScope, Token[RequestScope | None]]:
    """Start a request scope in the current context; ``close_scope(token)`` ends it."""
    scope = RequestScope()
    return scope, _REQUEST.set(scope)


def enter_scope(scope: RequestScope) -> Token[RequestScope | None]:
    """Make ``scope`` current again (a WSGI body iterated after the handler returned)."""
    return _REQUEST.set(scope)


def close_scope(token: Token[RequestScope | None]) -> None:
    """End the request scope opened with ``token``."""
    _REQUEST.reset(token)


def note_give_up(exc: BaseException | None, classifier: Any) -> None:
    """Called by the pipeline when a retry layer gives up (any reason)."""
    scope = _REQUEST.get()
    if scope is not None:
        scope.gave_up = True
        scope.exception = exc
        scope.classifier = classifier


def header_value(scope: RequestScope, seconds: float | None) -> str | None:
    """The ``Retryx-Pushback`` value for a 5xx response of ``scope``'s request, or ``None``.

    ``None`` when no retryx layer gave up. When the last give-up was on a
    throttled fault with a hint, that hint in seconds; else the middleware's
    ``seconds`` option when set; else ``no-retry``.
    """
    if not scope.gave_up:
        return None
    exc, classifier = scope.exception, scope.classifier
    if exc is not None and classifier is not None:
        try:
            fault = classifier(exc)
        except Exception:  # a user classifier failing here must not break the response
            fault = None
        if fault is not None and fault.cause == "throttled" and fault.retry_after is not None:
            return _format(fault.retry_after)
    if seconds is not None:
        return _format(seconds)
    return NO_RETRY


def _format(seconds: float) -> str:
    text = f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def check_seconds(owner: str, value: Any) -> float | None:
    """Validate a middleware's ``pushback`` option (seconds, a timedelta or ``None``).

    Raises:
        ConfigError: naming ``owner``'s ``pushback`` parameter.
    """
    if value is None:
        return None
    if hasattr(value, "total_seconds"):  # datetime.timedelta
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}: pushback must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{owner}: pushback must be a finite number >= 0, got {value!r}")
    return float(value)
