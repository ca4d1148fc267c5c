"""Database clients: each verdict of API section 14, proven by the real driver
raising its real exception against a real loopback server.

PostgreSQL faults are provoked on a throwaway cluster (``tests/_postgres.py``):
a serialization failure, a deadlock, a lock that is not available, a terminated
backend, a role over its connection limit, a syntax error. The MySQL and
MongoDB drivers meet a refusing port and a server that never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from retryx import Policy, classify, retry
from retryx._classify import is_unsent
from retryx.testing import servers

from _postgres import PostgresServer, serve  # isort: skip
import _wire  # isort: skip

Verdict = tuple[bool, str, bool]  # (transient, cause, unsent)

CONNECTION_UNSENT: Verdict = (True, "connection", True)
CONNECTION: Verdict = (True, "connection", False)
CONTENTION: Verdict = (True, "contention", False)
THROTTLED_UNSENT: Verdict = (True, "throttled", True)
TIMEOUT_UNSENT: Verdict = (True, "timeout", True)
TIMEOUT: Verdict = (True, "timeout", False)
PERMANENT: Verdict = (False, "permanent", False)


def verdict(exc: BaseException) -> Verdict:
    """What retryx decides about ``exc``: transient, cause, unsent."""
    fault = classify(exc)
    return (fault.transient, fault.cause, is_unsent(exc))


def raised(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Exception:
    """The exception ``func(*args, **kwargs)`` raises (the test fails if it returns)."""
    try:
        func(*args, **kwargs)
    except Exception as exc:
        return exc
    pytest.fail(f"{func!r} raised nothing")


async def araised(awaitable: Awaitable[Any]) -> Exception:
    """The exception ``awaitable`` raises (the test fails if it returns)."""
    try:
        await awaitable
    except Exception as exc:
        return exc
    pytest.fail(f"{awaitable!r} raised nothing")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE a PostgreSQL driver put on ``exc`` (psycopg 3, asyncpg; psycopg2)."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


# --- the PostgreSQL cluster ---------------------------------------------------------


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session, with a role ``limited`` to one connection."""
    for server in serve():
        import psycopg

        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("create role limited login connection limit 1")
        yield server


@pytest.fixture
def table(pg: PostgresServer) -> str:
    """A fresh table with the rows (1, 0) and (2, 0)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute(f"create table {name} (id int primary key, n int not null)")
        admin.execute(f"insert into {name} values (1, 0), (2, 0)")
    return name


def _bump(table: str, row: int) -> str:
    return f"update {table} set n = n + 1 where id = {row}"


# --- psycopg 3 and psycopg2: the same scenarios through a small adapter -------------


def _psycopg_connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _psycopg2_connect(dsn: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def run(conn: Any, sql: str, *params: object) -> Any:
    """Execute ``sql`` on a psycopg or psycopg2 connection; the first value of a row, if any."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params or None)
        row = cur.fetchone() if cur.description else None
        return None if row is None else row[0]
    finally:
        cur.close()


class Session:
    """Connections of one scenario, all closed at the end."""

    def __init__(self, connect: Callable[[str], Any], pg: PostgresServer) -> None:
        self.connect = connect
        self.pg = pg
        self.stack = contextlib.ExitStack()

    def conn(self, **dsn: object) -> Any:
        conn = self.connect(self.pg.dsn(**dsn))
        self.stack.callback(conn.close)
        return conn


def _wait_gone(admin: Any, pid: int) -> None:
    """Wait (bounded) until the backend ``pid`` has exited."""
    deadline = time.monotonic() + 5.0
    while run(admin, "select count(*) from pg_stat_activity where pid = %s", pid):
        assert time.monotonic() < deadline, f"backend {pid} still alive"
        time.sleep(0.01)
    time.sleep(0.05)  # the FATAL message and the close reach the client's socket


def _serialization(s: Session, table: str) -> Exception:
    a, b = s.conn(), s.conn()
    run(a, "begin isolation level repeatable read")
    run(a, f"select n from {table} where id = 1")
    run(b, _bump(table, 1))
    return raised(run, a, _bump(table, 1))


