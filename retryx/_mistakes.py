"""Common mistakes, refused at decoration with a hint (``ConfigError`` naming them).

``retry(ValueError)`` for ``retry(retry_on=ValueError)``, ``@failover`` or
``@fallback`` written bare, a fallback handler that does not take the exception,
a failover target without the endpoint's keyword, async predicates and hooks on
a sync callable (nothing would await them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._errors import ConfigError
from ._policy import Policy
from ._wrapper import is_async, unwrap

__all__ = [
    "async_retry_on",
    "callable_name",
    "check_async_predicates",
    "check_endpoint_param",
    "check_handler",
    "check_hosts_callable",
    "not_a_callable",
    "refuse_retry_mistakes",
]


def callable_name(obj: Any) -> str:
    target = unwrap(obj)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return str(name) if name else repr(obj)


def _is_exception_type(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def _is_exception_annotation(annotation: Any) -> bool:
    """An exception class, or a union of them (``ValueError | KeyError``)."""
    if _is_exception_type(annotation):
        return True
    args: tuple[Any, ...] = getattr(annotation, "__args__", ())
    return bool(args) and all(_is_exception_type(a) for a in args)


def _first_positional(func: Any) -> inspect.Parameter | bool | None:
    """``func``'s first positional parameter; ``None`` when it takes none; ``False``
    when its signature cannot be read (builtins, some C callables)."""
    try:
        signature = inspect.signature(func, eval_str=True)
    except Exception:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return False
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return parameter
        if parameter.kind is parameter.VAR_POSITIONAL:
            return False  # takes anything
    return None


def _looks_like_predicate(obj: Any) -> bool:
    """Whether ``retry(obj)`` was given a ``retry_on`` predicate rather than the callable
    to decorate: a lambda of exactly one parameter, or a function whose first parameter
    is annotated with an exception type (see docs/decisions.md)."""
    if not inspect.isfunction(obj):
        return False
    code = obj.__code__
    if obj.__name__ == "<lambda>":
        return code.co_argcount == 1 and not code.co_flags & inspect.CO_VARARGS
    if not code.co_argcount or code.co_varnames[0] not in obj.__annotations__:
        return False  # no annotated first parameter: nothing to read (and no cost)
    first = _first_positional(obj)
    return isinstance(first, inspect.Parameter) and _is_exception_annotation(first.annotation)


def refuse_retry_mistakes(policy: Any) -> None:
    """``retry(X)`` where ``X`` is a habit from another library or a missing call."""
    hint = None
    if _is_exception_type(policy):
        hint = f"did you mean retry(retry_on={policy.__name__})?"
    elif isinstance(policy, tuple | list) and policy and all(map(_is_exception_type, policy)):
        names = ", ".join(t.__name__ for t in policy)
        hint = f"did you mean retry(retry_on=({names}))?"
    elif policy is Policy:
        hint = "did you mean retry(Policy())? (a Policy object, not the class)"
    elif inspect.ismethod(policy) and policy.__self__ is Policy:
        hint = f"did you mean retry(Policy.{policy.__name__}())? (call the preset)"
    elif _looks_like_predicate(policy):
        hint = (
            "a predicate goes in a keyword: did you mean retry(retry_on=...) (given the "
            "exception) or retry(retry_if_result=...) (given the result)? To retry a "
            "one-argument lambda itself, use retry()(func)"
        )
    if hint is not None:
        raise ConfigError(f"retry({callable_name(policy)}): {hint}")


def check_hosts_callable(hosts: Any) -> None:
    """A hosts callable takes no arguments and is not ``async``: anything else is most
    likely ``@failover`` written bare on the function to decorate."""
    name = callable_name(hosts)
    bare = (
        f"failover({name}): hosts must be a sequence of endpoints or a zero-argument "
        f"callable returning one; did you write @failover without its hosts? "
        f"Use @failover(['db1:5432', 'db2:5432'])"
    )
    if inspect.iscoroutinefunction(unwrap(hosts)):
        raise ConfigError(bare)
    try:
        inspect.signature(hosts).bind()
    except TypeError:
        raise ConfigError(bare) from None
    except ValueError:
        pass  # no signature to read: trust it


def check_endpoint_param(func: Any, param: str) -> None:
    """The decorated callable must accept the endpoint as keyword ``param``."""
    target = unwrap(func)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return  # no signature to read (some builtins): trust it
    found = parameters.get(param)
    if found is None:
        ok = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    else:
        ok = found.kind is not found.POSITIONAL_ONLY
    if not ok:
        raise ConfigError(
            f"failover: {callable_name(func)} has no keyword parameter {param!r} to receive "
            f"the endpoint; add one ({param}: str = retryx.ENDPOINT) or set param= to the "
            "name of the parameter it has"
        )


def _excludes_exceptions(annotation: Any) -> bool:
    """Whether an annotation is a class no exception is an instance of (``int``, ``str``,
    a user's class); ``object``, ``Any``, exception classes and non-classes are not."""
    if (
        not isinstance(annotation, type)
        or annotation is Any
        or annotation is inspect.Parameter.empty
    ):
        return False
    try:
        return not issubclass(annotation, BaseException) and not issubclass(
            BaseException, annotation
        )
    except TypeError:  # a class issubclass cannot answer for (a non-runtime Protocol)
        return False


def check_handler(handler: Any) -> None:
    """A fallback handler takes the exception first: a callable that cannot is most
    likely ``@fallback`` written bare on the function to decorate."""
    first = _first_positional(handler)
    if first is False:
        return
    wrong = first is None or (
        isinstance(first, inspect.Parameter) and _excludes_exceptions(first.annotation)
    )
    if wrong:
        raise ConfigError(
            f"fallback({callable_name(handler)}): a handler is called as "
            "handler(exc, *args, **kwargs) and this one does not take the exception first; "
            "did you write @fallback without its handler? "
            "Use @fallback(handler) or @fallback(value=...)"
        )


def not_a_callable(kind: str, func: Any) -> ConfigError:
    return ConfigError(
        f"{kind}(...) decorates a callable, got {func!r}: was @{kind} written without "
        "its arguments?"
    )


# --- async predicates and hooks, refused where nothing would await them -------------


def _async_func(func: Any) -> bool:
    """Whether calling ``func`` makes an awaitable (a coroutine function, or an object
    whose class defines ``async def __call__``)."""
    return is_async(unwrap(func))


def async_retry_on(policy: Policy) -> Callable[..., Any] | None:
    """The async ``retry_on`` predicate of ``policy``, or ``None``."""
    func = getattr(policy.classifier, "func", None)  # a PredicateClassifier's callable
    return func if func is not None and _async_func(func) else None


def check_async_predicates(name: str, policy: Policy, async_pipeline: bool, layers: Any) -> None:
    """Async predicates are awaited by an async retry layer; anywhere else they would
    never be awaited, so they are refused at decoration."""
    async_on = async_retry_on(policy) is not None
    check = policy.retry_if_result
    async_result = check is not None and _async_func(check)
    if not async_pipeline and (async_on or async_result):
        which = "Policy.retry_on" if async_on else "Policy.retry_if_result"
        raise ConfigError(
            f"{name}: {which} is a coroutine function, which only an async callable can "
            "await; use a plain function here (or decorate an async def)"
        )
    for hook in ("on_retry", "on_give_up", "on_success"):
        func = getattr(policy, hook)
        if not async_pipeline and func is not None and _async_func(func):
            raise ConfigError(
                f"{name}: Policy.{hook} is a coroutine function, which only an async "
                "callable can await; use a plain function here (or decorate an async def)"
            )
    fb = layers.get("fallback")
    if async_on and (layers.get("failover") is not None or (fb and fb.defer_to is not None)):
        raise ConfigError(
            f"{name}: Policy.retry_on is a coroutine function; @failover and "
            "fallback(defer_to=...) judge faults without awaiting, so give them a plain "
            "predicate"
        )
