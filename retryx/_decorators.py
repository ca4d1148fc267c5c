"""The public decorators: ``retry``, ``circuit_breaker``, ``failover``, ``fallback``.

Each validates its arguments (``ConfigError`` naming the parameter) and adds its
layer with ``apply``, which fuses it with the retryx layers already on the
callable into one ``Pipeline`` in the fixed order ``_ORDER``; ``make`` builds the
pipeline and its driver (a function) or wrapper (``_wrapper``). ``describe`` and
``stats`` read a decorated callable's pipeline back.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, overload

from . import _drivers
from ._breaker import SETTINGS, CircuitBreaker
from ._errors import ConfigError
from ._failover import FailoverLayer
from ._frozen import Frozen
from ._mistakes import (
    check_endpoint_param,
    check_handler,
    check_hosts_callable,
    not_a_callable,
    refuse_retry_mistakes,
)
from ._pipeline import Pipeline
from ._policy import Policy
from ._stats import Recorder, Stats, recorder_of
from ._wrapper import DirectWrapper, GeneratorWrapper, Wrapper, find, is_async, own_pipeline, unwrap

if TYPE_CHECKING:  # typing_extensions is for type checkers only: no import cost
    from typing_extensions import ParamSpec, Unpack

    from ._policy import PolicyFields
    from ._store import BreakerStore

    P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)

__all__ = [
    "BreakerSettings",
    "FallbackLayer",
    "apply",
    "circuit_breaker",
    "describe",
    "failover",
    "fallback",
    "make",
    "retry",
    "stats",
]

_MISSING: Any = _drivers.MISSING  # "no value given"
_ORDER = ("fallback", "retry", "failover", "circuit_breaker")


class FallbackLayer(Frozen):
    """What ``@fallback(...)`` was given, validated (immutable)."""

    __slots__ = ("defer_to", "handler", "value")
    handler: Callable[..., Any] | None
    value: Any
    defer_to: Any

    def __init__(self, handler: Callable[..., Any] | None, value: Any, defer_to: Any) -> None:
        self._set("handler", handler)
        self._set("value", value)
        self._set("defer_to", defer_to)


def make(wrapped: Any, layers: dict[str, Any]) -> Any:
    """Validate ``wrapped`` and build its pipeline."""
    target = unwrap(wrapped)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    name = name or type(target).__qualname__
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        kind = "an async generator" if inspect.isasyncgenfunction(target) else "a generator"
        if set(layers) == {"circuit_breaker"}:  # a breaker needs no second run
            return GeneratorWrapper(wrapped, Pipeline(layers, name, False), kind)
        if "retry" in layers:
            why = "retryx cannot retry it (a generator cannot be rewound)"
        else:
            # Its failures arise while it is iterated, after the call has returned: too
            # late for another endpoint or a fallback value.
            which = " and ".join(f"@{layer}" for layer in layers if layer != "circuit_breaker")
            why = f"{which} cannot wrap it (it fails while iterated, after the call returned)"
        raise ConfigError(f"{name} is {kind}: {why}; decorate the function that creates it instead")
    if not callable(wrapped) and not isinstance(wrapped, classmethod | staticmethod):
        raise ConfigError(f"retryx decorators need a callable, got {wrapped!r}")
    pipeline = Pipeline(layers, name, is_async(target))
    pipeline.target = target
    # The exact-parameters driver only where no layer sees the call's arguments as
    # passed (see retryx._drivers).
    exact = pipeline.fallback is None and pipeline.failover is None
    if inspect.isfunction(wrapped):
        return _drivers.function_driver(pipeline, wrapped, exact)
    if not inspect.isbuiltin(wrapped):
        return Wrapper(wrapped, pipeline)
    # A builtin does not bind, so it keeps a pipeline object, whose own subclass
    # calls the driver function straight away.
    call = staticmethod(_drivers.function_driver(pipeline, wrapped, exact=False))
    direct = type(
        DirectWrapper.__name__, (DirectWrapper,), {"__call__": call, "__module__": __name__}
    )
    wrapper: Wrapper = direct(wrapped, pipeline)
    return wrapper


def apply(obj: Any, kind: str, layer: Any) -> Any:
    """Add one layer to ``obj``, fusing with the retryx layers already on it."""
    rewrap: Callable[[Any], Any] = lambda f: f  # noqa: E731
    base = obj
    layers: dict[str, Any] = {}
    inner: Any = obj.__func__ if isinstance(obj, classmethod | staticmethod) else None
    pipeline = own_pipeline(obj)
    if pipeline is not None:
        base, layers = obj.__wrapped__, pipeline.layers
    elif inner is not None and (pipeline := own_pipeline(inner)) is not None:
        base, layers = inner.__wrapped__, pipeline.layers
        rewrap = type(obj)
    if kind in layers:
        name = getattr(unwrap(base), "__qualname__", repr(base))
        raise ConfigError(f"{name}: @{kind} is applied twice; one of each kind per callable")
    merged = {k: v for k, v in {**layers, kind: layer}.items() if v is not None}
    ordered = {k: merged[k] for k in _ORDER if k in merged}
    return make(rewrap(base), ordered)


def _is_target(obj: Any) -> bool:
    """Whether a decorator factory was given the callable itself (the bare form)."""
    if obj is None or isinstance(obj, Policy | str | CircuitBreaker):
        return False
    return callable(obj) or isinstance(obj, classmethod | staticmethod)


@overload
def retry(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def retry(
    policy: Policy | str | None = None, /, **fields: Unpack[PolicyFields]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def retry(policy: Any = None, /, **fields: Any) -> Any:
    """Retry transient faults of the decorated callable per a ``Policy``.

    Forms: ``@retry``, ``@retry()``, ``@retry(Policy(...))``,
    ``@retry(attempts=5, ...)``, ``@retry("name")`` (a named policy from
    ``retryx.configure``, resolved at first call).

    Raises:
        ConfigError: for bad policy fields, generators, or ``attempt_timeout``
            on a sync callable (at decoration time).
    """
    refuse_retry_mistakes(policy)
    if _is_target(policy):
        if fields:
            raise ConfigError("retry(func, ...) takes no policy fields; use retry(...)(func)")
        return apply(policy, "retry", Policy())
    layer: Policy | str
    if isinstance(policy, str):
        if fields:
            raise ConfigError(
                f"retry({policy!r}) names a configured policy; it takes no fields {sorted(fields)}"
            )
        if not policy:
            raise ConfigError("retry: a policy name must not be empty")
        layer = policy
    elif isinstance(policy, Policy):
        layer = policy.replace(**fields) if fields else policy
    elif policy is None:
        try:
            layer = Policy(**fields)
        except TypeError as exc:
            raise ConfigError(f"retry: {exc}") from None
    else:
        raise ConfigError(f"retry: expected a Policy, a policy name or fields, got {policy!r}")

    def decorate(func: Any) -> Any:
        return apply(func, "retry", layer)

    return decorate


class BreakerSettings(TypedDict, total=False):
    """``circuit_breaker(**settings)``: ``CircuitBreaker``'s keyword arguments, typed so
    checkers catch ``circuit_breaker(failure_treshold=3)`` (a test compares them)."""

    name: str
    failure_threshold: int
    failure_rate: float | None
    window: int
    minimum_calls: int
    recovery_timeout: float
    half_open_max_calls: int
    success_threshold: int
    counts: Any
    store: BreakerStore | None


@overload
def circuit_breaker(func: Callable[P, R], /) -> Callable[P, R]: ...  # type: ignore[overload-overlap]
@overload
def circuit_breaker(
    breaker: CircuitBreaker | str | None = None, /, **settings: Unpack[BreakerSettings]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def circuit_breaker(breaker: Any = None, /, **settings: Any) -> Any:
    """Guard the decorated callable with a circuit breaker.

    Forms: ``@circuit_breaker`` (a new breaker named after the callable),
    ``@circuit_breaker(breaker)``, ``@circuit_breaker(name=..., **settings)``,
    ``@circuit_breaker("db")`` (the process-wide breaker configured by
    ``[breakers.db]``).
    """
    if _is_target(breaker):
        if settings:
            raise ConfigError("circuit_breaker(func, ...) takes no settings")
        func = breaker
        name = getattr(unwrap(func), "__qualname__", None) or repr(func)
        return apply(func, "circuit_breaker", CircuitBreaker(name))
    if isinstance(breaker, CircuitBreaker | str):
        if settings:
            raise ConfigError(
                f"circuit_breaker({breaker!r}) takes no settings; configure the breaker itself"
            )
        if isinstance(breaker, str) and not breaker:
            raise ConfigError("circuit_breaker: a breaker name must not be empty")
        layer: Any = breaker
    elif breaker is None:
        name = settings.pop("name", None)
        if name is not None:
            layer = CircuitBreaker(name, **_checked(settings))
        else:
            layer = None  # named after the callable, at decoration
            _probe = CircuitBreaker("probe", **_checked(settings))  # validate now
            del _probe
    else:
        raise ConfigError(f"circuit_breaker: expected a CircuitBreaker or a name, got {breaker!r}")

    def decorate(func: Any) -> Any:
        made = layer
        if made is None:
            name = getattr(unwrap(func), "__qualname__", None) or repr(func)
            made = CircuitBreaker(name, **settings)
        return apply(func, "circuit_breaker", made)

    return decorate


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    known = {*SETTINGS, "store"}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(f"circuit_breaker: unknown setting(s) {', '.join(sorted(unknown))}")
    return settings


_FAILOVER_ORDERS = ("priority", "round_robin", "random")


def failover(
    hosts: Sequence[Hashable] | Callable[[], Sequence[Hashable]],
    *,
    param: str = "host",
    order: str = "priority",
    breaker: CircuitBreaker | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Send each attempt to the next healthy endpoint, passed as keyword ``param``.

    Each call sweeps the endpoints once; transient faults move to the next one
    at once, permanent faults are raised. Every endpoint has its own breaker
    (a copy of ``breaker``, default ``failure_threshold=3, recovery_timeout=30``).

    Raises:
        ConfigError: for empty ``hosts``, an unknown ``order`` or a bad ``param``.
    """
    if callable(hosts) and not isinstance(hosts, Sequence):
        check_hosts_callable(hosts)
        normal: Any = hosts
    elif isinstance(hosts, str | bytes) or not isinstance(hosts, Sequence):
        raise ConfigError(f"failover: hosts must be a sequence or a callable, got {hosts!r}")
    else:
        normal = tuple(hosts)
        if not normal:
            raise ConfigError("failover: hosts must not be empty")
        for host in normal:
            try:
                hash(host)
            except TypeError:
                raise ConfigError(f"failover: hosts must be hashable, got {host!r}") from None
    if order not in _FAILOVER_ORDERS:
        raise ConfigError(
            f"failover: order must be one of {', '.join(_FAILOVER_ORDERS)}, got {order!r}"
        )
    if not isinstance(param, str) or not param.isidentifier():
        raise ConfigError(f"failover: param must be an identifier, got {param!r}")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigError(f"failover: breaker must be a CircuitBreaker, got {breaker!r}")
    layer = FailoverLayer(normal, param, order, breaker)

    def decorate(func: Any) -> Any:
        if not callable(func) and not isinstance(func, classmethod | staticmethod):
            raise not_a_callable("failover", func)
        check_endpoint_param(func, param)
        return apply(func, "failover", layer)

    return decorate


