"""inject_faults: the chaos decorator of retryx.testing."""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import random
import threading
from typing import Any

import pytest

import retryx._clock as _clock
from retryx._errors import ConfigError
from retryx.testing._chaos import inject_faults


def _pattern(func: Any, n: int = 100) -> list[str]:
    """Call ``func(i)`` n times and name each outcome ('ok' or the exception type)."""
    out = []
    for i in range(n):
        try:
            func(i)
        except Exception as exc:
            out.append(type(exc).__name__)
        else:
            out.append("ok")
    return out


def _make(seed: int | None, rate: float = 0.4) -> Any:
    @inject_faults(rate, (ConnectionResetError, TimeoutError), seed=seed)
    def call(i: int) -> int:
        return i

    return call


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits requested through the retryx clock instead of sleeping."""
    recorded: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(_clock, "sleep", recorded.append)
    monkeypatch.setattr(_clock, "async_sleep", fake_async_sleep)
    return recorded


def test_same_seed_gives_same_fault_pattern() -> None:
    """Two decorators with the same seed inject the same faults over 100 calls."""
    first = _pattern(_make(seed=42))
    second = _pattern(_make(seed=42))
    assert first == second
    assert {"ok", "ConnectionResetError", "TimeoutError"} == set(first)


def test_different_seeds_give_different_patterns() -> None:
    """Different seeds give different fault patterns."""
    assert _pattern(_make(seed=1)) != _pattern(_make(seed=2))


def test_rate_matches_roughly() -> None:
    """The share of injected faults is close to the rate."""
    faults = sum(outcome != "ok" for outcome in _pattern(_make(seed=3, rate=0.25), n=2000))
    assert 400 <= faults <= 600


def test_without_seed_uses_the_shared_retryx_random_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a seed the pattern follows ``_clock.rng``, read at call time."""
    call = _make(seed=None)
    monkeypatch.setattr(_clock, "rng", random.Random(9))
    first = _pattern(call)
    _clock.rng.seed(9)
    second = _pattern(call)
    assert first == second


def test_rate_zero_never_raises() -> None:
    """With rate 0 every call runs and returns."""
    assert _pattern(_make(seed=None, rate=0)) == ["ok"] * 100


def test_rate_one_always_raises_without_running_the_function() -> None:
    """With rate 1 every call raises and the function never runs."""
    ran: list[int] = []

    @inject_faults(1, ValueError)
    def call(i: int) -> None:
        ran.append(i)

    assert _pattern(call) == ["ValueError"] * 100
    assert ran == []


def test_instance_is_raised_as_a_fresh_copy() -> None:
    """An exception instance is raised as a new copy each time, with its args and notes."""
    template = OSError(104, "reset by chaos")
    template.add_note("injected")

    @inject_faults(1, template)
    def call() -> None:
        pass

    raised = []
    for _ in range(2):
        with pytest.raises(OSError) as info:
            call()
        raised.append(info.value)
    first, second = raised
    assert first is not second
    assert first is not template
    assert (second.errno, second.strerror) == (104, "reset by chaos")
    first.add_note("added later")
    assert second.__notes__ == ["injected"]
    assert template.__notes__ == ["injected"]


