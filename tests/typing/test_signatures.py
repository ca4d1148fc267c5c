"""Static proof (``mypy --strict`` and ``pyright``, strict) that retryx decorators keep
signatures.

Nothing here runs under pytest: the checks live in functions whose names pytest does
not collect, and importing the module only defines them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sized
from typing import Any, TypeVar, assert_type, cast

import retryx
from retryx import CircuitBreaker, Policy, carry, circuit_breaker, failover, fallback, retry
from retryx._store import BreakerStore, BudgetStore, SharedBreaker, SharedBudget

T = TypeVar("T")


def result_of(c: Coroutine[Any, Any, T]) -> T:
    """The type a coroutine produces; accepts nothing but a coroutine (never run here)."""
    c.close()
    return cast(T, None)


# --- functions ---------------------------------------------------------------------------


@retry
def bare(x: int, *, y: str = "") -> bytes:
    return b""


@retry()
def called(x: int, *, y: str = "") -> bytes:
    return b""


@retry(Policy(attempts=2))
def with_policy(x: int, *, y: str = "") -> bytes:
    return b""


@retry(attempts=5, deadline=3.0)
def with_fields(x: int, *, y: str = "") -> bytes:
    return b""


@retry("payments")
def named(x: int, *, y: str = "") -> bytes:
    return b""


@retry
async def async_bare(x: int, *, y: str = "") -> bytes:
    return b""


@retry(attempts=3, attempt_timeout=1.0)
async def async_fields(x: int, *, y: str = "") -> bytes:
    return b""


@circuit_breaker
def breaker_bare(x: int) -> str:
    return ""


@circuit_breaker(CircuitBreaker("db"))
def breaker_object(x: int) -> str:
    return ""


@circuit_breaker(name="db2", failure_threshold=3)
async def breaker_async(x: int) -> str:
    return ""


@failover(["a:1", "b:2"])
def on_hosts(x: int, *, host: str = "") -> str:
    return host


@failover(lambda: ["a:1"], param="endpoint")
async def on_hosts_async(x: int, *, endpoint: str = "") -> str:
    return endpoint


@fallback(value="default")
def with_value(x: int) -> str:
    return ""


def _sync_handler(exc: Exception, x: int) -> str:
    return "handled"


@fallback(_sync_handler)
def with_handler(x: int) -> str:
    return ""


@fallback(value="default")
async def async_with_value(x: int) -> str:
    return ""


@fallback(value=None)
def with_none(x: int) -> str:
    return ""


async def _handler(exc: Exception, x: int) -> int:
    return 0


@fallback(_handler)
async def async_with_handler(x: int) -> str:
    return ""


@retry
@failover(["a", "b"])
@circuit_breaker
@fallback(value="x")
def stacked(x: int, *, host: str = "") -> str:
    return ""


def check_functions() -> None:
    assert_type(bare(1, y="a"), bytes)
    assert_type(called(1), bytes)
    assert_type(with_policy(1), bytes)
    assert_type(with_fields(1), bytes)
    assert_type(named(1), bytes)
    assert_type(result_of(async_bare(1)), bytes)
    assert_type(result_of(async_fields(1, y="")), bytes)
    assert_type(breaker_bare(1), str)
    assert_type(breaker_object(1), str)
    assert_type(result_of(breaker_async(1)), str)
    assert_type(on_hosts(1), str)
    assert_type(result_of(on_hosts_async(1)), str)
    assert_type(with_value(1), str)
    assert_type(with_handler(1), str)
    assert_type(result_of(async_with_value(1)), str)
    assert_type(with_none(1), str | None)
    assert_type(result_of(async_with_handler(1)), str | int)
    assert_type(stacked(1), str)


async def check_awaiting() -> None:
    assert_type(await async_bare(1), bytes)
    assert_type(await async_with_value(1), str)
    assert_type(await breaker_async(1), str)


def check_bad_calls_are_errors() -> None:
    bare("1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    bare(1, z=2)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    result_of(async_bare())  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue, reportUnknownArgumentType]


# --- methods ------------------------------------------------------------------------------


class Client:
    @retry
    def method(self, x: int) -> str:
        return ""

    @retry(attempts=2)
    async def async_method(self, x: int) -> str:
        return ""

    @classmethod
    @retry
    def cm_below(cls, x: int) -> str:
        return ""

    @retry
    @classmethod
    def cm_above(cls, x: int) -> str:
        return ""

    @classmethod
    @retry(attempts=2)
    async def async_cm_below(cls, x: int) -> str:
        return ""

    @staticmethod
    @retry
    def sm_below(x: int) -> str:
        return ""

    @retry(attempts=2)
    @staticmethod
    def sm_above(x: int) -> str:
        return ""

    @staticmethod
    @circuit_breaker
    async def async_sm_below(x: int) -> str:
        return ""

    @fallback(value="x")
    def method_fallback(self, x: int) -> str:
        return ""


def check_methods(client: Client) -> None:
    assert_type(client.method(1), str)
    assert_type(Client.method(client, 1), str)
    assert_type(result_of(client.async_method(1)), str)
    assert_type(Client.cm_below(1), str)
    assert_type(client.cm_below(1), str)
    assert_type(Client.cm_above(1), str)
    assert_type(client.cm_above(1), str)
    assert_type(result_of(Client.async_cm_below(1)), str)
    assert_type(Client.sm_below(1), str)
    assert_type(client.sm_below(1), str)
    assert_type(Client.sm_above(1), str)
    assert_type(result_of(Client.async_sm_below(1)), str)
    assert_type(client.method_fallback(1), str)
    client.method("1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Client.cm_below("1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Client.sm_above("1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# --- callables passed in directly -------------------------------------------------------------


def check_direct(connect: Callable[[tuple[str, int]], None]) -> None:
    retried = retry(Policy(attempts=2))(connect)
    assert_type(retried, Callable[[tuple[str, int]], None])
    assert_type(retry(len)("abc"), int)


# --- carry: the same callable, bound to the calling context ------------------------------------


def check_carry() -> None:
    assert_type(carry(len), Callable[[Sized], int])
    assert_type(carry(bare)(1, y="a"), bytes)
    assert_type(result_of(carry(async_bare)(1)), bytes)
    carry(bare)("1", y="a")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# --- breakers: introspection and generators (section 17) ------------------------------------


@circuit_breaker(CircuitBreaker("rows"))
def breaker_rows(n: int) -> Iterator[int]:
    yield n


@circuit_breaker(name="arows")
async def breaker_arows(n: int) -> AsyncIterator[int]:
    yield n


def check_breakers() -> None:
    breaker = CircuitBreaker("db")
    assert_type(breaker.failure_count, int)
    assert_type(breaker.last_failure, BaseException | None)
    assert_type(breaker.opened_at, float | None)
    assert_type(breaker.half_open(), None)
    assert_type(retryx.breakers(), list[CircuitBreaker])
    assert_type(breaker_rows(1), Iterator[int])
    assert_type(breaker_arows(1), AsyncIterator[int])
    assert_type(retryx.events.BreakerCall("db", "success").outcome, str)
    retryx.redis.RedisStore("redis://localhost:6379", fallback_state="open")
    retryx.redis.RedisStore("redis://x", fallback_state="half")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def check_store_protocols(
    store: retryx.redis.RedisStore, breaker: CircuitBreaker
) -> tuple[BreakerStore, BudgetStore, SharedBreaker, SharedBudget]:
    # RedisStore is what a breaker and a budget call; they are what a store may use.
    assert_type(breaker.store, BreakerStore | None)
    return store, store, breaker, retryx.RetryBudget(name="a")
