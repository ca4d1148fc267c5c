"""@fallback: a handler or a constant when the pipeline finally fails."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from retryx import (
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    circuit_breaker,
    describe,
    fallback,
    retry,
    stats,
)
from retryx.testing import FakeClock, FaultSequence


class Queue:
    """Enough of a replay queue for fallback(defer_to=...) to accept it."""

    def defer(self, *args: Any) -> None:
        raise AssertionError("not used here")


def test_handler_gets_the_exception_and_the_arguments() -> None:
    """The handler is called with the exception, then the call's arguments."""
    error = ConnectionError("down")
    seen: list[Any] = []

    def handler(exc: Exception, *args: Any, **kwargs: Any) -> str:
        seen.append((exc, args, kwargs))
        return "degraded"

    @fallback(handler)
    def fetch(key: str, *, fresh: bool = False) -> str:
        raise error

    assert "degraded" == fetch("k", fresh=True)
    assert [(error, ("k",), {"fresh": True})] == seen


def test_value_is_returned() -> None:
    """fallback(value=...) returns the constant when the call fails."""

    @fallback(value=[])
    def fetch() -> list[int]:
        raise ConnectionError("down")

    assert [] == fetch()


def test_value_none_is_a_value() -> None:
    """fallback(value=None) is a constant like any other."""

    @fallback(value=None)
    def fetch() -> int:
        raise ConnectionError("down")

    assert None is fetch()


def test_success_skips_the_fallback() -> None:
    """A call that succeeds returns its own result."""

    @fallback(value="degraded")
    def fetch() -> str:
        return "fresh"

    assert "fresh" == fetch()


def test_permanent_faults_fall_back_too() -> None:
    """Any final Exception falls back, permanent ones included."""

    @fallback(lambda exc: type(exc).__name__)
    def fetch() -> str:
        raise KeyError("missing")

    assert "KeyError" == fetch()


def test_base_exceptions_are_not_caught() -> None:
    """KeyboardInterrupt and friends pass through the fallback."""

    @fallback(value="degraded")
    def fetch() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch()


def test_handler_error_propagates() -> None:
    """An exception raised by the handler itself reaches the caller."""

    def handler(exc: Exception) -> str:
        raise RuntimeError("handler broke") from exc

    @fallback(handler)
    def fetch() -> str:
        raise ConnectionError("down")

    with pytest.raises(RuntimeError, match="handler broke"):
        fetch()


def test_fallback_after_retries_give_up(clock: FakeClock) -> None:
    """With @retry, the fallback runs once, after the last attempt."""
    attempts = FaultSequence(ConnectionError("down"))
    handled: list[Exception] = []

    @fallback(lambda exc: handled.append(exc) or "degraded")
    @retry(attempts=3)
    def fetch() -> str:
        return attempts()  # type: ignore[no-any-return]

    assert "degraded" == fetch()
    assert 3 == attempts.calls
    assert [ConnectionError] == [type(e) for e in handled]
    assert "gave up after 3 attempts" in "".join(handled[0].__notes__)
    assert (1, 1, 3) == (stats(fetch).calls, stats(fetch).failures, stats(fetch).attempts)


def test_fallback_on_open_breaker(clock: FakeClock) -> None:
    """A call rejected by an open breaker falls back with the CircuitOpenError."""
    breaker = CircuitBreaker("db")
    breaker.open()

    @fallback(lambda exc: exc)
    @circuit_breaker(breaker)
    def fetch() -> Any:
        raise AssertionError("not called")

    result = fetch()
    assert isinstance(result, CircuitOpenError)
    assert "db" == result.breaker


def test_describe() -> None:
    """fallback is the outermost layer whatever the written order."""

    @retry
    @fallback(value=0)
    def fetch() -> int:
        return 1

    assert ["fallback", "retry"] == describe(fetch)


# --- async ---------------------------------------------------------------------------------


def test_async_handler_is_awaited() -> None:
    """A coroutine function handler is awaited."""

    async def handler(exc: Exception, key: str) -> str:
        await asyncio.sleep(0)
        return f"cached {key}"

    @fallback(handler)
    async def fetch(key: str) -> str:
        raise ConnectionError("down")

    assert inspect.iscoroutinefunction(fetch)
    assert "cached k" == asyncio.run(fetch("k"))


def test_sync_handler_on_coroutine_function() -> None:
    """A plain handler on a coroutine function returns its value."""

    @fallback(lambda exc, key: f"cached {key}")
    async def fetch(key: str) -> str:
        raise ConnectionError("down")

    assert "cached k" == asyncio.run(fetch("k"))


