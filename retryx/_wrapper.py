"""The ``wrapt`` wrappers of pipelines, and finding the pipeline behind a callable.

A plain function is decorated into a plain function (its driver, ``_drivers``);
anything else (classmethod and staticmethod objects, callable objects, partials,
builtins) into a ``Wrapper``, a ``wrapt.FunctionWrapper`` whose wrapper is the
same generated driver in wrapt's signature. Either way the pipeline is found
again by ``find`` (``describe``, ``stats``, stacking, ``replay``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from . import _breaker_gen, _drivers, _switches
from ._errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._pipeline import Pipeline
    from ._policy import Policy, PolicyFields

__all__ = [
    "DirectWrapper",
    "GeneratorWrapper",
    "Wrapper",
    "find",
    "is_async",
    "override",
    "own_pipeline",
    "unwrap",
]


class Wrapper(wrapt.FunctionWrapper):  # type: ignore[misc]  # wrapt 1.x ships no types
    """One wrapper carrying every retryx layer of a callable (``_self_pipeline``)."""

    # wrapt's C ``__get__`` looks this up on subclasses; when it is missing the
    # failed lookup (an AttributeError raised and cleared) costs more than the
    # whole binding, on every method access.
    __bound_function_wrapper__ = wrapt.BoundFunctionWrapper

    def __init__(self, wrapped: Any, pipeline: Pipeline) -> None:
        super().__init__(wrapped, _drivers.proxy_driver(pipeline))
        self._self_pipeline = pipeline
        self._self_layers = pipeline.layers

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled by reference, like the plain function it decorates.
        return unwrap(self.__wrapped__).__qualname__


class DirectWrapper(Wrapper):
    """Base of the wrappers of builtins.

    ``_decorators.make`` gives each one its own subclass whose ``__call__`` is the
    driver's function (``retryx._drivers``): calling the wrapper then costs one
    Python frame, instead of wrapt's generic ``__call__``, which probes the
    function's ``__self__`` on every call (a failed attribute lookup).
    """


class GeneratorWrapper(Wrapper):
    """A breaker-only pipeline on a generator function or an async generator function
    (``retryx._breaker_gen``): no driver, each call returns a guarded generator."""

    def __init__(self, wrapped: Any, pipeline: Pipeline, kind: str) -> None:
        wrapper = _breaker_gen.wrapper_of(pipeline, kind == "an async generator")
        wrapt.FunctionWrapper.__init__(self, wrapped, wrapper)
        pipeline.target = unwrap(wrapped)
        self._self_pipeline = pipeline
        self._self_layers = pipeline.layers


def unwrap(obj: Any) -> Any:
    """The plain function under classmethod/staticmethod/partial/wrappers."""
    for _ in range(32):
        if isinstance(obj, classmethod | staticmethod):
            obj = obj.__func__
        elif isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, Wrapper) or _drivers.pipeline_of_function(obj) is not None:
            obj = obj.__wrapped__
        else:
            return obj
    return obj


def is_async(target: Any) -> bool:
    """Whether calling ``target`` (unwrapped) makes a coroutine."""
    if inspect.iscoroutinefunction(target):
        return True
    if not inspect.isfunction(target) and not inspect.ismethod(target) and callable(target):
        # An object whose class defines ``async def __call__``.
        return inspect.iscoroutinefunction(type(target).__call__)
    return False


def own_pipeline(obj: Any) -> Pipeline | None:
    """The pipeline of a retryx-decorated callable itself (no looking through methods)."""
    if isinstance(obj, Wrapper):
        pipeline: Pipeline = obj._self_pipeline
        return pipeline
    found: Pipeline | None = _drivers.pipeline_of_function(obj)
    return found


def find(obj: Any) -> Pipeline | None:
    """The pipeline behind a decorated callable, seen directly or through a bound method."""
    for _ in range(8):
        pipeline = own_pipeline(obj)
        if pipeline is not None:
            return pipeline
        parent = getattr(obj, "_self_parent", None)  # a wrapt bound proxy
        if isinstance(parent, Wrapper):
            return own_pipeline(parent)
        inner = getattr(obj, "__func__", None)
        if inner is None:
            return None
        obj = inner
    return None


@contextlib.contextmanager
def override(func: Any, /, **fields: Unpack[PolicyFields]) -> Iterator[Policy]:
    """Run ``func`` (a ``@retry``-decorated callable) with its policy changed by
    ``fields`` inside the block; yields the policy in effect. For tests.

    Raises:
        ConfigError: when ``func`` has no retry layer, or for bad fields.
    """
    pipeline = find(func)
    if pipeline is None or not pipeline.has_retry:
        raise ConfigError(f"override: {func!r} has no @retry layer")
    with _switches.overriding(pipeline, pipeline.policy().replace(**fields)) as policy:
        yield policy
