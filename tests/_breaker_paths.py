"""The decorated functions of the breaker paths model (tests/test_breaker_paths_model.py):
one per path a guarded call can take, and what their bodies do."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from retryx import (
    AllEndpointsFailed,
    CircuitBreaker,
    CircuitOpenError,
    backoff,
    circuit_breaker,
    failover,
    retry,
)
from tests._breaker_model import counts, raise_for

__all__ = [
    "HOSTS",
    "Again",
    "HeldBlock",
    "Hold",
    "Script",
    "act",
    "breaker_of",
    "described",
    "elsewhere",
    "make_functions",
    "outcome_of",
]

HOSTS = ("a", "b")
_elsewhere: list[CircuitBreaker] = []


def elsewhere() -> CircuitBreaker:
    """A breaker opened by hand (once, logged once), whose refusals bodies let out."""
    if not _elsewhere:
        _elsewhere.append(CircuitBreaker("elsewhere"))
        _elsewhere[0].open()
    return _elsewhere[0]


class Script:
    """What a sync call's body does at each endpoint it reaches, in order."""

    def __init__(self, outcomes: list[str], elsewhere: CircuitBreaker) -> None:
        self.outcomes = outcomes
        self.elsewhere = elsewhere
        self.hops: list[str | None] = []

    def run(self, hop: str | None) -> str:
        self.hops.append(hop)
        return act(self.outcomes.pop(0), hop, self.elsewhere)


class Hold:
    """An awaitable that suspends its coroutine until the test sends it the outcome."""

    def __init__(self, hop: str | None) -> None:
        self.hop = hop

    def __await__(self) -> Generator[Hold, str, str]:
        outcome = yield self
        return outcome


class Again(Exception):
    """What the retry policy retries (and the breakers' counts calls permanent)."""


def act(outcome: str, hop: str | None, elsewhere: CircuitBreaker) -> str:
    """Do what ``outcome`` says: return, or raise."""
    if outcome == "again":
        raise Again(outcome)
    if outcome == "refused":
        with elsewhere:  # opened by hand: a real CircuitOpenError
            pass
    raise_for(outcome)
    return f"served by {hop}"


def described(exc: BaseException) -> tuple[Any, ...]:
    """An exception as the model writes its expectation."""
    if isinstance(exc, AllEndpointsFailed):
        return ("AllEndpointsFailed", tuple((h, described(e)) for h, e in exc.errors.items()))
    if isinstance(exc, CircuitOpenError):
        return ("CircuitOpenError", exc.breaker, exc.retry_after)
    return (type(exc).__name__,)