def test_uncopyable_instance_is_raised_itself() -> None:
    """An instance that copy.copy cannot rebuild is raised as is."""

    class Needy(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(a + b)

    template = Needy(1, 2)

    @inject_faults(1, template)
    def call() -> None:
        pass

    with pytest.raises(Needy) as info:
        call()
    assert template is info.value


def test_latency_is_waited_through_the_retryx_clock(sleeps: list[float]) -> None:
    """Latency is requested from ``_clock.sleep`` before every call, fault or not."""

    @inject_faults(0.5, ValueError, seed=5, latency=0.25)
    def call(i: int) -> int:
        return i

    outcomes = _pattern(call, n=20)
    assert sleeps == [0.25] * 20
    assert {"ok", "ValueError"} == set(outcomes)


def test_latency_accepts_timedelta(sleeps: list[float]) -> None:
    """A timedelta latency is converted to seconds."""

    @inject_faults(0, ValueError, latency=datetime.timedelta(milliseconds=1500))
    def call() -> str:
        return "done"

    assert call() == "done"
    assert sleeps == [1.5]


def test_no_latency_means_no_wait(sleeps: list[float]) -> None:
    """Without latency (or with 0) the clock is never asked to wait."""

    @inject_faults(0, ValueError, latency=0)
    def call() -> str:
        return "done"

    call()
    assert sleeps == []


def test_async_function_stays_a_coroutine_function(sleeps: list[float]) -> None:
    """A decorated async def is still a coroutine function, waits via async_sleep and injects."""
    ran: list[int] = []

    @inject_faults(1, TimeoutError, latency=0.5)
    async def failing(i: int) -> int:
        ran.append(i)
        return i

    @inject_faults(0, TimeoutError)
    async def passing(i: int) -> int:
        return i * 2

    assert inspect.iscoroutinefunction(failing)
    assert inspect.iscoroutinefunction(passing)

    async def main() -> int:
        with pytest.raises(TimeoutError):
            await failing(1)
        return await passing(21)

    assert asyncio.run(main()) == 42
    assert ran == []
    assert sleeps == [0.5]


def test_async_seeded_pattern_matches_sync() -> None:
    """Async calls consume the seeded random source exactly like sync calls."""

    @inject_faults(0.4, (ConnectionResetError, TimeoutError), seed=42)
    async def call(i: int) -> int:
        return i

    async def main() -> list[str]:
        out = []
        for i in range(100):
            try:
                await call(i)
            except Exception as exc:
                out.append(type(exc).__name__)
            else:
                out.append("ok")
        return out

    assert _pattern(_make(seed=42)) == asyncio.run(main())


class Service:
    """A class whose methods are decorated in every binding form."""

    def __init__(self) -> None:
        self.calls = 0

    @inject_faults(0, ValueError)
    def method(self, x: int) -> tuple[Service, int]:
        self.calls += 1
        return self, x

    @inject_faults(0, ValueError)
    @classmethod
    def klass(cls, x: int) -> tuple[type[Service], int]:
        return cls, x

    @inject_faults(0, ValueError)
    @staticmethod
    def static(x: int) -> int:
        return x

    @inject_faults(0, ValueError)
    async def amethod(self, x: int) -> tuple[Service, int]:
        return self, x

    @inject_faults(1, KeyError)
    def broken(self) -> None:
        self.calls += 1


def test_method_binding() -> None:
    """Instance, class and static methods receive the right first argument."""
    service = Service()
    assert (service, 1) == service.method(1)
    assert (Service, 2) == Service.klass(2)
    assert (Service, 3) == service.klass(3)
    assert Service.static(4) == 4
    assert service.static(5) == 5
    assert (service, 6) == Service.method(service, 6)
    assert inspect.iscoroutinefunction(service.amethod)
    assert (service, 7) == asyncio.run(service.amethod(7))
    with pytest.raises(KeyError):
        service.broken()
    assert service.calls == 2


def test_wrapper_keeps_the_function_identity() -> None:
    """The decorated function keeps its name and docstring."""

    @inject_faults(0, ValueError)
    def documented() -> None:
        """Some docs."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Some docs."


def test_threads_share_a_seeded_decorator() -> None:
    """Calls from several threads together consume the seeded source like one thread."""
    call = _make(seed=11)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for outcome in _pattern(call, n=50):
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(_pattern(_make(seed=11), n=200)) == sorted(outcomes)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"rate": -0.1, "exceptions": ValueError}, "rate"),
        ({"rate": 1.5, "exceptions": ValueError}, "rate"),
        ({"rate": float("nan"), "exceptions": ValueError}, "rate"),
        ({"rate": "0.5", "exceptions": ValueError}, "rate"),
        ({"rate": True, "exceptions": ValueError}, "rate"),
        ({"rate": 0.5, "exceptions": ()}, "exceptions"),
        ({"rate": 0.5, "exceptions": "ValueError"}, "exceptions"),
        ({"rate": 0.5, "exceptions": (ValueError, 3)}, "exceptions"),
        ({"rate": 0.5, "exceptions": int}, "exceptions"),
        ({"rate": 0.5, "exceptions": UnicodeDecodeError}, "exceptions"),
        ({"rate": 0.5, "exceptions": ValueError, "latency": -1}, "latency"),
        ({"rate": 0.5, "exceptions": ValueError, "latency": float("inf")}, "latency"),
        ({"rate": 0.5, "exceptions": ValueError, "latency": "1s"}, "latency"),
        ({"rate": 0.5, "exceptions": ValueError, "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    """Each bad argument raises ConfigError naming its parameter, before any function."""
    with pytest.raises(ConfigError, match=rf"inject_faults\.{parameter}"):
        inject_faults(**kwargs)


def test_generators_are_rejected() -> None:
    """Generator and async generator functions are rejected at decoration."""

    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    for func in (gen, agen, functools.partial(gen), staticmethod(gen)):
        with pytest.raises(ConfigError, match="generator"):
            inject_faults(0.5, ValueError)(func)


def test_non_callables_are_rejected() -> None:
    """Decorating something that is not callable raises ConfigError."""
    with pytest.raises(ConfigError, match="callable"):
        inject_faults(0.5, ValueError)(42)  # type: ignore[arg-type]


def test_async_callable_object_is_detected() -> None:
    """An object whose __call__ is async gets an awaitable wrapper that injects faults."""

    class Handler:
        async def __call__(self, x: int) -> int:
            return x

    wrapped = inject_faults(1, TimeoutError)(Handler())

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await wrapped(1)

    asyncio.run(main())
