"""What ``overhead.py`` compares: the libraries, the targets, and each candidate per scenario."""

from __future__ import annotations

import importlib.metadata
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import wrapt
from overhead_harness import Candidate, Fn, NotOffered, unavailable

HOSTS = ("a", "b", "c")
MODES = ("function", "coroutine", "method")
PEERS = ("tenacity", "stamina", "backoff", "pybreaker", "circuitbreaker")


@dataclass
class Libs:
    """The libraries under test; ``None`` when one cannot be imported."""

    retryx: Any = None  # the module, or None
    retryx_error: str = ""
    peers: dict[str, Any] = field(default_factory=dict)  # name -> module or None
    peer_errors: dict[str, str] = field(default_factory=dict)


def load_retryx() -> tuple[ModuleType | None, str]:
    try:
        import retryx
        import retryx.backoff
        from retryx import CircuitBreaker, Policy, circuit_breaker, failover, retry  # noqa: F401
    except Exception as exc:  # not written yet, or broken: report, keep going
        return None, f"{type(exc).__name__}: {exc}"
    return retryx, ""


def load_libs() -> Libs:
    libs = Libs()
    libs.retryx, libs.retryx_error = load_retryx()
    for name in PEERS:
        try:
            libs.peers[name] = __import__(name)
        except Exception as exc:
            libs.peers[name] = None
            libs.peer_errors[name] = f"{type(exc).__name__}: {exc}"
    stamina = libs.peers["stamina"]
    if stamina is not None:
        stamina.set_testing(False)  # real retries, real (zero) waits
    return libs


def lib_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


# --------------------------------------------------------------------------- targets
# Fresh, undecorated callables: every candidate wraps its own copy.


def happy_target(mode: str) -> Fn:
    if mode == "coroutine":

        async def work_async(x: int) -> int:
            return x

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int) -> int:
            return x

        return work_method

    def work(x: int) -> int:
        return x

    return work


def stack_target(mode: str) -> Fn:
    """The full-stack callable receives the endpoint as keyword ``host``."""
    if mode == "coroutine":

        async def work_async(x: int, host: str | None = None) -> int:
            return x if host == "a" else -1

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int, host: str | None = None) -> int:
            return x if host == "a" else -1

        return work_method

    def work(x: int, host: str | None = None) -> int:
        return x if host == "a" else -1

    return work


class Flaky:
    """Makes callables that fail twice with ConnectionError, then succeed, cyclically."""

    def __init__(self) -> None:
        self.calls = [0]

    def target(self, mode: str) -> Fn:
        calls = self.calls
        if mode == "coroutine":

            async def work_async(x: int) -> int:
                calls[0] += 1
                if calls[0] % 3:
                    raise ConnectionError("flaky")
                return x

            return work_async

        def work(x: int) -> int:
            calls[0] += 1
            if calls[0] % 3:
                raise ConnectionError("flaky")
            return x

        return work