def _deadlock(s: Session, table: str) -> Exception:
    a, b = s.conn(), s.conn()
    for conn in (a, b):
        run(conn, "set lock_timeout = '10s'")  # bounds the wait should detection fail
        run(conn, "begin")
    run(a, _bump(table, 1))
    run(b, _bump(table, 2))
    with ThreadPoolExecutor(2) as pool:
        waits = [pool.submit(run, a, _bump(table, 2)), pool.submit(run, b, _bump(table, 1))]
        errors = [error for wait in waits if (error := wait.exception(timeout=15)) is not None]
    assert 1 == len(errors)  # PostgreSQL breaks a deadlock by failing one side
    assert isinstance(errors[0], Exception)
    return errors[0]


def _lock_not_available(s: Session, table: str) -> Exception:
    a, b = s.conn(), s.conn()
    run(a, "begin")
    run(a, f"select n from {table} where id = 1 for update")
    return raised(run, b, f"select n from {table} where id = 1 for update nowait")


def _terminated(s: Session, table: str) -> Exception:
    victim, admin = s.conn(), s.conn()
    pid = run(victim, "select pg_backend_pid()")
    run(admin, "select pg_terminate_backend(%s)", pid)
    _wait_gone(admin, pid)
    return raised(run, victim, "select 1")


def _too_many_connections(s: Session, table: str) -> Exception:
    s.conn(user="limited")
    return raised(s.conn, user="limited")


def _refused(s: Session, table: str) -> Exception:
    with servers.refusing() as addr:
        return raised(s.conn, port=addr.port)


def _no_socket(s: Session, table: str) -> Exception:
    with tempfile.TemporaryDirectory() as empty:  # no server socket file in it
        return raised(s.conn, host=empty)


def _connect_timeout(s: Session, table: str) -> Exception:
    with servers.slow(60) as addr:  # accepts, never answers the startup message
        return raised(s.conn, port=addr.port, connect_timeout=1)


def _syntax_error(s: Session, table: str) -> Exception:
    return raised(run, s.conn(), "selec 1")


def _unknown_database(s: Session, table: str) -> Exception:
    return raised(s.conn, dbname="no_such_database")


# scenario -> (provoke, expected verdict, the SQLSTATE on the exception)
PG_SCENARIOS: dict[str, tuple[Callable[[Session, str], Exception], Verdict, str | None]] = {
    "serialization": (_serialization, CONTENTION, "40001"),
    "deadlock": (_deadlock, CONTENTION, "40P01"),
    "lock_not_available": (_lock_not_available, CONTENTION, "55P03"),
    "terminated": (_terminated, CONNECTION, None),
    "too_many_connections": (_too_many_connections, THROTTLED_UNSENT, None),
    "refused": (_refused, CONNECTION_UNSENT, None),
    "no_socket": (_no_socket, CONNECTION_UNSENT, None),
    "connect_timeout": (_connect_timeout, TIMEOUT_UNSENT, None),
    "syntax_error": (_syntax_error, PERMANENT, "42601"),
    "unknown_database": (_unknown_database, PERMANENT, None),
}
SYNC_DRIVERS = {"psycopg": _psycopg_connect, "psycopg2": _psycopg2_connect}


@pytest.mark.parametrize("scenario", PG_SCENARIOS)
@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_postgres_sync_driver_verdicts(
    pg: PostgresServer, table: str, driver: str, scenario: str
) -> None:
    """psycopg 3 and psycopg2 faults provoked on a real server get the section-14 verdict."""
    provoke, expected, code = PG_SCENARIOS[scenario]
    session = Session(SYNC_DRIVERS[driver], pg)
    with session.stack:
        exc = provoke(session, table)
    assert type(exc).__module__.partition(".")[0] == driver
    if code is not None:
        assert code == sqlstate(exc)
    assert expected == verdict(exc)


