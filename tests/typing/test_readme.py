"""The README's and the guide's examples as typed user code, checked by ``mypy --strict``
and ``pyright`` (strict): what a new user copies must type-check.

Nothing here runs under pytest (no ``test_`` functions). Each negative case carries the
error code each checker must report (``# type: ignore[code]`` for mypy,
``# pyright: ignore[rule]`` for pyright); both report unused ignores, so a checker that
stops flagging a mistake fails.
"""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from typing import Any, Never, TypeVar, assert_type, cast

import retryx
from retryx import CircuitBreaker, Policy, backoff
from retryx._context import CallContext  # the record's class (not exported: never built)
from retryx.testing import FaultSequence, fake_time

T = TypeVar("T")


def result_of(c: Coroutine[Any, Any, T]) -> T:
    """The type a coroutine produces (never run here)."""
    c.close()
    return cast(T, None)


# --- README: a one-minute tour --------------------------------------------------------------


@retryx.retry  # 3 attempts, exponential backoff, full jitter
def fetch_user(user_id: int) -> dict[str, str]:
    return {}


@retryx.retry(attempts=5, backoff=backoff.exponential(initial=0.2, max=10), deadline=30)
async def charge(order_id: str) -> None:
    return None


@retryx.retry(Policy.interactive())
@retryx.failover(hosts=["db1:5432", "db2:5432"])
@retryx.circuit_breaker(failure_threshold=5, recovery_timeout=30)
def query(sql: str, *, host: str = retryx.ENDPOINT) -> list[tuple[int, ...]]:
    return []


@retryx.fallback(value=[])
@retryx.retry("payments")
def recent_payments() -> list[str]:
    return []


def check_tour() -> None:
    assert_type(fetch_user(1), dict[str, str])
    assert_type(result_of(charge("o-1")), None)
    assert_type(query("select 1"), list[tuple[int, ...]])  # the endpoint is left out
    assert_type(query("select 1", host="db2:5432"), list[tuple[int, ...]])  # pinned
    assert_type(recent_payments(), list[str])
    assert_type(retryx.describe(query), list[str])
    unsubscribe = retryx.events.subscribe(print)
    unsubscribe()
    assert_type(retryx.stats(recent_payments).calls, int)


def check_testing_snippet() -> None:
    flaky = retryx.retry(attempts=3)(FaultSequence[str](ConnectionError(), "ok"))
    with fake_time() as clock:
        assert_type(flaky(), str)
    assert_type(clock.sleeps, list[float])
    assert_type(retryx.retry(FaultSequence[int](ConnectionError, 1))(), int)  # bare form
    always = FaultSequence(ConnectionError())
    assert_type(always, FaultSequence[Never])  # only faults: it never returns


# --- the lazily loaded modules, after a plain ``import retryx`` --------------------------------


def check_lazy_modules() -> None:
    assert_type(retryx.sockets.connect(["db1:5432", "db2:5432"]), socket.socket)
    assert_type(retryx.testing.FaultSequence[int](1)(), int)
    assert_type(
        retryx.replay.ReplayQueue("sqlite:///replay.db").pending(), list[retryx.replay.ReplayEntry]
    )
    assert_type(retryx.otel.instrument(), None)
    assert_type(retryx.prometheus.instrument(), None)
    assert_type(retryx.httpx.Transport(), retryx.httpx.Transport)
    assert_type(retryx.requests.Adapter(), retryx.requests.Adapter)


def check_middlewares(asgi_app: retryx.asgi.ASGIApp, wsgi_app: retryx.wsgi.WSGIApp) -> None:
    assert_type(retryx.asgi.Middleware(asgi_app), retryx.asgi.Middleware)
    assert_type(retryx.wsgi.Middleware(wsgi_app), retryx.wsgi.Middleware)
    assert_type(retryx.redis.RedisStore("redis://localhost:6379"), retryx.redis.RedisStore)


# --- the guide: failover and the call context ----------------------------------------------------


def discover() -> list[str]:
    return ["cache-a:11211", "cache-b:11211"]


@retryx.failover(discover, order="round_robin", param="endpoint")
def get(key: str, *, endpoint: str = retryx.ENDPOINT) -> str:
    return f"{key}@{endpoint}"


@retryx.failover(
    ["db1", "db2"], breaker=CircuitBreaker("orders-db", failure_threshold=2, recovery_timeout=10)
)
async def orders(*, host: str = retryx.ENDPOINT) -> str:
    context = retryx.context()  # never None inside a call
    assert_type(context.attempt, int)
    assert_type(context.remaining, float | None)
    timeout = 2.0 if context.remaining is None else min(2.0, context.remaining)
    assert_type(timeout, float)
    return host


def check_guide() -> None:
    assert_type(get("x"), str)
    assert_type(result_of(orders()), str)
    assert_type(retryx.current(), CallContext | None)
    assert_type(retryx.context(), CallContext)


# --- the guide's index page: fields, presets, methods, coroutines --------------------------------


PAYMENTS = Policy(attempts=5, backoff=backoff.exponential(initial=0.2, max=10), deadline=30)


@retryx.retry(attempts=4, deadline=10)
def fetch(url: str) -> bytes:
    return url.encode()


@retryx.retry(PAYMENTS.replace(attempts=2))
def pay(amount: int) -> bool:
    return amount > 0


@retryx.retry(attempts=3, attempt_timeout=2, deadline=5)
async def ping(host: str, port: int) -> bytes:
    return b"ping"


class Cache:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    @retryx.retry(Policy.interactive(deadline=2))
    def get(self, key: str) -> bytes:
        return key.encode()


@retryx.retry(attempts=3)
def flaky() -> str:
    context = retryx.context()
    return "done" if context.attempt >= 3 else ""


def check_index_page(cache: Cache) -> None:
    assert_type(fetch("http://127.0.0.1/"), bytes)
    assert_type(pay(3), bool)
    assert_type(result_of(ping("127.0.0.1", 80)), bytes)
    assert_type(cache.get("user:7"), bytes)
    assert_type(flaky(), str)
    assert_type(needs_host("select 1", host="db1"), str)


# --- mistakes the checkers catch -----------------------------------------------------------------


@retryx.failover(["db1"])
def needs_host(sql: str, *, host: str) -> str:  # no default: every caller must pass it
    return host


def check_mistakes() -> None:
    needs_host("select 1")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    retryx.retry(attemps=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    retryx.retry(attempts="3")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    retryx.retry(deadline="30s")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    retryx.retry(nested="never")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    Policy.interactive(atempts=2)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    retryx.circuit_breaker(failure_treshold=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    retryx.circuit_breaker(recovery_timeout="30")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    Policy().replace(deadline="5")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    retryx.retry("payments", attempts=3)  # fields with a name: refused at run time only


def check_bare_decorators() -> None:
    # Both are refused at run time when decorating (see tests/test_mistakes.py); the
    # checkers already flag the first call.
    @retryx.failover
    def bare_failover(*, host: str = retryx.ENDPOINT) -> str:
        return host

    @retryx.fallback
    def bare_fallback(user_id: int) -> str:
        return ""

    bare_failover()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    bare_fallback(1)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
