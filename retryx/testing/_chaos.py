"""``inject_faults``: a chaos decorator that makes a reliable function unreliable on purpose."""

from __future__ import annotations

import copy
import datetime
import functools
import inspect
import math
import random
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast

import wrapt

from .. import _clock
from .._errors import ConfigError, to_float

__all__ = ["inject_faults"]

P = ParamSpec("P")
R = TypeVar("R")

_ExceptionSpec: TypeAlias = (
    type[BaseException]
    | BaseException
    | tuple[type[BaseException] | BaseException, ...]
    | list[type[BaseException] | BaseException]
)


def inject_faults(
    rate: float,
    exceptions: _ExceptionSpec,
    seed: int | None = None,
    latency: float | datetime.timedelta | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make each call fail with probability ``rate`` instead of running the function.

    An injected fault replaces the call: the function does not run, and one of
    ``exceptions`` (chosen at random when there are several) is raised: a type
    is instantiated without arguments, an instance is raised as a fresh copy
    each time. ``latency`` seconds are waited through the retryx clock before
    every call, injected fault or not, so ``testing.fake_time()`` records them.
    Works on functions, ``async def`` functions (which stay coroutine
    functions) and methods:

    ```python
    @retry(attempts=5)
    @inject_faults(0.3, ConnectionResetError, seed=7)
    def fetch(key): ...
    ```

    Args:
        rate: probability of a fault per call, ``0 <= rate <= 1``.
        exceptions: an exception type or instance, or a tuple of them.
        seed: seeds a random source of this decorator's own, so the fault
            pattern is reproducible; without it the shared retryx random source
            is used (see ``testing.seed``).
        latency: seconds (a number or ``timedelta``) to wait before each call.

    Raises:
        ConfigError: at decoration, naming the bad parameter: ``rate`` outside
            ``[0, 1]``, ``latency < 0``, empty or non-exception ``exceptions``,
            an exception type that needs arguments, a non-int ``seed``, or a
            generator function as the decorated callable.
    """
    chaos = _Chaos(
        _check_rate(rate),
        _check_exceptions(exceptions),
        _check_seed(seed),
        _check_latency(latency),
    )

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        return cast("Callable[P, R]", wrapt.FunctionWrapper(func, chaos.wrapper_for(func)))

    return decorate


class _Chaos:
    """The validated settings of one ``inject_faults`` and its random source."""

    __slots__ = ("_lock", "_rng", "latency", "makers", "rate")

    def __init__(
        self,
        rate: float,
        makers: tuple[Callable[[], BaseException], ...],
        rng: random.Random | None,
        latency: float,
    ) -> None:
        self.rate = rate
        self.makers = makers
        self.latency = latency
        self._rng = rng
        # Keeps the draw and the choice of one call together when threads share
        # a seeded decorator, so every call consumes the same random numbers.
        self._lock = threading.Lock()

    def draw(self) -> BaseException | None:
        """The exception to inject for this call, or ``None`` to run the function."""
        # Read at call time: ``testing.seed()`` may reseed or replace it.
        rng = self._rng if self._rng is not None else _clock.rng
        with self._lock:
            if not rng.random() < self.rate:
                return None
            maker = self.makers[0] if len(self.makers) == 1 else rng.choice(self.makers)
        return maker()

    def wrapper_for(self, func: Any) -> Callable[..., Any]:
        target = _target(func)
        if not callable(target):
            raise ConfigError(f"inject_faults needs a callable, got {func!r}")
        name = getattr(target, "__qualname__", repr(target))
        if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
            raise ConfigError(
                f"inject_faults cannot wrap generator function {name}: a fault could "
                "only be raised when it is first iterated"
            )
        if _is_async(target):
            return self._async_wrapper
        return self._sync_wrapper

    def _sync_wrapper(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: Any
    ) -> Any:
        fault = self.draw()
        if self.latency:
            _clock.sleep(self.latency)
        if fault is not None:
            raise fault
        return wrapped(*args, **kwargs)

    def _async_wrapper(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: Any
    ) -> Any:
        return self._acall(wrapped, args, kwargs)

    async def _acall(
        self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # Drawn when the coroutine starts, not when it is created, so a
        # coroutine that is never awaited does not consume a random number.
        fault = self.draw()
        if self.latency:
            await _clock.async_sleep(self.latency)
        if fault is not None:
            raise fault
        return await wrapped(*args, **kwargs)


def _target(func: Any) -> Any:
    """The plain function behind method decorators and partials, to inspect its kind."""
    for _ in range(100):  # bounded: a partial of a partial of ... is still finite
        if isinstance(func, classmethod | staticmethod):
            func = func.__func__
        elif isinstance(func, functools.partial):
            func = func.func
        else:
            break
    return func


def _is_async(target: Any) -> bool:
    if inspect.iscoroutinefunction(target):
        return True
    if inspect.isfunction(target) or inspect.ismethod(target) or isinstance(target, type):
        return False
    # A callable object: its kind is the kind of its class's ``__call__``.
    return inspect.iscoroutinefunction(type(target).__call__)


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ConfigError(f"inject_faults.rate must be a number in [0, 1], got {rate!r}")
    if not 0 <= rate <= 1:  # also rejects NaN
        raise ConfigError(f"inject_faults.rate must be in [0, 1], got {rate!r}")
    return float(rate)


def _check_latency(latency: Any) -> float:
    if latency is None:
        return 0.0
    if hasattr(latency, "total_seconds"):  # datetime.timedelta
        latency = latency.total_seconds()
    if isinstance(latency, bool) or not isinstance(latency, int | float):
        raise ConfigError(f"inject_faults.latency must be a number of seconds, got {latency!r}")
    latency = to_float("inject_faults.latency", latency)
    if not math.isfinite(latency) or latency < 0:
        raise ConfigError(f"inject_faults.latency must be a finite number >= 0, got {latency!r}")
    return float(latency)


def _check_seed(seed: Any) -> random.Random | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"inject_faults.seed must be an int or None, got {seed!r}")
    return random.Random(seed)


def _check_exceptions(exceptions: Any) -> tuple[Callable[[], BaseException], ...]:
    items = list(exceptions) if isinstance(exceptions, tuple | list) else [exceptions]
    if not items:
        raise ConfigError("inject_faults.exceptions must not be empty")
    return tuple(_maker(item) for item in items)


def _maker(item: Any) -> Callable[[], BaseException]:
    if isinstance(item, type) and issubclass(item, BaseException):
        try:
            item()
        except Exception as exc:
            raise ConfigError(
                f"inject_faults.exceptions: {item.__qualname__} cannot be made without "
                f"arguments ({exc}); pass an instance instead"
            ) from exc
        return item
    if isinstance(item, BaseException):
        return functools.partial(_fresh, item)
    raise ConfigError(
        "inject_faults.exceptions must be exception types or instances, "
        f"or a tuple of them, got {item!r}"
    )


def _fresh(template: BaseException) -> BaseException:
    """A copy of ``template`` to raise, so tracebacks and notes never pile up on one object."""
    try:
        exc = copy.copy(template)
    except Exception:
        exc = None
    if exc is None or type(exc) is not type(template):
        # Not copyable (an __init__ its args cannot satisfy): raise the instance
        # itself, with the traceback of its previous raise dropped.
        return template.with_traceback(None)
    # copy.copy shares the template's __dict__ values; notes must not be shared.
    notes = getattr(template, "__notes__", None)
    if notes is not None:
        exc.__notes__ = list(notes)
    exc.__cause__ = template.__cause__
    exc.__suppress_context__ = template.__suppress_context__
    return exc