def test_psycopg_pool_timeout_is_an_unsent_timeout(pg: PostgresServer) -> None:
    """psycopg_pool's PoolTimeout (no connection free in time) is a timeout that sent nothing."""
    import psycopg_pool

    with (
        psycopg_pool.ConnectionPool(pg.dsn(), min_size=1, max_size=1, open=True) as pool,
        pool.connection(),
    ):
        exc = raised(pool.getconn, timeout=0.1)
    assert isinstance(exc, psycopg_pool.PoolTimeout)
    assert TIMEOUT_UNSENT == verdict(exc)


_DNS_PROBE = """
import psycopg, psycopg2
from retryx import classify
from retryx._classify import is_unsent
for connect in (psycopg.connect, psycopg2.connect):
    try:
        connect("host=retryx-no-such-host.invalid user=x connect_timeout=2")
    except Exception as exc:
        fault = classify(exc)
        print(repr((fault.transient, fault.cause, is_unsent(exc), str(exc))))
"""


def test_postgres_unknown_host_is_permanent_and_dns_try_again_unsent() -> None:
    """A host name DNS says does not exist is permanent; a lookup to try again is unsent."""
    import ast
    import os
    import subprocess
    import sys

    # a fresh process, so the resolver's bounded timeout applies wherever DNS is unreachable
    env = os.environ | {"RES_OPTIONS": "timeout:1 attempts:1"}
    probe = [sys.executable, "-c", _DNS_PROBE]
    out = subprocess.run(probe, capture_output=True, text=True, timeout=30, env=env, check=True)
    results = [ast.literal_eval(line) for line in out.stdout.splitlines()]
    assert 2 == len(results)
    for transient, cause, unsent, message in results:
        expected = CONNECTION_UNSENT if "Temporary failure" in message else PERMANENT
        assert expected == (transient, cause, unsent), message


@pytest.fixture(scope="module")
def standby(pg: PostgresServer) -> Iterator[PostgresServer]:
    """A standby of ``pg`` with hot standby off: it refuses every session with 57P03."""
    yield from serve(standby_of=pg)


@pytest.mark.parametrize("driver", SYNC_DRIVERS)
def test_postgres_sync_driver_cannot_connect_now(standby: PostgresServer, driver: str) -> None:
    """A server that cannot take sessions now (57P03, given without SQLSTATE) is unsent."""
    exc = raised(SYNC_DRIVERS[driver], standby.dsn())
    assert "the database system is" in str(exc)
    assert CONNECTION_UNSENT == verdict(exc)


def test_asyncpg_cannot_connect_now(standby: PostgresServer) -> None:
    """asyncpg's CannotConnectNowError (57P03) is an unsent connection fault."""
    import asyncpg

    connect = asyncpg.connect(host=standby.host, port=standby.port, user="postgres")
    exc = asyncio.run(araised(connect))
    assert "57P03" == sqlstate(exc)
    assert CONNECTION_UNSENT == verdict(exc)


# --- asyncpg ------------------------------------------------------------------------


class AsyncSession:
    """asyncpg connections of one scenario, all closed at the end."""

    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg
        self.conns: list[Any] = []

    async def conn(self, **kwargs: Any) -> Any:
        import asyncpg

        args: dict[str, Any] = {"host": self.pg.host, "port": self.pg.port}
        args |= {"user": "postgres", "database": "postgres"} | kwargs
        conn = await asyncpg.connect(**args)
        self.conns.append(conn)
        return conn

    async def close(self) -> None:
        for conn in self.conns:
            conn.terminate()


async def _a_serialization(s: AsyncSession, table: str) -> Exception:
    a, b = await s.conn(), await s.conn()
    await a.execute("begin isolation level repeatable read")
    await a.execute(f"select n from {table} where id = 1")
    await b.execute(_bump(table, 1))
    return await araised(a.execute(_bump(table, 1)))


async def _a_deadlock(s: AsyncSession, table: str) -> Exception:
    a, b = await s.conn(), await s.conn()
    for conn in (a, b):
        await conn.execute("set lock_timeout = '10s'; begin")
    await a.execute(_bump(table, 1))
    await b.execute(_bump(table, 2))
    both = asyncio.gather(
        a.execute(_bump(table, 2)), b.execute(_bump(table, 1)), return_exceptions=True
    )
    results = await asyncio.wait_for(both, timeout=15)
    errors = [result for result in results if isinstance(result, Exception)]
    assert 1 == len(errors)
    return errors[0]