def test_async_value() -> None:
    """fallback(value=...) on a coroutine function returns the constant."""

    @fallback(value="degraded")
    async def fetch() -> str:
        raise ConnectionError("down")

    assert "degraded" == asyncio.run(fetch())


def test_async_success_skips_the_fallback() -> None:
    """A coroutine that succeeds returns its own result."""

    @fallback(value="degraded")
    async def fetch() -> str:
        return "fresh"

    assert "fresh" == asyncio.run(fetch())


def test_async_fallback_after_retries(clock: FakeClock) -> None:
    """With @retry on a coroutine function, the handler runs after the last attempt."""
    attempts = FaultSequence(TimeoutError("slow"))

    async def handler(exc: Exception) -> str:
        return type(exc).__name__

    @retry(attempts=2)
    @fallback(handler)
    async def fetch() -> str:
        return attempts()  # type: ignore[no-any-return]

    assert "TimeoutError" == asyncio.run(fetch())
    assert 2 == attempts.calls


# --- methods --------------------------------------------------------------------------------


def record(exc: Exception, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return args


class Client:
    """Every kind of method, each failing, each with a fallback recording its arguments."""

    @fallback(record)
    def method(self, x: int) -> Any:
        raise ConnectionError("down")

    @fallback(record)
    @classmethod
    def above_classmethod(cls, x: int) -> Any:
        raise ConnectionError("down")

    @classmethod
    @fallback(record)
    def below_classmethod(cls, x: int) -> Any:
        raise ConnectionError("down")

    @fallback(record)
    @staticmethod
    def above_staticmethod(x: int) -> Any:
        raise ConnectionError("down")

    @staticmethod
    @fallback(record)
    def below_staticmethod(x: int) -> Any:
        raise ConnectionError("down")

    @fallback(record)
    async def coroutine_method(self, x: int) -> Any:
        raise ConnectionError("down")


def test_method_handler_gets_the_instance_first() -> None:
    """For an instance method the handler receives the instance first."""
    client = Client()
    assert (client, 1) == client.method(1)
    assert (client, 1) == Client.method(client, 1)


def test_coroutine_method_handler_gets_the_instance_first() -> None:
    """For an async method the handler receives the instance first."""
    client = Client()
    assert (client, 1) == asyncio.run(client.coroutine_method(1))


@pytest.mark.parametrize("name", ["above_classmethod", "below_classmethod"])
def test_classmethod_handler_gets_the_class_first(name: str) -> None:
    """For a classmethod the handler receives the class first, via the class or an instance."""
    assert (Client, 1) == getattr(Client, name)(1)
    assert (Client, 1) == getattr(Client(), name)(1)


@pytest.mark.parametrize("name", ["above_staticmethod", "below_staticmethod"])
def test_staticmethod_handler_gets_the_arguments_only(name: str) -> None:
    """For a staticmethod the handler receives the call's arguments only."""
    assert (1,) == getattr(Client, name)(1)
    assert (1,) == getattr(Client(), name)(1)


# --- configuration errors --------------------------------------------------------------------


def test_neither_handler_nor_value() -> None:
    """fallback() with nothing to fall back to is a ConfigError."""
    with pytest.raises(ConfigError):
        fallback()


def test_explicit_none_handler_is_neither() -> None:
    """fallback(None) is the same as giving nothing."""
    with pytest.raises(ConfigError):
        fallback(None)


def test_both_handler_and_value() -> None:
    """fallback(handler, value=...) is ambiguous: ConfigError."""
    with pytest.raises(ConfigError):
        fallback(lambda exc: 1, value=2)


def test_handler_must_be_callable() -> None:
    """A handler that cannot be called is a ConfigError."""
    with pytest.raises(ConfigError):
        fallback(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "extra", [{"value": 1}, {"value": None}, {"handler": lambda exc: 1}], ids=["value", "none", "h"]
)
def test_defer_to_cannot_be_combined(extra: dict[str, Any]) -> None:
    """defer_to= with a handler or a value is a ConfigError."""
    with pytest.raises(ConfigError, match="defer_to"):
        fallback(defer_to=Queue(), **extra)


def test_fallback_twice_is_an_error() -> None:
    """Two fallbacks on one callable is a ConfigError at decoration."""
    with pytest.raises(ConfigError):

        @fallback(value=1)
        @fallback(value=2)
        def fetch() -> int:
            return 0
