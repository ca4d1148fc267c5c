"""A deferred call as data and back: its importable name, its JSON arguments, its replay.

``target_name`` and ``to_json`` check at deferral time that a call can be stored and
re-run by another process; ``invoke`` re-runs a stored one through its own pipeline.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import sys
import threading
from contextvars import ContextVar
from typing import Any

from ._context import SCOPE, ReplayScope
from ._errors import ConfigError
from ._replay_model import ReplayEntry, describe_error

__all__ = ["REPLAYING", "called_through_classmethod", "invoke", "target_name", "to_json"]

# The call_id being replayed in this context. The replayed call's own
# ``fallback(defer_to=...)`` re-raises instead of storing a second entry, so the
# failure counts against the stored one.
REPLAYING: ContextVar[str | None] = ContextVar("retryx_replaying", default=None)

_MAX_DEPTH = 100


def called_through_classmethod(pipeline: Any, first: Any) -> bool:
    """Whether ``first`` is the class a classmethod over this pipeline was called on."""
    from ._wrapper import find

    if not isinstance(first, type):
        return False
    name = getattr(pipeline.target, "__name__", None)
    raw = inspect.getattr_static(first, name, None) if isinstance(name, str) else None
    if not isinstance(raw, classmethod):
        return False
    return find(raw.__func__) is pipeline


def target_name(pipeline: Any, instance: Any) -> str:
    """``module:qualname`` that imports back to this very pipeline, else ``ConfigError``."""
    from ._drivers import pipeline_of_function
    from ._wrapper import Wrapper, find

    func = pipeline.target
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
            and pipeline_of_function(inspect.getattr_static(owner, method, None)) is not None
        ):
            raise ConfigError(
                f"cannot defer {label}: it is a method of an instance, whose state cannot be "
                "stored; defer a function, staticmethod or classmethod that takes plain data"
            )
    if find(obj) is not pipeline:
        raise ConfigError(
            f"cannot defer {stored}:{qualname}: that name imports something else than the "
            "decorated function (was it renamed or wrapped again?)"
        )
    return f"{stored}:{qualname}"


def to_json(value: Any, what: str, where: str) -> str:
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


def invoke(entry: ReplayEntry) -> str | None:
    """Run one stored call through its pipeline; ``None`` on success, else the error."""
    scope_token = SCOPE.set(ReplayScope(entry.call_id))
    replay_token = REPLAYING.set(entry.call_id)
    try:
        result = _resolve(entry.target)(*entry.args, **entry.kwargs)
        if inspect.isawaitable(result):
            _run_awaitable(result)
    except Exception as exc:
        return describe_error(exc)
    finally:
        REPLAYING.reset(replay_token)
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
