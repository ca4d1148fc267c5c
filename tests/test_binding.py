"""What ``@retry`` can decorate: every method kind (decorator above and below
``@classmethod`` / ``@staticmethod``), callables passed in directly, and what it refuses.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import pickle
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from retryx import (
    ConfigError,
    Policy,
    circuit_breaker,
    current,
    describe,
    fallback,
    retry,
    stats,
)
from retryx.testing import FakeClock, FaultSequence

POLICY = Policy(attempts=3, backoff="none")
KINDS = ["method", "cm_above", "cm_below", "sm_above", "sm_below"]


def resolve(value: Any) -> Any:
    """Run a coroutine to completion; return anything else as is."""
    return asyncio.run(value) if inspect.iscoroutine(value) else value


def make_class(is_async: bool) -> tuple[type, list[tuple[str, Any, int]]]:
    """A fresh class with one method of each kind; each call fails once, then returns."""
    log: list[tuple[str, Any, int]] = []

    def body(kind: str, receiver: Any, x: int) -> tuple[str, Any, int]:
        log.append((kind, receiver, x))
        if sum(1 for k, _, _ in log if k == kind) % 2:
            raise ConnectionError(kind)
        return (kind, receiver, x)

    if is_async:

        class AsyncService:
            @retry(POLICY)
            async def method(self, x: int) -> Any:
                """An instance method."""
                return body("method", self, x)

            @retry(POLICY)
            @classmethod
            async def cm_above(cls, x: int) -> Any:
                return body("cm_above", cls, x)

            @classmethod
            @retry(POLICY)
            async def cm_below(cls, x: int) -> Any:
                return body("cm_below", cls, x)

            @retry(POLICY)
            @staticmethod
            async def sm_above(x: int) -> Any:
                return body("sm_above", None, x)

            @staticmethod
            @retry(POLICY)
            async def sm_below(x: int) -> Any:
                return body("sm_below", None, x)

        return AsyncService, log

    class Service:
        @retry(POLICY)
        def method(self, x: int) -> Any:
            """An instance method."""
            return body("method", self, x)

        @retry(POLICY)
        @classmethod
        def cm_above(cls, x: int) -> Any:
            return body("cm_above", cls, x)

        @classmethod
        @retry(POLICY)
        def cm_below(cls, x: int) -> Any:
            return body("cm_below", cls, x)

        @retry(POLICY)
        @staticmethod
        def sm_above(x: int) -> Any:
            return body("sm_above", None, x)

        @staticmethod
        @retry(POLICY)
        def sm_below(x: int) -> Any:
            return body("sm_below", None, x)

    return Service, log


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    """Each binding test runs on sync methods and on coroutine methods."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Every method kind, with the decorator above and below the method decorator."""
    return request.param  # type: ignore[no-any-return]


def expected_receiver(kind: str, cls: type, obj: Any) -> Any:
    if kind == "method":
        return obj
    if kind.startswith("cm"):
        return cls
    return None


# --- methods -------------------------------------------------------------------------------


def test_method_called_through_an_instance(clock: FakeClock, is_async: bool, kind: str) -> None:
    """Through an instance each method kind gets the right receiver and is retried."""
    cls, log = make_class(is_async)
    obj = cls()
    receiver = expected_receiver(kind, cls, obj)
    assert (kind, receiver, 7) == resolve(getattr(obj, kind)(7))
    assert [(kind, receiver, 7)] * 2 == log


def test_method_called_through_the_class(clock: FakeClock, is_async: bool, kind: str) -> None:
    """Through the class each method kind gets the right receiver and is retried."""
    cls, log = make_class(is_async)
    obj = cls()
    args = (obj, 7) if kind == "method" else (7,)
    receiver = expected_receiver(kind, cls, obj)
    assert (kind, receiver, 7) == resolve(getattr(cls, kind)(*args))
    assert 2 == len(log)


def test_classmethod_through_a_subclass_gets_the_subclass(clock: FakeClock, is_async: bool) -> None:
    """A classmethod called through a subclass (or its instance) receives the subclass."""
    cls, _log = make_class(is_async)
    sub = type("Sub", (cls,), {})
    for name in ("cm_above", "cm_below"):
        assert (name, sub, 1) == resolve(getattr(sub, name)(1))
        assert (name, sub, 2) == resolve(getattr(sub(), name)(2))