async def _a_lock_not_available(s: AsyncSession, table: str) -> Exception:
    a, b = await s.conn(), await s.conn()
    await a.execute(f"begin; select n from {table} where id = 1 for update")
    return await araised(b.execute(f"select n from {table} where id = 1 for update nowait"))


async def _a_terminated(s: AsyncSession, table: str) -> Exception:
    victim, admin = await s.conn(), await s.conn()
    pid = await victim.fetchval("select pg_backend_pid()")
    await admin.execute(f"select pg_terminate_backend({pid})")
    deadline = time.monotonic() + 5.0
    while await admin.fetchval(f"select count(*) from pg_stat_activity where pid = {pid}"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return await araised(victim.fetchval("select 1"))


async def _a_too_many_connections(s: AsyncSession, table: str) -> Exception:
    await s.conn(user="limited")
    return await araised(s.conn(user="limited"))


async def _a_refused(s: AsyncSession, table: str) -> Exception:
    with servers.refusing() as addr:
        return await araised(s.conn(port=addr.port))


async def _a_connect_timeout(s: AsyncSession, table: str) -> Exception:
    with servers.slow(60) as addr:
        return await araised(s.conn(port=addr.port, timeout=0.3))


async def _a_syntax_error(s: AsyncSession, table: str) -> Exception:
    conn = await s.conn()
    return await araised(conn.execute("selec 1"))


async def _a_unknown_database(s: AsyncSession, table: str) -> Exception:
    return await araised(s.conn(database="no_such_database"))


ASYNC_PG_SCENARIOS: dict[
    str, tuple[Callable[[AsyncSession, str], Awaitable[Exception]], Verdict, str | None]
] = {
    "serialization": (_a_serialization, CONTENTION, "40001"),
    "deadlock": (_a_deadlock, CONTENTION, "40P01"),
    "lock_not_available": (_a_lock_not_available, CONTENTION, "55P03"),
    "terminated": (_a_terminated, CONNECTION, None),
    "too_many_connections": (_a_too_many_connections, THROTTLED_UNSENT, "53300"),
    # asyncpg raises the builtin errors while connecting: the default rules judge them
    "refused": (_a_refused, CONNECTION_UNSENT, None),
    "connect_timeout": (_a_connect_timeout, TIMEOUT, None),
    "syntax_error": (_a_syntax_error, PERMANENT, "42601"),
    "unknown_database": (_a_unknown_database, PERMANENT, "3D000"),
}


@pytest.mark.parametrize("scenario", ASYNC_PG_SCENARIOS)
def test_asyncpg_verdicts(pg: PostgresServer, table: str, scenario: str) -> None:
    """asyncpg faults provoked on a real server get the section-14 verdict."""
    provoke, expected, code = ASYNC_PG_SCENARIOS[scenario]

    async def main() -> Exception:
        session = AsyncSession(pg)
        try:
            return await provoke(session, table)
        finally:
            await session.close()

    exc = asyncio.run(main())
    if code is not None:
        assert code == sqlstate(exc)
    assert expected == verdict(exc)


# --- end to end: @retry over psycopg ------------------------------------------------


def test_retry_reruns_a_transaction_after_a_serialization_failure(
    pg: PostgresServer, table: str, clock: Any
) -> None:
    """@retry over a psycopg transaction retries a real serialization failure, then commits."""
    import psycopg

    attempts: list[int] = []

    @retry(Policy(attempts=3))
    def add_ten() -> int:
        attempts.append(1)
        with psycopg.connect(pg.dsn()) as conn:  # one transaction, committed on success
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            n = conn.execute(f"select n from {table} where id = 1").fetchone()[0]  # type: ignore[index]
            if len(attempts) == 1:  # another client commits in between, once
                with psycopg.connect(pg.dsn(), autocommit=True) as other:
                    other.execute(_bump(table, 1))
            conn.execute(f"update {table} set n = %s where id = 1", (n + 10,))
            return int(n) + 10

    assert 11 == add_ten()
    assert 2 == len(attempts)


def test_retry_reruns_an_asyncpg_transaction_after_a_serialization_failure(
    pg: PostgresServer, table: str, clock: Any
) -> None:
    """@retry over an asyncpg transaction (a coroutine function) does the same."""
    import asyncpg

    attempts: list[int] = []
    where = {"host": pg.host, "port": pg.port, "user": "postgres"}

    @retry(Policy(attempts=3))
    async def add_ten() -> int:
        attempts.append(1)
        conn = await asyncpg.connect(**where)
        try:
            async with conn.transaction(isolation="repeatable_read"):
                n = await conn.fetchval(f"select n from {table} where id = 1")
                if len(attempts) == 1:  # another client commits in between, once
                    other = await asyncpg.connect(**where)
                    await other.execute(_bump(table, 1))
                    await other.close()
                await conn.execute(f"update {table} set n = $1 where id = 1", n + 10)
                return int(n) + 10
        finally:
            await conn.close()

    assert 11 == asyncio.run(add_ten())
    assert 2 == len(attempts)


def test_non_idempotent_call_is_not_rerun_after_a_terminated_backend(
    pg: PostgresServer, table: str, clock: Any
) -> None:
    """Policy(idempotent=False) gives up at once when the backend dies during the call."""
    import psycopg

    calls: list[int] = []

    @retry(Policy(attempts=3, idempotent=False))
    def bump() -> None:
        calls.append(1)
        with (
            psycopg.connect(pg.dsn(), autocommit=True) as conn,
            psycopg.connect(pg.dsn(), autocommit=True) as admin,
        ):
            pid = conn.info.backend_pid
            admin.execute("select pg_terminate_backend(%s)", (pid,))
            _wait_gone(admin, pid)
            conn.execute(_bump(table, 1))

    with pytest.raises(psycopg.OperationalError):
        bump()
    assert 1 == len(calls)


def test_non_idempotent_call_is_rerun_after_a_refused_connect(
    pg: PostgresServer, table: str, clock: Any
) -> None:
    """Policy(idempotent=False) still retries a connection the server refused."""
    import psycopg

    calls: list[int] = []
    with servers.refusing() as refused:

        @retry(Policy(attempts=3, idempotent=False))
        def bump() -> None:
            port = refused.port if not calls else pg.port
            calls.append(port)
            with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
                conn.execute(_bump(table, 1))

        bump()
    assert [refused.port, pg.port] == calls


# --- MySQL: pymysql, mysqlclient (MySQLdb), aiomysql (which raises pymysql's classes) --


def _pymysql_connect(**kwargs: Any) -> Any:
    import pymysql

    return pymysql.connect(**kwargs)


def _mysqldb_connect(**kwargs: Any) -> Any:
    # mysqlclient builds against libmysqlclient (.ci/run installs it): skip where it cannot
    mysqldb = pytest.importorskip("MySQLdb")
    return mysqldb.connect(**kwargs)


MYSQL_DRIVERS = {"pymysql": _pymysql_connect, "MySQLdb": _mysqldb_connect}


def mysql_connect(driver: str, port: int) -> Any:
    """A connection through ``driver`` to 127.0.0.1:``port`` (bounded timeouts)."""
    read_timeout = 0.3 if driver == "pymysql" else 1  # libmysqlclient counts whole seconds
    connect = MYSQL_DRIVERS[driver]
    return connect(host="127.0.0.1", port=port, connect_timeout=1, read_timeout=read_timeout)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_mysql_refused_connect_is_an_unsent_connection_fault(driver: str) -> None:
    """A refused connect (2003; 2002 from libmysqlclient) is an unsent connection fault."""
    with servers.refusing() as addr:
        exc = raised(mysql_connect, driver, addr.port)
    assert exc.args[0] in (2002, 2003)
    assert CONNECTION_UNSENT == verdict(exc)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_mysql_silent_server_is_a_connection_fault(driver: str) -> None:
    """2013 (the greeting never came within read_timeout) is a connection fault."""
    with servers.slow(60) as addr:
        exc = raised(mysql_connect, driver, addr.port)
    assert 2013 == exc.args[0]
    assert CONNECTION == verdict(exc)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_mysql_closed_connection_is_a_connection_fault(driver: str) -> None:
    """2013 when the server closes the connection is a connection fault."""
    with servers.accept_then_close() as addr:
        exc = raised(mysql_connect, driver, addr.port)
    assert 2013 == exc.args[0]
    assert CONNECTION == verdict(exc)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_mysql_too_many_connections_is_throttled_and_unsent(driver: str) -> None:
    """1040, sent by the server instead of its greeting, is throttled and unsent."""
    with _wire.mysql(refuse=1040) as port:
        exc = raised(mysql_connect, driver, port)
    assert 1040 == exc.args[0]
    assert THROTTLED_UNSENT == verdict(exc)


MYSQL_SERVER_ERRORS = {
    1213: CONTENTION,  # ER_LOCK_DEADLOCK
    1205: CONTENTION,  # ER_LOCK_WAIT_TIMEOUT
    1053: CONNECTION,  # ER_SERVER_SHUTDOWN
    1064: PERMANENT,  # ER_PARSE_ERROR
    1062: PERMANENT,  # ER_DUP_ENTRY
}


@pytest.mark.parametrize("number", MYSQL_SERVER_ERRORS)
@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_mysql_server_errors_by_number(driver: str, number: int) -> None:
    """The error raised for a server's error packet is judged by its number."""
    with _wire.mysql() as port:
        conn = mysql_connect(driver, port)
        try:
            exc = raised(conn.cursor().execute, f"fail {number}")
        finally:
            conn.close()
    assert (driver, number) == (type(exc).__module__.partition(".")[0], exc.args[0])
    assert MYSQL_SERVER_ERRORS[number] == verdict(exc)


def test_aiomysql_refused_connect_is_an_unsent_connection_fault() -> None:
    """aiomysql's 2003 on a refusing port is a connection fault that sent nothing."""
    import aiomysql

    with servers.refusing() as addr:
        exc = asyncio.run(araised(aiomysql.connect(host=addr.host, port=addr.port)))
    assert 2003 == exc.args[0]
    assert CONNECTION_UNSENT == verdict(exc)


def test_aiomysql_closed_connection_is_a_connection_fault() -> None:
    """aiomysql's 2013 when the server closes the connection is a connection fault."""
    import aiomysql

    with servers.accept_then_close() as addr:
        exc = asyncio.run(araised(aiomysql.connect(host=addr.host, port=addr.port)))
    assert 2013 == exc.args[0]
    assert CONNECTION == verdict(exc)


def test_aiomysql_deadlock_is_contention() -> None:
    """aiomysql's 1213 (a pymysql class) is contention."""
    import aiomysql

    async def main(port: int) -> Exception:
        conn = await aiomysql.connect(host="127.0.0.1", port=port)
        try:
            cur = await conn.cursor()
            return await araised(cur.execute("fail 1213"))
        finally:
            conn.close()

    with _wire.mysql() as port:
        exc = asyncio.run(main(port))
    assert ("pymysql.err", 1213) == (type(exc).__module__, exc.args[0])
    assert CONTENTION == verdict(exc)


# --- MongoDB: pymongo and motor (which raises pymongo's classes) --------------------


def _ping(host: str, port: int, **options: Any) -> None:
    import pymongo

    client: Any = pymongo.MongoClient(host=host, port=port, serverSelectionTimeoutMS=300, **options)
    try:
        client.admin.command("ping")
    finally:
        client.close()


def test_pymongo_refused_server_selection_is_an_unsent_connection_fault() -> None:
    """pymongo's ServerSelectionTimeoutError on a refusing port sent nothing."""
    with servers.refusing() as addr:
        exc = raised(_ping, addr.host, addr.port)
    assert "ServerSelectionTimeoutError" == type(exc).__name__
    assert CONNECTION_UNSENT == verdict(exc)


def test_pymongo_silent_server_selection_is_an_unsent_connection_fault() -> None:
    """pymongo's ServerSelectionTimeoutError against a server that never answers sent nothing."""
    with servers.slow(60) as addr:
        exc = raised(_ping, addr.host, addr.port, connectTimeoutMS=200, socketTimeoutMS=200)
    assert "ServerSelectionTimeoutError" == type(exc).__name__
    assert CONNECTION_UNSENT == verdict(exc)


def test_motor_refused_server_selection_is_an_unsent_connection_fault() -> None:
    """motor raises pymongo's ServerSelectionTimeoutError, judged the same."""
    from motor.motor_asyncio import AsyncIOMotorClient

    async def main(port: int) -> Exception:
        client: Any = AsyncIOMotorClient(host="127.0.0.1", port=port, serverSelectionTimeoutMS=300)
        try:
            return await araised(client.admin.command("ping"))
        finally:
            client.close()

    with servers.refusing() as addr:
        exc = asyncio.run(main(addr.port))
    assert "pymongo.errors" == type(exc).__module__
    assert CONNECTION_UNSENT == verdict(exc)


# --- SQLAlchemy over psycopg: the verdict of the driver error in .orig ---------------


@pytest.fixture
def engine(pg: PostgresServer) -> Iterator[Any]:
    """A SQLAlchemy engine over psycopg 3 with a pool of one connection."""
    import sqlalchemy

    url = f"postgresql+psycopg://postgres@{pg.host}:{pg.port}/postgres"
    engine = sqlalchemy.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    yield engine
    engine.dispose()


def test_sqlalchemy_serialization_failure_is_contention(engine: Any, table: str) -> None:
    """A DBAPIError wrapping psycopg's SerializationFailure is contention, like its .orig."""
    import psycopg
    import sqlalchemy

    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(sqlalchemy.text(f"select n from {table} where id = 1"))
        url = engine.url
        with psycopg.connect(host=url.host, port=url.port, user="postgres", autocommit=True) as b:
            b.execute(_bump(table, 1))
        exc = raised(conn.execute, sqlalchemy.text(_bump(table, 1)))
    assert isinstance(exc, sqlalchemy.exc.DBAPIError)
    assert isinstance(exc.orig, psycopg.errors.SerializationFailure)
    assert CONTENTION == verdict(exc)


def test_sqlalchemy_invalidated_connection_is_a_connection_fault(
    engine: Any, pg: PostgresServer
) -> None:
    """A DBAPIError with connection_invalidated (backend terminated) is a connection fault."""
    import psycopg
    import sqlalchemy

    with engine.connect() as conn:
        pid = conn.execute(sqlalchemy.text("select pg_backend_pid()")).scalar_one()
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
            _wait_gone(admin, pid)
        exc = raised(conn.execute, sqlalchemy.text("select 1"))
    assert isinstance(exc, sqlalchemy.exc.DBAPIError)
    assert exc.connection_invalidated
    assert CONNECTION == verdict(exc)


def test_sqlalchemy_refused_connect_is_unsent(pg: PostgresServer) -> None:
    """A DBAPIError wrapping psycopg's refused connect is an unsent connection fault."""
    import sqlalchemy

    with servers.refusing() as addr:
        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres@{addr.host}:{addr.port}/x"
        )
        exc = raised(engine.connect)
        engine.dispose()
    assert isinstance(exc, sqlalchemy.exc.OperationalError)
    assert CONNECTION_UNSENT == verdict(exc)