def outcome_of(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("returned", call())
    except Exception as exc:
        return described(exc)


class HeldBlock:
    """A ``with breaker:`` block entered and left by hand, driven like a coroutine."""

    def __init__(self, breaker: CircuitBreaker, elsewhere: CircuitBreaker) -> None:
        self.breaker = breaker
        self.elsewhere = elsewhere
        self.entered = False

    def send(self, outcome: str | None) -> Hold:
        if not self.entered:
            self.breaker.__enter__()
            self.entered = True
            return Hold(None)
        assert outcome is not None
        try:
            value = act(outcome, None, self.elsewhere)
        except BaseException as exc:
            if not self.breaker.__exit__(type(exc), exc, exc.__traceback__):
                raise
            raise AssertionError("__exit__ swallowed the exception") from exc
        self.breaker.__exit__(None, None, None)
        raise StopIteration(value)

    def throw(self, exc: BaseException) -> Hold:
        if not self.breaker.__exit__(type(exc), exc, None):
            raise exc
        raise AssertionError("__exit__ swallowed the exception")

    def close(self) -> None:
        if self.entered:
            self.breaker.__exit__(GeneratorExit, GeneratorExit(), None)


def make_functions(
    b: CircuitBreaker, templates: list[CircuitBreaker], elsewhere: CircuitBreaker
) -> dict[str, Any]:
    """Every decorated function, by path: a sync one runs its ``Script``, an async one
    returns a coroutine suspending at each body (``Hold``); failover's take ``host=``."""

    @circuit_breaker(b)
    def exact(script: Script) -> str:
        return script.run(None)

    @b  # the breaker as a decorator
    def general(*args: Any, **kwargs: Any) -> str:
        return args[0].run(None)  # type: ignore[no-any-return]

    @circuit_breaker(b)
    async def async_exact(tag: None) -> str:
        return act(await Hold(None), None, elsewhere)

    @circuit_breaker(b)
    async def async_general(*args: Any, **kwargs: Any) -> str:
        return act(await Hold(None), None, elsewhere)

    class Service:
        @circuit_breaker(b)
        def method(self, script: Script) -> str:
            return script.run(None)

        @circuit_breaker(b)
        @classmethod
        def klass(cls, script: Script) -> str:
            return script.run(None)

        @circuit_breaker(b)
        @staticmethod
        def static(script: Script) -> str:
            return script.run(None)

        @circuit_breaker(b)
        async def async_method(self, tag: None) -> str:
            return act(await Hold(None), None, elsewhere)

        @circuit_breaker(b)
        @classmethod
        async def async_klass(cls, tag: None) -> str:
            return act(await Hold(None), None, elsewhere)

        @circuit_breaker(b)
        @staticmethod
        async def async_static(tag: None) -> str:
            return act(await Hold(None), None, elsewhere)

    class Handler:
        def __call__(self, script: Script) -> str:
            return script.run(None)

    class AsyncHandler:
        async def __call__(self, tag: None) -> str:
            return act(await Hold(None), None, elsewhere)

    def with_block(script: Script) -> str:
        with b:
            return script.run(None)

    async def async_with_block(tag: None) -> str:
        async with b:
            return act(await Hold(None), None, elsewhere)

    @circuit_breaker(b)
    def generator(script: Script) -> Generator[str, None, None]:
        yield script.run(None)

    @circuit_breaker(b)
    async def async_generator(tag: None) -> AsyncGenerator[str, None]:
        yield act(await Hold(None), None, elsewhere)

    def iterated(script: Script) -> str:
        (item,) = generator(script)
        return item

    async def async_iterated(tag: None) -> str:
        (item,) = [item async for item in async_generator(tag)]
        return item

    # Attempt 1 through the driver's guard, attempt 2 through the runner's attempt.
    again = retry(attempts=2, backoff=backoff.none(), jitter=None, retry_on=Again, log=False)

    @again
    @circuit_breaker(b)
    def retried(script: Script) -> str:
        return script.run(None)

    @again
    @circuit_breaker(b)
    async def async_retried(tag: None) -> str:
        return act(await Hold(None), None, elsewhere)

    @failover(HOSTS, breaker=templates[0])
    def swept(script: Script, host: str) -> str:
        return script.run(host)

    @failover(HOSTS, breaker=templates[1])
    @circuit_breaker(b)
    def swept_stacked(script: Script, host: str) -> str:
        return script.run(host)

    @failover(HOSTS, breaker=templates[2])
    async def async_swept(tag: None, host: str) -> str:
        return act(await Hold(host), host, elsewhere)

    @failover(HOSTS, breaker=templates[3])
    @circuit_breaker(b)
    async def async_swept_stacked(tag: None, host: str) -> str:
        return act(await Hold(host), host, elsewhere)

    service = Service()
    return {
        "exact": exact,
        "general": general,
        "method": service.method,
        "classmethod": Service.klass,
        "staticmethod": Service.static,
        "object": circuit_breaker(b)(Handler()),
        "with": with_block,
        "retry": retried,
        "generator": iterated,
        "async exact": async_exact,
        "async general": async_general,
        "async method": service.async_method,
        "async classmethod": Service.async_klass,
        "async staticmethod": Service.async_static,
        "async object": circuit_breaker(b)(AsyncHandler()),
        "async with": async_with_block,
        "async retry": async_retried,
        "async generator": async_iterated,
        "failover": swept,
        "failover stacked": swept_stacked,
        "async failover": async_swept,
        "async failover stacked": async_swept_stacked,
    }


def breaker_of(name: str, s: dict[str, Any]) -> CircuitBreaker:
    minimum = max(1, s["window"] - s["extra"])
    return CircuitBreaker(
        name,
        failure_threshold=s["threshold"],
        failure_rate=s["rate"] if s["by_rate"] else None,
        window=s["window"] + (0 if s["by_rate"] else s["extra"]),
        minimum_calls=minimum,
        recovery_timeout=s["timeout"],
        half_open_max_calls=s["max_trials"],
        success_threshold=s["to_close"],
        counts=counts,
    )