def test_each_instance_is_its_own_receiver(clock: FakeClock, is_async: bool) -> None:
    """Two instances calling the same decorated method each receive themselves."""
    cls, _log = make_class(is_async)
    a, b = cls(), cls()
    assert ("method", a, 1) == resolve(a.method(1))
    assert ("method", b, 2) == resolve(b.method(2))


def test_methods_keep_being_coroutine_functions(is_async: bool, kind: str) -> None:
    """``inspect.iscoroutinefunction`` is preserved through the class and the instance."""
    cls, _ = make_class(is_async)
    assert is_async == inspect.iscoroutinefunction(getattr(cls, kind))
    assert is_async == inspect.iscoroutinefunction(getattr(cls(), kind))


def test_describe_through_class_and_instance(is_async: bool, kind: str) -> None:
    """``describe`` gives the same layers through the class and through an instance."""
    cls, _ = make_class(is_async)
    assert ["retry"] == describe(getattr(cls, kind))
    assert ["retry"] == describe(getattr(cls(), kind))
    assert ["retry"] == describe(cls.__dict__[kind])


def test_stats_through_class_and_instance(clock: FakeClock, is_async: bool, kind: str) -> None:
    """``stats`` of a method is the same counter whether reached through class or instance."""
    cls, _ = make_class(is_async)
    obj = cls()
    resolve(getattr(obj, kind)(1))
    assert 1 == stats(getattr(cls, kind)).calls
    assert 2 == stats(getattr(obj, kind)).attempts


def test_method_signature_name_and_doc_are_kept(is_async: bool) -> None:
    """A bound method's signature drops ``self``; name, qualname and doc are the method's."""
    cls, _ = make_class(is_async)
    bound = cls().method
    assert "(x: 'int') -> 'Any'" == str(inspect.signature(bound))
    assert "(self, x: 'int') -> 'Any'" == str(inspect.signature(cls.method))
    assert "method" == cls.method.__name__
    assert f"{cls.__qualname__}.method" == cls.method.__qualname__
    assert "An instance method." == cls.method.__doc__
    for name in ("cm_above", "cm_below", "sm_above", "sm_below"):
        assert "(x: 'int') -> 'Any'" == str(inspect.signature(getattr(cls, name)))
        assert name == getattr(cls, name).__name__


def test_current_name_of_a_method_is_its_qualname(clock: FakeClock) -> None:
    """Inside a method, ``current().name`` is the method's qualified name."""

    class Client:
        @retry
        def fetch(self) -> str:
            ctx = current()
            assert ctx is not None
            return ctx.name

    assert Client.fetch.__qualname__ == Client().fetch()


# --- functions -----------------------------------------------------------------------------


def plain(a: int, b: str = "x", *args: float, c: bool = False, **kw: object) -> str:
    """A plain function."""
    return f"{a}{b}"


async def coro(a: int, *, b: str = "x") -> str:
    """A coroutine function."""
    return f"{a}{b}"


@retry
def module_level(x: int) -> int:
    """A decorated module-level function."""
    return x


@pytest.mark.parametrize("func", [plain, coro], ids=["sync", "async"])
def test_function_metadata_is_kept(func: Callable[..., Any]) -> None:
    """Signature, name, qualname, doc, module and ``__wrapped__`` are the function's."""
    decorated = retry(func)
    assert inspect.signature(func) == inspect.signature(decorated)
    assert func.__name__ == decorated.__name__
    assert func.__qualname__ == decorated.__qualname__
    assert func.__doc__ == decorated.__doc__
    assert func.__module__ == decorated.__module__
    assert func is decorated.__wrapped__  # type: ignore[attr-defined]


def test_coroutine_function_stays_a_coroutine_function() -> None:
    """``inspect.iscoroutinefunction`` holds for a decorated coroutine function only."""
    assert inspect.iscoroutinefunction(retry(coro))
    assert inspect.iscoroutinefunction(retry()(coro))
    assert not inspect.iscoroutinefunction(retry(plain))


def test_decorated_function_pickles_by_reference() -> None:
    """A decorated module-level function pickles as a reference to itself."""
    assert module_level is pickle.loads(pickle.dumps(module_level))