def test_sqlalchemy_syntax_error_is_permanent(engine: Any) -> None:
    """A DBAPIError wrapping psycopg's SyntaxError is permanent."""
    import sqlalchemy

    with engine.connect() as conn:
        exc = raised(conn.execute, sqlalchemy.text("selec 1"))
    assert isinstance(exc, sqlalchemy.exc.ProgrammingError)
    assert PERMANENT == verdict(exc)


def test_sqlalchemy_pool_timeout_is_an_unsent_timeout(engine: Any) -> None:
    """The pool's TimeoutError (no connection free in time) is a timeout that sent nothing."""
    import sqlalchemy

    with engine.connect():
        exc = raised(engine.connect)
    assert isinstance(exc, sqlalchemy.exc.TimeoutError)
    assert TIMEOUT_UNSENT == verdict(exc)


MONGO_REPLIES: dict[str, tuple[dict[str, Any] | str, str, Verdict]] = {
    "transient_transaction": (
        {"ok": 0.0, "errmsg": "conflict", "code": 112, "codeName": "WriteConflict"}
        | {"errorLabels": ["TransientTransactionError"]},
        "OperationFailure",
        CONTENTION,
    ),
    "retryable_write": (
        {"ok": 0.0, "errmsg": "slow", "code": 262, "codeName": "ExceededTimeLimit"}
        | {"errorLabels": ["RetryableWriteError"]},
        "OperationFailure",
        CONNECTION,
    ),
    "not_primary": (
        {"ok": 0.0, "errmsg": "stepped down", "code": 10107, "codeName": "NotWritablePrimary"},
        "NotPrimaryError",
        CONNECTION,
    ),
    "bad_value": (
        {"ok": 0.0, "errmsg": "bad", "code": 2, "codeName": "BadValue"},
        "OperationFailure",
        PERMANENT,
    ),
    "silent": ("silent", "NetworkTimeout", TIMEOUT),
    "closed": ("close", "AutoReconnect", CONNECTION),
}


