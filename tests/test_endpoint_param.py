"""The endpoint parameter of a ``@failover`` function: ``retryx.ENDPOINT`` as its default
lets callers leave it out; retryx always fills it in; ``retryx.context()`` is the
never-``None`` view of the call in progress.
"""

from __future__ import annotations

import asyncio
import pickle

import pytest

import retryx
from retryx import RetryxError
from retryx.testing import FakeClock


def test_the_endpoint_default_is_replaced_on_every_attempt(clock: FakeClock) -> None:
    """Called without ``host``, the function gets each endpoint of the sweep, never the
    sentinel."""
    seen: list[object] = []

    @retryx.failover(["db1", "db2"])
    def query(sql: str, *, host: str = retryx.ENDPOINT) -> str:
        seen.append(host)
        if host == "db1":
            raise ConnectionRefusedError(host)
        return f"{sql}@{host}"

    assert "select 1@db2" == query("select 1")
    assert ["db1", "db2"] == seen


def test_the_endpoint_default_works_for_coroutine_functions(clock: FakeClock) -> None:
    """The same for ``async def``, under a retry layer."""

    @retryx.retry(attempts=2)
    @retryx.failover(["a:1"], param="endpoint")
    async def get(key: str, endpoint: str = retryx.ENDPOINT) -> str:
        return f"{key}@{endpoint}"

    assert "k@a:1" == asyncio.run(get("k"))


def test_a_caller_may_still_pin_the_endpoint(clock: FakeClock) -> None:
    """Passing ``host=`` explicitly pins it, as before."""

    @retryx.failover(["db1", "db2"])
    def query(*, host: str = retryx.ENDPOINT) -> str:
        return host

    assert "db2" == query(host="db2")


def test_the_sentinel_says_what_it_is() -> None:
    """``repr`` names it, and it pickles to the same object (pickled defaults survive)."""
    assert "retryx.ENDPOINT" == repr(retryx.ENDPOINT)
    assert retryx.ENDPOINT is pickle.loads(pickle.dumps(retryx.ENDPOINT))


def test_context_is_the_call_in_progress(clock: FakeClock) -> None:
    """``retryx.context()`` inside a call is what ``current()`` gives, with the endpoint."""
    seen: list[tuple[int, object, str]] = []

    @retryx.retry(attempts=3)
    @retryx.failover(["db1"])
    def query(*, host: str = retryx.ENDPOINT) -> None:
        context = retryx.context()
        assert retryx.current() == context
        seen.append((context.attempt, context.endpoint, context.call_id))
        if context.attempt < 2:
            raise ConnectionError

    query()
    assert [(1, "db1"), (2, "db1")] == [s[:2] for s in seen]
    assert seen[0][2] == seen[1][2]


def test_context_outside_a_call_raises() -> None:
    """Outside a retryx call ``context()`` raises ``RetryxError`` (``current()`` is None)."""
    assert retryx.current() is None
    with pytest.raises(RetryxError, match=r"retryx\.context\(\) needs a retryx call"):
        retryx.context()