def test_a_decorated_function_is_a_function_that_binds_like_one() -> None:
    """A plain function is decorated into a plain function: in a class body it is an
    ordinary method (the instance arrives as the first argument).
    """

    class Client:
        @retry(POLICY)
        def get(self, x: int) -> tuple[Any, int]:
            return (self, x)

    client = Client()
    assert inspect.isfunction(Client.__dict__["get"])
    assert inspect.ismethod(client.get)
    assert Client.__dict__["get"] is client.get.__func__
    assert (client, 1) == client.get(1)
    assert (client, 2) == Client.get(client, 2)


def test_stacking_onto_a_decorated_function_fuses_with_it() -> None:
    """A layer added to a decorated function joins its pipeline; the function runs once."""
    calls: list[int] = []

    def fetch(x: int) -> int:
        calls.append(x)
        return x

    with_breaker = circuit_breaker(name="fuse-test")(fetch)
    fused = retry(POLICY)(with_breaker)
    assert ["retry", "circuit_breaker"] == describe(fused)
    assert fetch is fused.__wrapped__  # type: ignore[attr-defined]
    assert 3 == fused(3)
    assert [3] == calls


def test_a_users_wraps_over_a_decorated_function_is_not_retryx() -> None:
    """``functools.wraps`` copies the decorated function's ``__dict__``; the copy is still
    the user's wrapper: ``describe`` sees no layer, and a new layer wraps it, not fuses.
    """
    seen: list[str] = []

    def logged(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.append("wrapper")
            return func(*args, **kwargs)

        return wrapper

    user = logged(module_level)
    assert [] == describe(user)
    twice = retry(POLICY)(user)
    assert ["retry"] == describe(twice)
    stats(module_level, reset=True)
    assert 5 == twice(5)
    assert ["wrapper"] == seen
    assert 1 == stats(twice).calls
    assert 1 == stats(module_level).calls  # the inner pipeline ran as itself, inside


def test_describe_of_an_undecorated_callable_is_empty() -> None:
    """``describe`` of anything without retryx layers is ``[]``."""
    assert [] == describe(plain)
    assert [] == describe(len)
    assert ["retry"] == describe(module_level)


# --- callables passed in directly ----------------------------------------------------------


class Connection:
    """An object whose bound method is passed to ``retry`` directly."""

    def __init__(self, outcomes: FaultSequence) -> None:
        self.outcomes = outcomes

    def connect(self, address: str) -> str:
        return f"{self.outcomes()}:{address}"


def test_bound_method_passed_directly(clock: FakeClock) -> None:
    """``retry(policy)(conn.connect)`` retries the bound method with its instance."""
    seq = FaultSequence(ConnectionError, "up")
    conn = Connection(seq)
    connect = retry(POLICY)(conn.connect)
    assert "up:db" == connect("db")
    assert 2 == seq.calls


def test_socket_connect_passed_directly(clock: FakeClock) -> None:
    """``retry(policy)(sock.connect)`` retries a builtin bound method of a real socket."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connect is refused at once
    with socket.socket() as sock:
        connect = retry(Policy(attempts=2, backoff="none"))(sock.connect)
        with pytest.raises(ConnectionRefusedError) as info:
            connect(("127.0.0.1", port))
    assert 2 == stats(connect).attempts
    assert "reason: attempts" in info.value.__notes__[0]


def test_builtin_passed_directly(clock: FakeClock) -> None:
    """Builtins can be retried: ``retry(...)(deque.popleft)`` on an empty deque."""
    queue: deque[int] = deque()
    popleft = retry(retry_on=IndexError, attempts=3, backoff="none")(queue.popleft)
    with pytest.raises(IndexError):
        popleft()
    assert 3 == stats(popleft).attempts
    assert 3 == retry(len)("abc")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_partial_passed_directly(clock: FakeClock, is_async: bool) -> None:
    """A ``functools.partial`` is retried, and one of a coroutine function stays async."""
    seq = FaultSequence(ConnectionError, "ok")

    def sync_target(prefix: str, x: int) -> str:
        return f"{prefix}{seq()}{x}"

    async def async_target(prefix: str, x: int) -> str:
        return f"{prefix}{seq()}{x}"

    target = functools.partial(async_target if is_async else sync_target, "<")
    decorated = retry(POLICY)(target)
    assert is_async == inspect.iscoroutinefunction(decorated)
    assert "<ok1" == resolve(decorated(1))
    assert 2 == seq.calls


class SyncCallable:
    def __init__(self, seq: FaultSequence) -> None:
        self.seq = seq

    def __call__(self, x: int) -> Any:
        return (self.seq(), x)


class AsyncCallable:
    def __init__(self, seq: FaultSequence) -> None:
        self.seq = seq

    async def __call__(self, x: int) -> Any:
        return (self.seq(), x)


@pytest.mark.parametrize("factory", [SyncCallable, AsyncCallable], ids=["sync", "async"])
def test_callable_object_passed_directly(clock: FakeClock, factory: type) -> None:
    """An object with a (sync or async) ``__call__`` is retried; an async one is awaited."""
    seq = FaultSequence(ConnectionError, "ok")
    decorated = retry(POLICY)(factory(seq))
    assert ("ok", 3) == resolve(decorated(3))
    assert 2 == seq.calls


def test_lambda_passed_directly(clock: FakeClock) -> None:
    """A lambda is retried like any function."""
    seq = FaultSequence(TimeoutError, 5)
    assert 5 == retry(POLICY)(lambda: seq())()


# --- refused at decoration -----------------------------------------------------------------


def gen() -> Iterator[int]:
    yield 1


async def agen() -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("target", "word"),
    [
        (gen, "a generator"),
        (agen, "an async generator"),
        (staticmethod(gen), "a generator"),
        (classmethod(agen), "an async generator"),
        (functools.partial(gen), "a generator"),
    ],
    ids=["generator", "async-generator", "staticmethod", "classmethod", "partial"],
)
@pytest.mark.parametrize("form", ["bare", "called"])
def test_generators_are_rejected(target: Any, word: str, form: str) -> None:
    """Generators and async generators (however wrapped) raise ``ConfigError`` naming them."""
    decorate = retry if form == "bare" else retry(POLICY)
    with pytest.raises(ConfigError, match=f"{getattr(target, '__name__', '')}.*{word}"):
        decorate(target)


def test_generator_method_below_classmethod_is_rejected() -> None:
    """A generator method is refused when the class body is executed."""
    with pytest.raises(ConfigError, match="generator"):

        class Broken:
            @staticmethod
            @retry
            def items() -> Iterator[int]:
                yield 1


def test_non_callable_is_rejected() -> None:
    """Decorating something that is not callable is a ``ConfigError``."""
    with pytest.raises(ConfigError):
        retry(POLICY)(42)  # type: ignore[arg-type]


def test_same_decorator_twice_is_rejected() -> None:
    """``@retry`` twice on one callable is a ``ConfigError`` at decoration."""
    with pytest.raises(ConfigError, match="twice"):
        retry(retry(plain))


@retry(POLICY)
def reconnect(connection: Connection) -> Connection:
    """A decorated function annotated with a name of this module."""
    return connection


def test_a_decorated_function_shows_its_modules_globals() -> None:
    """``__globals__`` is the decorated function's module's, as through a proxy, so tools
    resolving string annotations with it find the module's names."""
    assert reconnect.__wrapped__.__globals__ is reconnect.__globals__  # type: ignore[attr-defined]
    hints = {k: eval(v, reconnect.__globals__) for k, v in reconnect.__annotations__.items()}
    assert {"connection": Connection, "return": Connection} == hints


def test_the_function_drivers_read_no_globals() -> None:
    """The drivers run with the decorated function's globals, so every name they use
    must be a closure cell: a global would resolve in the user's module."""
    import dis

    from retryx import _drivers

    def shape(a: int, b: int = 2, *, c: int = 3) -> int:
        return a + b + c

    async def ashape(a: int) -> int:
        return a

    made = [
        retry(POLICY)(shape),
        retry(POLICY)(ashape),
        fallback(value=0)(retry(POLICY)(shape)),  # the general (*args, **kwargs) form
        fallback(value=0)(retry(POLICY)(ashape)),
    ]
    assert all(callable(f) for f in made)
    assert 4 <= len(_drivers._driver_codes)
    for code in _drivers._driver_codes:
        assert [] == [i.argval for i in dis.get_instructions(code) if i.opname == "LOAD_GLOBAL"]
