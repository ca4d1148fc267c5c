"""Common mistakes fail at decoration with a hint, not at the first call (or never).

Each test builds the mistake the way a user writes it, asserts ``ConfigError`` (so
also a ``ValueError``), that it happened before any call (nothing ran), and that the
message names the parameter and says what to write instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import retryx
from retryx import ConfigError, Policy, failover, fallback, retry
from retryx.testing import FakeClock

calls: list[str] = []


@pytest.fixture(autouse=True)
def _no_calls() -> Iterator[None]:
    calls.clear()
    yield
    assert [] == calls  # no decorated function ran


# --- @retry ---------------------------------------------------------------------------------


def test_an_exception_class_in_place_of_a_policy_hints_at_retry_on() -> None:
    """``@retry(ConnectionError)`` (the tenacity/backoff habit) suggests ``retry_on=``."""
    with pytest.raises(ConfigError, match=r"did you mean retry\(retry_on=ConnectionError\)\?"):

        @retry(ConnectionError)
        def fetch() -> None:
            calls.append("fetch")


def test_a_tuple_of_exception_classes_hints_at_retry_on() -> None:
    """``@retry((ConnectionError, TimeoutError))`` suggests the same keyword."""
    with pytest.raises(ConfigError, match=r"retry_on=\(ConnectionError, TimeoutError\)"):
        retry((ConnectionError, TimeoutError))


def test_a_one_argument_lambda_is_taken_for_a_predicate() -> None:
    """``@retry(lambda e: ...)`` is refused with the two keywords a predicate goes in."""
    with pytest.raises(ConfigError, match=r"retry\(retry_on=\.\.\.\).*retry_if_result"):

        @retry(lambda e: isinstance(e, OSError))
        def fetch() -> None:
            calls.append("fetch")


def test_a_function_taking_an_exception_is_taken_for_a_predicate() -> None:
    """A function whose first parameter is annotated with an exception type is a predicate."""

    def is_busy(exc: OSError | TimeoutError) -> bool:
        return True

    with pytest.raises(ConfigError, match=r"retry\(.*is_busy\): a predicate goes in a keyword"):
        retry(is_busy)


def test_the_policy_class_hints_at_a_policy_object() -> None:
    """``@retry(Policy)`` (a missing call) suggests ``retry(Policy())``."""
    with pytest.raises(ConfigError, match=r"did you mean retry\(Policy\(\)\)"):

        @retry(Policy)
        def fetch() -> None:
            calls.append("fetch")


@pytest.mark.parametrize("preset", ["interactive", "background"])
def test_a_preset_not_called_hints_at_calling_it(preset: str) -> None:
    """``@retry(Policy.interactive)`` suggests ``retry(Policy.interactive())``."""
    with pytest.raises(ConfigError, match=rf"did you mean retry\(Policy\.{preset}\(\)\)"):
        retry(getattr(Policy, preset))


@pytest.mark.parametrize(
    "func",
    [
        pytest.param(lambda: "ran", id="zero-argument lambda"),
        pytest.param(lambda a, b: "ran", id="two-argument lambda"),
        pytest.param(len, id="builtin"),
    ],
)
def test_bare_retry_still_decorates_what_is_no_predicate(func: Callable[..., Any]) -> None:
    """``retry(func)`` keeps decorating callables the predicate rule does not match."""
    assert ["retry"] == retryx.describe(retry(func))


def test_bare_retry_on_a_plain_function_still_works(clock: FakeClock) -> None:
    """``@retry`` on a function of one unannotated parameter decorates it."""
    seen: list[int] = []

    @retry
    def fetch(user_id):
        seen.append(user_id)
        if len(seen) < 2:
            raise ConnectionError
        return user_id

    assert 7 == fetch(7)
    assert [7, 7] == seen


def test_a_non_exception_class_in_retry_on_is_refused() -> None:
    """``retry_on=int`` (a class that is not an exception) fails when the policy is built."""
    with pytest.raises(ConfigError, match=r"Policy\.retry_on must be exception classes.*int"):
        retry(retry_on=int)


def test_a_non_exception_class_in_counts_is_refused() -> None:
    """``counts=dict`` fails when the breaker is built, naming ``counts``."""
    with pytest.raises(ConfigError, match=r"counts must be exception classes.*dict"):
        retryx.circuit_breaker(name="db-counts", counts=dict)
    with pytest.raises(ConfigError, match=r"CircuitBreaker\.counts"):
        retryx.CircuitBreaker("db-counts", counts=dict)


# --- @failover --------------------------------------------------------------------------------


def test_bare_failover_is_refused_at_decoration() -> None:
    """``@failover`` without hosts takes the function for a hosts callable: refused, with
    the form to write."""
    with pytest.raises(ConfigError, match=r"failover\(.*query\).*without its hosts"):

        @failover
        def query(sql: str, *, host: str = retryx.ENDPOINT) -> str:
            calls.append(sql)
            return host


def test_bare_failover_on_an_async_function_is_refused() -> None:
    """An ``async def`` cannot be a hosts callable either."""
    with pytest.raises(ConfigError, match="without its hosts"):

        @failover
        async def ping() -> list[str]:
            return []


def test_a_hosts_callable_returning_none_fails_at_the_first_call_naming_it() -> None:
    """``hosts=callable`` whose callable returns ``None``: a ``ConfigError`` at the first
    call naming the function and the callable, and the function does not run."""

    def discover() -> list[str]:
        return None

    @failover(discover)
    def query(*, host: str = retryx.ENDPOINT) -> str:
        calls.append(host)
        return host

    with pytest.raises(
        ConfigError, match=r"query: failover hosts callable .*discover returned None"
    ):
        query()


def test_a_function_without_the_endpoint_parameter_is_refused() -> None:
    """``@failover`` on a function with no ``host`` parameter is refused at decoration."""
    with pytest.raises(ConfigError, match=r"query has no keyword parameter 'host'.*ENDPOINT"):

        @failover(["a", "b"])
        def query(sql: str) -> str:
            return sql


def test_a_positional_only_endpoint_parameter_is_refused() -> None:
    """The endpoint is passed by keyword, so a positional-only parameter cannot take it."""
    with pytest.raises(ConfigError, match="no keyword parameter 'endpoint'"):

        @failover(["a"], param="endpoint")
        def query(endpoint: str, /) -> str:
            return endpoint


def test_a_function_with_var_keywords_is_accepted() -> None:
    """``**kwargs`` can take the endpoint."""

    @failover(["a"])
    def query(**kwargs: str) -> str:
        return kwargs["host"]

    assert "a" == query()


# --- @fallback ---------------------------------------------------------------------------------


def test_bare_fallback_on_a_function_without_arguments_is_refused() -> None:
    """``@fallback`` on ``def f()`` takes it for a handler that cannot take the exception."""
    with pytest.raises(ConfigError, match=r"fallback\(.*recent\).*without its handler"):

        @fallback
        def recent() -> list[str]:
            calls.append("recent")
            return []


def test_bare_fallback_on_a_typed_function_is_refused() -> None:
    """A handler whose first parameter is annotated with a non-exception type is the
    function to decorate, written under a bare ``@fallback``."""
    with pytest.raises(ConfigError, match="without its handler"):

        @fallback
        def fetch(user_id: int) -> str:
            return ""


def test_bare_fallback_that_slips_through_says_so_at_the_first_call() -> None:
    """When the signature cannot tell (no annotations), the first call names the mistake."""

    @fallback
    def fetch(user_id):
        return user_id

    with pytest.raises(ConfigError, match=r"fallback\(\.\.\.\) decorates a callable, got 7"):
        fetch(7)


def test_fallback_handlers_of_every_documented_shape_are_accepted() -> None:
    """Handlers taking the exception first (annotated or not, or ``*args``) still work."""

    def typed(exc: Exception, x: int) -> int:
        return -1

    async def untyped(exc, x):
        return -2

    def loose(exc: Any, x: int) -> int:
        return -5

    def broad(exc: object, x: int) -> int:
        return -6

    def base(exc: BaseException | None, x: int) -> int:
        return -7

    for handler in (typed, untyped, lambda exc, x: -3, lambda *a: -4, loose, broad, base):
        fallback(handler)


# --- async predicates ------------------------------------------------------------------------


async def _async_is_busy(exc: BaseException) -> bool:
    return True


async def _async_bad_result(result: object) -> bool:
    return True


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"retry_on": _async_is_busy}, "Policy.retry_on"),
        ({"retry_if_result": _async_bad_result}, "Policy.retry_if_result"),
    ],
)
def test_an_async_predicate_on_a_sync_function_is_refused(fields: Any, named: str) -> None:
    """A coroutine function as a predicate of a sync callable would never be awaited."""
    with pytest.raises(ConfigError, match=rf"fetch: {named} is a coroutine function"):

        @retry(**fields)
        def fetch() -> None:
            calls.append("fetch")


def test_an_async_retry_on_with_failover_is_refused() -> None:
    """The failover sweep judges faults without awaiting: an async ``retry_on`` is refused."""
    with pytest.raises(ConfigError, match="@failover and fallback"):

        @retry(retry_on=_async_is_busy)
        @failover(["a", "b"])
        async def query(*, host: str = retryx.ENDPOINT) -> str:
            return host
