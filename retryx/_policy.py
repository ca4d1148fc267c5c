"""``Policy``: the frozen, validated description of how a call is retried."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict

from . import backoff as _backoff
from . import jitter as _jitter
from ._classifiers import to_classifier
from ._classify import Classifier, Fault, classify
from ._errors import MAX_INT, ConfigError, shown, to_float

if TYPE_CHECKING:
    from datetime import timedelta

    from typing_extensions import Unpack

    from ._budget import RetryBudget
    from ._event_records import GaveUp, RetryScheduled, Succeeded

__all__ = ["Policy", "PolicyFields", "RetryOn"]

RetryOn: TypeAlias = (
    Classifier
    | Callable[[BaseException], Fault | bool]
    | Callable[[BaseException], Awaitable[Fault | bool]]
    | type[BaseException]
    | tuple[type[BaseException] | str, ...]
    | list[type[BaseException] | str]
    | str
)
"""What ``retry_on`` accepts; a ``Policy`` always holds the normalised classifier."""

ResultVerdict: TypeAlias = "bool | float | timedelta | Fault | None"
"""What ``retry_if_result`` returns: ``True``/``False``, a delay (seconds or a
``timedelta``) before the retry, or a ``Fault`` (its ``retry_after`` is the wait)."""
ResultPredicate: TypeAlias = (
    "Callable[[Any], ResultVerdict] | Callable[[Any], Awaitable[ResultVerdict]]"
)
"""A ``retry_if_result`` predicate (a coroutine function only for async callables)."""

_NESTED = ("defer", "raise", "allow")
_HOOKS = ("on_retry", "on_give_up", "on_success")


def _level(name: str, value: Any) -> int:
    """A logging level: an int >= 0 or a level name (``"INFO"``), as an int."""
    if isinstance(value, str):
        found = logging.getLevelNamesMapping().get(value.upper())
        if found is None:
            raise ConfigError(f"Policy.{name} must be a logging level, got {value!r}")
        return found
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"Policy.{name} must be a logging level, got {value!r}")
    return value


def _number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if hasattr(value, "total_seconds"):  # datetime.timedelta
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Policy.{name} must be a number of seconds, got {value!r}")
    return to_float(f"Policy.{name}", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How a call is retried. Frozen, hashable, validated on construction.

    Keyword arguments only. String, ``None`` and ``timedelta`` inputs are
    normalised once: ``Policy(jitter="full").jitter is jitter.full``, and
    policies compare by value. ``replace(**changes)`` returns a validated copy;
    ``Policy.interactive()`` and ``Policy.background()`` are presets.

    Attributes:
        attempts: total attempts, the first included (``>= 1``), or ``None``:
            unlimited (bounded by ``deadline`` when there is one, else by nothing:
            ``retryx explain`` warns).
        backoff: the delay before retry *n*, before jitter: a ``retryx.backoff``
            object or one of ``"exponential"``, ``"incremental"``, ``"fixed"``,
            ``"immediate"``, ``"none"``. Default: exponential from 0.1 s, doubling,
            capped at 30 s.
        jitter: the randomisation of each delay: a ``retryx.jitter`` object or
            ``"none"``, ``"full"`` (default), ``"equal"``, ``"decorrelated"``.
        deadline: seconds for the whole call, attempts and waits included, or
            ``None``. retryx never sleeps past it: when the next wait would cross
            it, the call gives up at once (reason ``deadline``).
        attempt_timeout: seconds per attempt, capped by the time left before the
            deadline; coroutine functions only (a ``TimeoutError``, transient).
        retry_on: which faults are retried: the default classifier
            ``retryx.classify``, an exception type or a tuple of them (exactly
            those are transient), ``"module:Qualname"`` strings, or a predicate
            ``exc -> bool | Fault``.
        retry_if_result: ``result -> bool``; a match is retried too, and the last
            result is returned when the call ends. It may also return the wait
            before the retry: a number of seconds (``0`` retries at once), a
            ``timedelta``, or a ``Fault`` whose ``retry_after`` is the wait (a
            returned 429 response); a hint like ``Retry-After``, capped by
            ``retry_after_max`` and the deadline. ``None`` is read as ``False``,
            with a warning.
        retry_after_max: the largest Retry-After hint honoured, in seconds; a
            larger hint ends the call (reason ``deadline``).
        budget: a shared ``RetryBudget``; when it denies a retry the call gives
            up (reason ``budget``).
        idempotent: ``False`` retries (and fails over) only faults that prove the
            request never reached the peer; other transient faults end the call
            (reason ``not_idempotent``), also in an outer layer it defers to.
        nested: what this policy does when it runs inside another retrying call:
            ``"defer"`` (one attempt, with this policy's verdict on the fault;
            the outer layer schedules the retries), ``"raise"
            (``NestedRetryError``) or ``"allow"`` (attempts multiply).
        name: the label in logs, events and stats (default: the callable's
            qualified name).
        on_retry: ``hook(events.RetryScheduled)``, called before each wait.
        on_give_up: ``hook(events.GaveUp)``, called when the call gives up.
        on_success: ``hook(events.Succeeded)``, called when the call succeeds
            (first attempt included). Each hook runs once per event, after the global
            subscribers; an async pipeline awaits a coroutine function (a sync one
            refuses it); a hook that raises is logged and skipped.
        log: where this policy's log lines go: ``None`` (or ``True``) the
            ``retryx`` logger, a ``logging.Logger`` or a logger name, ``False`` none.
        retry_log_level: the level of the "retrying" line (default ``WARNING``).
        give_up_log_level: the level of the "giving up" line (default ``ERROR``;
            a permanent fault is logged at ``DEBUG`` whatever it says, and a result
            returned after the last attempt at no more than ``WARNING``).
        log_exc_info: ``True``: the retry and give-up records carry the fault as
            ``exc_info`` (tenacity's ``before_sleep_log(..., exc_info=True)``); off by
            default, as a handler that keeps records would keep each failed call's
            frames alive through it.

    Raises:
        ConfigError: naming the field and the bad value.
    """

    attempts: int | None = 3
    # Annotated with what the constructor accepts; after __post_init__ the
    # fields always hold the normalised objects (see classifier/backoff/jitter).
    backoff: _backoff.Backoff | str = field(default_factory=_backoff.exponential)
    jitter: _jitter.Jitter | str | None = _jitter.full
    deadline: float | None = None
    attempt_timeout: float | None = None
    retry_on: RetryOn = classify
    retry_if_result: ResultPredicate | None = None
    retry_after_max: float = 60.0
    budget: RetryBudget | None = None
    idempotent: bool = True
    nested: Literal["defer", "raise", "allow"] = "defer"
    name: str | None = None
    on_retry: Callable[[RetryScheduled], object] | None = None
    on_give_up: Callable[[GaveUp], object] | None = None
    on_success: Callable[[Succeeded], object] | None = None
    log: logging.Logger | str | bool | None = None
    retry_log_level: int | str = logging.WARNING
    give_up_log_level: int | str = logging.ERROR
    log_exc_info: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        a = self.attempts
        if a is None:
            pass  # unlimited: bounded by the deadline, the budget, or nothing
        elif isinstance(a, bool) or not isinstance(a, int):
            raise ConfigError(f"Policy.attempts must be an int or None, got {a!r}")
        elif a < 1:
            raise ConfigError(f"Policy.attempts must be >= 1, got {a!r}")
        elif a > MAX_INT:
            raise ConfigError(f"Policy.attempts must be <= 2**63-1, got {shown(a)}")

        b: Any = self.backoff
        if isinstance(b, str):
            b = _backoff.from_name(b, field="Policy.backoff")
        elif not isinstance(b, _backoff.Backoff):
            raise ConfigError(f"Policy.backoff must be a Backoff or a name, got {b!r}")
        set_(self, "backoff", b)

        j: Any = self.jitter
        if isinstance(j, str):
            j = _jitter.from_name(j, field="Policy.jitter")
        elif j is None:
            j = _jitter.none
        elif not isinstance(j, _jitter.Jitter):
            raise ConfigError(f"Policy.jitter must be a Jitter or a name, got {j!r}")
        set_(self, "jitter", j)

        d = _number("deadline", self.deadline, allow_none=True)
        if d is not None and (d <= 0 or math.isnan(d)):
            raise ConfigError(f"Policy.deadline must be > 0 seconds, got {self.deadline!r}")
        set_(self, "deadline", None if d is None or math.isinf(d) else d)

        t = _number("attempt_timeout", self.attempt_timeout, allow_none=True)
        if t is not None and (t <= 0 or math.isnan(t)):
            raise ConfigError(
                f"Policy.attempt_timeout must be > 0 seconds, got {self.attempt_timeout!r}"
            )
        set_(self, "attempt_timeout", None if t is None or math.isinf(t) else t)

        set_(self, "retry_on", to_classifier(self.retry_on, field="Policy.retry_on"))

        if self.retry_if_result is not None and not callable(self.retry_if_result):
            raise ConfigError(
                f"Policy.retry_if_result must be callable or None, got {self.retry_if_result!r}"
            )
        m = _number("retry_after_max", self.retry_after_max)
        assert m is not None
        if m < 0 or math.isnan(m):
            raise ConfigError(
                f"Policy.retry_after_max must be >= 0 seconds, got {self.retry_after_max!r}"
            )
        set_(self, "retry_after_max", m)

        if self.budget is not None:
            from ._budget import RetryBudget

            if not isinstance(self.budget, RetryBudget):
                raise ConfigError(f"Policy.budget must be a RetryBudget, got {self.budget!r}")
        if not isinstance(self.idempotent, bool):
            raise ConfigError(f"Policy.idempotent must be a bool, got {self.idempotent!r}")
        if self.nested not in _NESTED:
            raise ConfigError(
                f"Policy.nested must be one of {', '.join(_NESTED)}, got {self.nested!r}"
            )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ConfigError(f"Policy.name must be a non-empty str or None, got {self.name!r}")
        for hook in _HOOKS:
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise ConfigError(f"Policy.{hook} must be callable or None, got {value!r}")
        log: Any = self.log
        if log is True:
            log = None
        elif isinstance(log, str) and log:
            log = logging.getLogger(log)
        elif not (log is None or log is False or isinstance(log, logging.Logger)):
            raise ConfigError(
                f"Policy.log must be a logging.Logger, a logger name, True or False, got {log!r}"
            )
        set_(self, "log", log)
        set_(self, "retry_log_level", _level("retry_log_level", self.retry_log_level))
        set_(self, "give_up_log_level", _level("give_up_log_level", self.give_up_log_level))
        if not isinstance(self.log_exc_info, bool):
            raise ConfigError(f"Policy.log_exc_info must be a bool, got {self.log_exc_info!r}")

    @property
    def classifier(self) -> Classifier:
        """``retry_on``, normalised: exception -> ``Fault``."""
        return self.retry_on  # type: ignore[return-value]

    @property
    def backoff_strategy(self) -> _backoff.Backoff:
        """``backoff``, normalised to a ``Backoff`` object."""
        return self.backoff  # type: ignore[return-value]

    @property
    def jitter_strategy(self) -> _jitter.Jitter:
        """``jitter``, normalised to a ``Jitter`` object."""
        return self.jitter  # type: ignore[return-value]

    def replace(self, **changes: Unpack[PolicyFields]) -> Policy:
        """A validated copy with ``changes`` applied.

        Raises:
            ConfigError: for an unknown field or a bad value.
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"Policy has no field(s) {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def interactive(cls, **changes: Unpack[PolicyFields]) -> Policy:
        """A user is waiting: 3 attempts, exponential from 0.1 s capped at 1 s, full jitter,
        a 5 s deadline.
        """
        base = cls(
            attempts=3,
            backoff=_backoff.exponential(initial=0.1, multiplier=2.0, max=1.0),
            jitter=_jitter.full,
            deadline=5.0,
        )
        return base.replace(**changes) if changes else base

    @classmethod
    def background(cls, **changes: Unpack[PolicyFields]) -> Policy:
        """Nobody is waiting: 10 attempts, exponential from 1 s doubling to 60 s, full jitter,
        a 10 minute deadline.
        """
        base = cls(
            attempts=10,
            backoff=_backoff.exponential(initial=1.0, multiplier=2.0, max=60.0),
            jitter=_jitter.full,
            deadline=600.0,
        )
        return base.replace(**changes) if changes else base


class PolicyFields(TypedDict, total=False):
    """The ``Policy`` fields as keyword arguments (``retry(**fields)``,
    ``Policy.replace(**changes)``): type checkers catch ``retry(attemps=3)``.

    The same names and annotations as ``Policy``'s fields (a test compares them).
    """

    attempts: int | None
    backoff: _backoff.Backoff | str
    jitter: _jitter.Jitter | str | None
    deadline: float | None
    attempt_timeout: float | None
    retry_on: RetryOn
    retry_if_result: ResultPredicate | None
    retry_after_max: float
    budget: RetryBudget | None
    idempotent: bool
    nested: Literal["defer", "raise", "allow"]
    name: str | None
    on_retry: Callable[[RetryScheduled], object] | None
    on_give_up: Callable[[GaveUp], object] | None
    on_success: Callable[[Succeeded], object] | None
    log: logging.Logger | str | bool | None
    retry_log_level: int | str
    give_up_log_level: int | str
    log_exc_info: bool


def _checked_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap the generated ``__init__`` so misuse is a ``ConfigError`` like every bad value."""
    fields = frozenset(f.name for f in dataclasses.fields(Policy))

    @functools.wraps(init)
    def __init__(self: Policy, *args: Any, **changes: Any) -> None:
        if args:
            raise ConfigError(f"Policy takes keyword arguments only, got {args!r}")
        unknown = set(changes) - fields
        if unknown:
            raise ConfigError(f"Policy has no field(s) {', '.join(sorted(unknown))}")
        init(self, **changes)

    return __init__


setattr(Policy, "__init__", _checked_init(Policy.__init__))  # noqa: B010 - mypy keeps the dataclass signature
Policy.__module__ = "retryx"