class _FallbackDecorator(Protocol[V_co]):
    """What ``fallback(...)`` returns: keeps the parameters, adds ``V_co`` to the result
    (inside the coroutine for a coroutine function)."""

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]], /
    ) -> Callable[P, Coroutine[Any, Any, R | V_co]]: ...
    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, R | V_co]: ...


@overload
def fallback(handler: Callable[..., Awaitable[V]]) -> _FallbackDecorator[V]: ...
@overload
def fallback(handler: Callable[..., V]) -> _FallbackDecorator[V]: ...
@overload
def fallback(*, value: V) -> _FallbackDecorator[V]: ...
@overload
def fallback(*, defer_to: Any) -> _FallbackDecorator[None]: ...
def fallback(
    handler: Callable[..., Any] | None = None,
    *,
    value: Any = _MISSING,
    defer_to: Any = None,
) -> Any:
    """When the pipeline finally fails, return ``handler(exc, *args, **kwargs)`` or ``value``.

    With ``defer_to=queue`` a transient failure is stored in a replay queue and the
    call returns ``None``. For methods the handler gets the instance (or class)
    first; an async handler is awaited.

    Raises:
        ConfigError: with neither or both of ``handler`` and ``value``.
    """
    given = sum(x is not None and x is not _MISSING for x in (handler, defer_to))
    given += value is not _MISSING
    if defer_to is not None and given > 1:
        raise ConfigError("fallback(defer_to=...) cannot be combined with a handler or value")
    if given == 0:
        raise ConfigError("fallback needs a handler, value= or defer_to=")
    if handler is not None and value is not _MISSING:
        raise ConfigError("fallback takes a handler or value=, not both")
    if handler is not None and not callable(handler):
        raise ConfigError(f"fallback: handler must be callable, got {handler!r}")
    if handler is not None:
        check_handler(handler)
    if defer_to is not None and not hasattr(defer_to, "defer"):
        raise ConfigError(f"fallback: defer_to must be a replay queue, got {defer_to!r}")
    layer = FallbackLayer(handler, None if value is _MISSING else value, defer_to)

    def decorate(func: Any) -> Any:
        if not callable(func) and not isinstance(func, classmethod | staticmethod):
            raise not_a_callable("fallback", func)
        return apply(func, "fallback", layer)

    return decorate


def describe(func: Any) -> list[str]:
    """The retryx layer kinds on ``func``, in execution order (``[]`` when none)."""
    pipeline = find(func)
    return [] if pipeline is None else list(pipeline.layers)


def stats(func: Any, *, reset: bool = False) -> Stats:
    """A snapshot of ``func``'s counters; ``reset=True`` zeroes them after reading.

    ``func`` is a decorated callable, or the name of retry blocks (``retryx.attempts``).

    Raises:
        ConfigError: when ``func`` carries no retryx layer.
    """
    if isinstance(func, str):  # the name of retry blocks (retryx.attempts)
        found = recorder_of(func)
        if found is None:
            raise ConfigError(f"stats: no retry block named {func!r} has run")
        recorder: Recorder = found
    else:
        pipeline = find(func)
        if pipeline is None:
            raise ConfigError(f"stats: {func!r} is not decorated by retryx")
        recorder = pipeline.recorder
    return recorder.snapshot(reset=reset)