@pytest.mark.parametrize("case", MONGO_REPLIES)
def test_pymongo_command_errors(case: str) -> None:
    """pymongo's error for a server reply (labels, codes, silence, a close) gets its verdict."""
    reply, kind, expected = MONGO_REPLIES[case]
    with _wire.mongo(reply) as port:
        options = {"directConnection": True, "socketTimeoutMS": 300}
        options |= {"retryReads": False, "retryWrites": False}
        exc = raised(_ping, "127.0.0.1", port, **options)
    assert kind == type(exc).__name__
    assert expected == verdict(exc)


def test_motor_labelled_error_is_judged_like_pymongo() -> None:
    """motor raises pymongo's labelled OperationFailure, judged by its label."""
    from motor.motor_asyncio import AsyncIOMotorClient

    reply, _, expected = MONGO_REPLIES["transient_transaction"]

    async def main(port: int) -> Exception:
        client: Any = AsyncIOMotorClient(
            host="127.0.0.1", port=port, directConnection=True, retryReads=False
        )
        try:
            return await araised(client.admin.command("ping"))
        finally:
            client.close()

    with _wire.mongo(reply) as port:
        exc = asyncio.run(main(port))
    assert "pymongo.errors" == type(exc).__module__
    assert expected == verdict(exc)


def test_sqlalchemy_asyncio_serialization_failure_is_contention(
    pg: PostgresServer, table: str
) -> None:
    """Through SQLAlchemy's asyncpg dialect (an emulated DB-API error around asyncpg's) too."""
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> Exception:
        engine = create_async_engine(f"postgresql+asyncpg://postgres@{pg.host}:{pg.port}/postgres")
        try:
            async with engine.connect() as a, engine.connect() as b:
                a = await a.execution_options(isolation_level="REPEATABLE READ")
                await a.execute(sqlalchemy.text(f"select n from {table} where id = 1"))
                await b.execute(sqlalchemy.text(_bump(table, 1)))
                await b.commit()
                return await araised(a.execute(sqlalchemy.text(_bump(table, 1))))
        finally:
            await engine.dispose()

    exc = asyncio.run(main())
    assert isinstance(exc, sqlalchemy.exc.DBAPIError)
    assert "40001" == sqlstate(exc.orig)
    assert CONTENTION == verdict(exc)


@pytest.mark.parametrize(("retry_reads", "expected_finds"), [(True, 2), (False, 1)])
def test_pymongo_retry_reads_off_leaves_retrying_to_retryx(
    retry_reads: bool, expected_finds: int
) -> None:
    """pymongo re-sends a read after a dropped connection unless retryReads=False."""
    import pymongo

    seen: list[str] = []
    with _wire.mongo("close", seen) as port:
        client: Any = pymongo.MongoClient(
            host="127.0.0.1", port=port, directConnection=True, retryReads=retry_reads
        )
        try:
            exc = raised(client.db.items.find_one)
        finally:
            client.close()
    assert CONNECTION == verdict(exc)
    assert ["find"] * expected_finds == seen
