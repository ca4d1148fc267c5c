"""MySQL drivers against a real MariaDB server: a deadlock, a lock that is not
available, a killed connection, a syntax error and a duplicate key, each raised by
pymysql, mysqlclient (MySQLdb) and aiomysql, get the verdicts of API section 14.

(Refusing and silent ports and the scripted server are in ``test_clients_db.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from retryx import classify
from retryx._classify import is_unsent

from _mariadb import MariaDBServer, serve  # isort: skip

CONNECTION = (True, "connection", False)
CONTENTION = (True, "contention", False)
PERMANENT = (False, "permanent", False)


def verdict(exc: BaseException) -> tuple[bool, str, bool]:
    """What retryx decides about ``exc``: transient, cause, unsent."""
    fault = classify(exc)
    return (fault.transient, fault.cause, is_unsent(exc))


@pytest.fixture(scope="module")
def maria() -> Iterator[MariaDBServer]:
    """A MariaDB server for the module, with a database ``retryx``."""
    for server in serve():
        import pymysql

        conn = pymysql.connect(host=server.host, port=server.port, user="root")
        conn.cursor().execute("create database retryx")
        conn.close()
        yield server


@pytest.fixture
def table(maria: MariaDBServer) -> str:
    """A fresh InnoDB table with the rows (1, 0) and (2, 0)."""
    import pymysql

    name = f"retryx.t_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host=maria.host, port=maria.port, user="root", autocommit=True)
    cur = conn.cursor()
    cur.execute(f"create table {name} (id int primary key, n int not null) engine=innodb")
    cur.execute(f"insert into {name} values (1, 0), (2, 0)")
    conn.close()
    return name


def _bump(table: str, row: int) -> str:
    return f"update {table} set n = n + 1 where id = {row}"


# --- pymysql and MySQLdb: the same scenarios ----------------------------------------


def _connect(driver: str, maria: MariaDBServer) -> Any:
    module: Any = pytest.importorskip(driver)  # mysqlclient needs libmysqlclient to build
    conn = module.connect(
        host=maria.host, port=maria.port, user="root", connect_timeout=2, read_timeout=10
    )
    conn.autocommit(True)
    return conn


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a killed connection may already be closed
        conn.close()


def _raised(conn: Any, sql: str) -> Exception:
    try:
        conn.cursor().execute(sql)
    except Exception as exc:
        return exc
    pytest.fail(f"{sql!r} raised nothing")


def _deadlock(a: Any, b: Any, table: str) -> Exception:
    for conn in (a, b):
        conn.cursor().execute("begin")
    a.cursor().execute(_bump(table, 1))
    b.cursor().execute(_bump(table, 2))
    with ThreadPoolExecutor(2) as pool:
        waits = [
            pool.submit(a.cursor().execute, _bump(table, 2)),
            pool.submit(b.cursor().execute, _bump(table, 1)),
        ]
        errors = [error for wait in waits if (error := wait.exception(timeout=15)) is not None]
    assert 1 == len(errors)  # InnoDB breaks the deadlock by rolling one side back
    assert isinstance(errors[0], Exception)
    return errors[0]


def _lock_not_available(a: Any, b: Any, table: str) -> Exception:
    a.cursor().execute("begin")
    a.cursor().execute(f"select n from {table} where id = 1 for update")
    return _raised(b, f"select n from {table} where id = 1 for update nowait")


def _killed(a: Any, b: Any, table: str) -> Exception:
    cur = a.cursor()
    cur.execute("select connection_id()")
    b.cursor().execute(f"kill {cur.fetchone()[0]}")
    return _raised(a, "select 1")


def _syntax_error(a: Any, b: Any, table: str) -> Exception:
    return _raised(a, "selec 1")


def _duplicate_key(a: Any, b: Any, table: str) -> Exception:
    return _raised(a, f"insert into {table} values (1, 0)")


SCENARIOS: dict[str, tuple[Callable[[Any, Any, str], Exception], int, tuple[bool, str, bool]]] = {
    "deadlock": (_deadlock, 1213, CONTENTION),
    "lock_not_available": (_lock_not_available, 1205, CONTENTION),  # NOWAIT, in MariaDB
    "killed": (_killed, 2013, CONNECTION),
    "syntax_error": (_syntax_error, 1064, PERMANENT),
    "duplicate_key": (_duplicate_key, 1062, PERMANENT),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("driver", ["pymysql", "MySQLdb"])
def test_mysql_driver_verdicts(
    maria: MariaDBServer, table: str, driver: str, scenario: str
) -> None:
    """pymysql's and mysqlclient's faults provoked on a real MariaDB get their verdict."""
    provoke, number, expected = SCENARIOS[scenario]
    with contextlib.ExitStack() as stack:
        a, b = _connect(driver, maria), _connect(driver, maria)
        for conn in (a, b):
            stack.callback(_close_quietly, conn)
        exc = provoke(a, b, table)
    assert (driver, number) == (type(exc).__module__.partition(".")[0], exc.args[0])
    assert expected == verdict(exc)


# --- aiomysql -----------------------------------------------------------------------


async def _a_raised(conn: Any, sql: str) -> Exception:
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    except Exception as exc:
        return exc
    pytest.fail(f"{sql!r} raised nothing")


async def _a_run(conn: Any, sql: str) -> Any:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        return await cur.fetchone()


async def _a_deadlock(a: Any, b: Any, table: str) -> Exception:
    for conn in (a, b):
        await _a_run(conn, "begin")
    await _a_run(a, _bump(table, 1))
    await _a_run(b, _bump(table, 2))
    both = asyncio.gather(
        _a_run(a, _bump(table, 2)), _a_run(b, _bump(table, 1)), return_exceptions=True
    )
    errors = [error for error in await asyncio.wait_for(both, 15) if isinstance(error, Exception)]
    assert 1 == len(errors)
    return errors[0]


async def _a_lock_not_available(a: Any, b: Any, table: str) -> Exception:
    await _a_run(a, "begin")
    await _a_run(a, f"select n from {table} where id = 1 for update")
    return await _a_raised(b, f"select n from {table} where id = 1 for update nowait")


async def _a_killed(a: Any, b: Any, table: str) -> Exception:
    (connection_id,) = await _a_run(a, "select connection_id()")
    await _a_run(b, f"kill {connection_id}")
    return await _a_raised(a, "select 1")


async def _a_syntax_error(a: Any, b: Any, table: str) -> Exception:
    return await _a_raised(a, "selec 1")


ASYNC_SCENARIOS: dict[
    str, tuple[Callable[[Any, Any, str], Awaitable[Exception]], int, tuple[bool, str, bool]]
] = {
    "deadlock": (_a_deadlock, 1213, CONTENTION),
    "lock_not_available": (_a_lock_not_available, 1205, CONTENTION),
    "killed": (_a_killed, 2013, CONNECTION),
    "syntax_error": (_a_syntax_error, 1064, PERMANENT),
}


@pytest.mark.parametrize("scenario", ASYNC_SCENARIOS)
def test_aiomysql_verdicts(maria: MariaDBServer, table: str, scenario: str) -> None:
    """aiomysql's faults (pymysql's classes) provoked on a real MariaDB get their verdict."""
    import aiomysql

    provoke, number, expected = ASYNC_SCENARIOS[scenario]

    async def main() -> Exception:
        where = {"host": maria.host, "port": maria.port, "user": "root", "autocommit": True}
        a = await aiomysql.connect(**where)
        b = await aiomysql.connect(**where)
        try:
            return await provoke(a, b, table)
        finally:
            a.close()
            b.close()

    exc = asyncio.run(main())
    assert number == exc.args[0]
    assert expected == verdict(exc)