@wrapt.decorator
def wrapt_passthrough(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def hand_loop(fn: Fn, mode: str) -> Fn:
    """The floor of retrying: three tries, no sleep, no bookkeeping."""
    if mode == "coroutine":

        async def loop_async(x: int) -> Any:
            for _ in range(2):
                try:
                    return await fn(x)
                except ConnectionError:
                    pass
            return await fn(x)

        return loop_async

    def loop(x: int) -> Any:
        for _ in range(2):
            try:
                return fn(x)
            except ConnectionError:
                pass
        return fn(x)

    return loop


@wrapt.decorator
def wrapt_loop(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    for _ in range(2):
        try:
            return wrapped(*args, **kwargs)
        except ConnectionError:
            pass
    return wrapped(*args, **kwargs)


@wrapt.decorator
async def wrapt_loop_async(wrapped: Fn, instance: Any, args: Any, kwargs: Any) -> Any:
    for _ in range(2):
        try:
            return await wrapped(*args, **kwargs)
        except ConnectionError:
            pass
    return await wrapped(*args, **kwargs)


def retryx_candidate(libs: Libs, label: str, build: Callable[[str], Fn]) -> Candidate:
    if libs.retryx is None:
        return unavailable(label, "retryx", "retryx: not importable")
    return Candidate(label, "retryx", build)


def peer_candidate(
    libs: Libs, label: str, needs: Sequence[str], build: Callable[[str], Fn]
) -> Candidate:
    missing = [n for n in needs if libs.peers.get(n) is None]
    if missing:
        return unavailable(label, "peer", f"{missing[0]}: {libs.peer_errors.get(missing[0], '?')}")
    return Candidate(label, "peer", build)


def retry_happy_candidates(libs: Libs) -> list[Candidate]:
    rx, ten, sta, bac = (
        libs.retryx,
        libs.peers["tenacity"],
        libs.peers["stamina"],
        libs.peers["backoff"],
    )
    return [
        Candidate("bare call", "bare", happy_target),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(happy_target(m))),
        retryx_candidate(libs, "retryx retry", lambda m: rx.retry(attempts=3)(happy_target(m))),
        peer_candidate(
            libs,
            "tenacity",
            ["tenacity"],
            lambda m: ten.retry(stop=ten.stop_after_attempt(3))(happy_target(m)),
        ),
        peer_candidate(
            libs,
            "stamina",
            ["stamina"],
            lambda m: sta.retry(on=ConnectionError, attempts=3)(happy_target(m)),
        ),
        peer_candidate(
            libs,
            "backoff",
            ["backoff"],
            lambda m: bac.on_exception(bac.expo, ConnectionError, max_tries=3)(happy_target(m)),
        ),
    ]


_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"bench-{prefix}-{next(_names)}"


def breaker_candidates(libs: Libs) -> list[Candidate]:
    rx, pyb, cb = libs.retryx, libs.peers["pybreaker"], libs.peers["circuitbreaker"]

    def build_pybreaker(mode: str) -> Fn:
        if mode == "coroutine":
            raise NotOffered("pybreaker: async support needs tornado")
        wrapped: Fn = pyb.CircuitBreaker(fail_max=5)(happy_target(mode))
        return wrapped

    return [
        Candidate("bare call", "bare", happy_target),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(happy_target(m))),
        retryx_candidate(
            libs,
            "retryx circuit_breaker",
            lambda m: rx.circuit_breaker(name=unique("breaker"), failure_threshold=5)(
                happy_target(m)
            ),
        ),
        peer_candidate(libs, "pybreaker", ["pybreaker"], build_pybreaker),
        peer_candidate(
            libs,
            "circuitbreaker",
            ["circuitbreaker"],
            lambda m: cb.circuit(failure_threshold=5)(happy_target(m)),
        ),
    ]


def retryx_stack(libs: Libs, mode: str) -> Fn:
    rx = libs.retryx
    assert rx is not None
    fn = stack_target(mode)
    fn = rx.circuit_breaker(name=unique("stack"), failure_threshold=5)(fn)
    fn = rx.failover(hosts=list(HOSTS), param="host")(fn)
    return rx.retry(attempts=3)(fn)  # type: ignore[no-any-return]


def tenacity_pybreaker_stack(libs: Libs, mode: str) -> Fn:
    """tenacity retry around a hand-written sweep over per-host pybreaker breakers."""
    ten, pyb = libs.peers["tenacity"], libs.peers["pybreaker"]
    assert ten is not None
    assert pyb is not None
    raw = stack_target(mode)
    breakers = {h: pyb.CircuitBreaker(fail_max=5) for h in HOSTS}
    skip = (ConnectionError, pyb.CircuitBreakerError)
    deco = ten.retry(stop=ten.stop_after_attempt(3))

    if mode == "coroutine":
        # pybreaker's own async path needs tornado; its calling() context manager is
        # plain synchronous code and works around an await.
        async def sweep_async(x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    with breakers[h].calling():
                        return await raw(x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_async)  # type: ignore[no-any-return]
    if mode == "method":

        def sweep_method(self: Any, x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return breakers[h].call(raw, self, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_method)  # type: ignore[no-any-return]

    def sweep(x: int) -> Any:
        errors: dict[str, BaseException] = {}
        for h in HOSTS:
            try:
                return breakers[h].call(raw, x, host=h)
            except skip as exc:
                errors[h] = exc
        raise ConnectionError(f"all endpoints failed: {errors}")

    return deco(sweep)  # type: ignore[no-any-return]


def backoff_circuitbreaker_stack(libs: Libs, mode: str) -> Fn:
    """backoff retry around a hand-written sweep over per-host circuitbreaker breakers."""
    bac, cb = libs.peers["backoff"], libs.peers["circuitbreaker"]
    assert bac is not None
    assert cb is not None
    raw = stack_target(mode)
    breakers = {h: cb.CircuitBreaker(failure_threshold=5) for h in HOSTS}
    skip = (ConnectionError, cb.CircuitBreakerError)
    deco = bac.on_exception(bac.expo, ConnectionError, max_tries=3)

    if mode == "coroutine":

        async def sweep_async(x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return await breakers[h].call_async(raw, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_async)  # type: ignore[no-any-return]
    if mode == "method":

        def sweep_method(self: Any, x: int) -> Any:
            errors: dict[str, BaseException] = {}
            for h in HOSTS:
                try:
                    return breakers[h].call(raw, self, x, host=h)
                except skip as exc:
                    errors[h] = exc
            raise ConnectionError(f"all endpoints failed: {errors}")

        return deco(sweep_method)  # type: ignore[no-any-return]

    def sweep(x: int) -> Any:
        errors: dict[str, BaseException] = {}
        for h in HOSTS:
            try:
                return breakers[h].call(raw, x, host=h)
            except skip as exc:
                errors[h] = exc
        raise ConnectionError(f"all endpoints failed: {errors}")

    return deco(sweep)  # type: ignore[no-any-return]


def stack_candidates(libs: Libs) -> list[Candidate]:
    return [
        Candidate("bare call", "bare", stack_bare),
        Candidate("wrapt pass-through", "wrapt", lambda m: wrapt_passthrough(stack_bare(m))),
        retryx_candidate(libs, "retryx retry+failover+breaker", lambda m: retryx_stack(libs, m)),
        peer_candidate(
            libs,
            "tenacity + pybreaker (by hand)",
            ["tenacity", "pybreaker"],
            lambda m: tenacity_pybreaker_stack(libs, m),
        ),
        peer_candidate(
            libs,
            "backoff + circuitbreaker (by hand)",
            ["backoff", "circuitbreaker"],
            lambda m: backoff_circuitbreaker_stack(libs, m),
        ),
    ]


def stack_bare(mode: str) -> Fn:
    """The bare full-stack call: the same body, the endpoint given as a default."""
    if mode == "coroutine":

        async def work_async(x: int, host: str | None = "a") -> int:
            return x if host == "a" else -1

        return work_async
    if mode == "method":

        def work_method(self: Any, x: int, host: str | None = "a") -> int:
            return x if host == "a" else -1

        return work_method

    def work(x: int, host: str | None = "a") -> int:
        return x if host == "a" else -1

    return work


def retry_cost_candidates(libs: Libs, flaky: dict[str, Flaky]) -> list[Candidate]:
    rx, ten, sta, bac = (
        libs.retryx,
        libs.peers["tenacity"],
        libs.peers["stamina"],
        libs.peers["backoff"],
    )

    def fresh(label: str, mode: str) -> Fn:
        flaky[label] = Flaky()
        return flaky[label].target(mode)

    def bare(m: str) -> Fn:
        return hand_loop(fresh("bare loop", m), m)

    def wrapped(m: str) -> Fn:
        deco = wrapt_loop_async if m == "coroutine" else wrapt_loop
        return deco(fresh("wrapt loop", m))

    return [
        Candidate("bare loop", "bare", bare),
        Candidate("wrapt loop", "wrapt", wrapped),
        retryx_candidate(
            libs,
            "retryx retry",
            lambda m: rx.retry(attempts=3, backoff=rx.backoff.none(), jitter="none")(
                fresh("retryx retry", m)
            ),
        ),
        peer_candidate(
            libs,
            "tenacity",
            ["tenacity"],
            lambda m: ten.retry(stop=ten.stop_after_attempt(3), wait=ten.wait_none())(
                fresh("tenacity", m)
            ),
        ),
        peer_candidate(
            libs,
            "stamina",
            ["stamina"],
            lambda m: sta.retry(
                on=ConnectionError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0
            )(fresh("stamina", m)),
        ),
        peer_candidate(
            libs,
            "backoff",
            ["backoff"],
            lambda m: bac.on_exception(
                bac.constant, ConnectionError, max_tries=3, interval=0, jitter=None
            )(fresh("backoff", m)),
        ),
    ]
