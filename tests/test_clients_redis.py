"""redis-py's real faults, raised against real redis-servers, judged by ``classify``."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import _sockets
from tests._redis import REQUIRED, RedisServer, free_port, serve

if not REQUIRED:  # RETRYX_REQUIRE_REDIS=1 (CI): a missing redis package is a failure
    pytest.importorskip("redis")

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from retryx import AllEndpointsFailed, Fault, Policy, backoff, classify, failover, retry
from retryx._classify import is_unsent

pytestmark = pytest.mark.redis

NO_RETRY: dict[str, Any] = {"retry": Retry(NoBackoff(), 0)}  # one attempt per command
NO_ARETRY: dict[str, Any] = {"retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}
CONNECTION = Fault(True, "connection")
CONNECTION_UNSENT = Fault(True, "connection", unsent=True)
PERMANENT = Fault(False, "permanent")


def raised(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raised (it must raise)."""
    with pytest.raises(Exception) as info:
        call()
    return info.value


def client(port: int, **options: Any) -> Any:
    return redis.Redis(host="127.0.0.1", port=port, **NO_RETRY, **options)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One plain redis-server for the module."""
    yield from serve(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server this test may reconfigure, kill and restart."""
    yield from serve(tmp_path, args=["--enable-debug-command", "yes"])


@pytest.fixture
def second_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Another server, for replication and failover."""
    yield from serve(tmp_path)


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that completes the TCP handshake and never answers."""
    with _sockets.silent() as port:
        yield port


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port on which connect times out."""
    with _sockets.full_backlog() as port:
        yield port


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` (bounded) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --- connection faults ------------------------------------------------------------------


def test_refused_connection_is_an_unsent_connection_fault() -> None:
    """A refused connect raises redis' ConnectionError, judged connection and unsent."""
    exc = raised(client(free_port()).ping)
    assert "ConnectionError" == type(exc).__name__
    assert CONNECTION_UNSENT == classify(exc)
    assert is_unsent(exc)


def test_refused_connection_after_redis_own_retries_is_still_unsent() -> None:
    """After redis-py's own retries give up, the refused connect is still recognised."""
    own = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 2))
    assert CONNECTION_UNSENT == classify(raised(own.ping))


def test_connect_timeout_is_an_unsent_timeout(full_backlog: int) -> None:
    """A TCP connect that times out is redis' TimeoutError, judged timeout and unsent."""
    exc = raised(client(full_backlog, socket_connect_timeout=0.2).ping)
    assert "TimeoutError" == type(exc).__name__
    assert Fault(True, "timeout", unsent=True) == classify(exc)


def test_read_timeout_is_a_timeout_that_may_have_been_sent(silent: int) -> None:
    """A server that never answers gives a read TimeoutError: timeout, not unsent."""
    exc = raised(client(silent, socket_timeout=0.2).ping)
    assert "TimeoutError" == type(exc).__name__
    assert Fault(True, "timeout") == classify(exc)
    assert not is_unsent(exc)


def test_connection_lost_mid_command_is_a_connection_fault(own_server: RedisServer) -> None:
    """The server dying under a blocked command gives a ConnectionError that may have been sent."""
    conn = client(own_server.port)
    conn.ping()
    threading.Timer(0.2, own_server.stop).start()
    exc = raised(lambda: conn.blpop(["nothing"], timeout=5))
    assert "ConnectionError" == type(exc).__name__
    assert CONNECTION == classify(exc)
    assert not is_unsent(exc)


def test_too_many_clients_is_a_connection_fault(own_server: RedisServer) -> None:
    """'max number of clients reached' is a ConnectionError: transient."""
    admin = client(own_server.port)
    admin.config_set("maxclients", 1)
    exc = raised(client(own_server.port).ping)
    assert "ConnectionError" == type(exc).__name__
    assert CONNECTION == classify(exc)


# --- server answers -----------------------------------------------------------------------


def test_missing_password_is_permanent(own_server: RedisServer) -> None:
    """NOAUTH is an AuthenticationError, a ConnectionError subclass judged permanent."""
    client(own_server.port).config_set("requirepass", "secret")
    exc = raised(client(own_server.port).ping)
    assert "AuthenticationError" == type(exc).__name__
    assert isinstance(exc, redis.ConnectionError)
    assert PERMANENT == classify(exc)
    assert not is_unsent(exc)


def test_wrong_password_is_permanent(own_server: RedisServer) -> None:
    """WRONGPASS is an AuthenticationError: permanent."""
    client(own_server.port).config_set("requirepass", "secret")
    exc = raised(client(own_server.port, password="guess").ping)
    assert "AuthenticationError" == type(exc).__name__
    assert PERMANENT == classify(exc)


def test_unknown_command_is_permanent(server: RedisServer) -> None:
    """A command the server does not know is a ResponseError: permanent."""
    exc = raised(lambda: client(server.port).execute_command("NO-SUCH-COMMAND"))
    assert "ResponseError" == type(exc).__name__
    assert PERMANENT == classify(exc)


def test_a_full_connection_pool_is_an_unsent_connection_fault(server: RedisServer) -> None:
    """``MaxConnectionsError`` (the local pool has no connection left): nothing was sent."""
    pool = redis.ConnectionPool(host="127.0.0.1", port=server.port, max_connections=1)
    held = pool.get_connection()
    try:
        exc = raised(lambda: redis.Redis(connection_pool=pool, **NO_RETRY).ping())
    finally:
        pool.release(held)
        pool.disconnect()
    assert "MaxConnectionsError" == type(exc).__name__
    assert (CONNECTION_UNSENT, True) == (classify(exc), is_unsent(exc))


def test_a_command_the_acl_denies_is_permanent(own_server: RedisServer) -> None:
    """NOPERM (an ACL user without the command) is a NoPermissionError: permanent."""
    admin = client(own_server.port)
    admin.execute_command("ACL", "SETUSER", "limited", "on", ">pw", "~*", "+ping")
    limited = client(own_server.port, username="limited", password="pw")
    exc = raised(lambda: limited.set("k", "v"))
    assert "NoPermissionError" == type(exc).__name__
    assert PERMANENT == classify(exc)


def test_wrong_type_is_permanent(server: RedisServer) -> None:
    """WRONGTYPE is a ResponseError: permanent."""
    conn = client(server.port)
    conn.set("a-string", "x")
    assert PERMANENT == classify(raised(lambda: conn.lpush("a-string", "y")))


def test_changed_watched_key_is_contention(server: RedisServer) -> None:
    """A WATCHed key changed before EXEC is a WatchError: contention, run the transaction again."""
    conn, other = client(server.port), client(server.port)
    with conn.pipeline() as pipe:
        pipe.watch("watched")
        other.set("watched", "changed")
        pipe.multi()
        pipe.set("watched", "mine")
        exc = raised(pipe.execute)
    assert "WatchError" == type(exc).__name__
    assert Fault(True, "contention") == classify(exc)


def test_write_to_a_replica_is_a_connection_fault(
    own_server: RedisServer, second_server: RedisServer
) -> None:
    """READONLY from a replica (after a failover) is transient, cause connection."""
    replica = client(second_server.port)
    replica.replicaof("127.0.0.1", own_server.port)
    exc = raised(lambda: replica.set("k", "v"))
    assert "ReadOnlyError" == type(exc).__name__
    assert CONNECTION == classify(exc)


def test_replica_without_its_master_is_a_connection_fault(server: RedisServer) -> None:
    """MASTERDOWN from a replica that may not serve stale data is transient."""
    replica = client(server.port)
    replica.config_set("replica-serve-stale-data", "no")
    replica.replicaof("127.0.0.1", free_port())  # a master that is not there
    try:
        exc = raised(lambda: replica.get("k"))
    finally:
        replica.replicaof("NO", "ONE")
        replica.config_set("replica-serve-stale-data", "yes")
    assert "MasterDownError" == type(exc).__name__
    assert CONNECTION == classify(exc)


def test_loading_dataset_is_a_server_fault(own_server: RedisServer) -> None:
    """LOADING while the server reloads its dataset is a BusyLoadingError: transient."""
    admin = client(own_server.port)
    admin.execute_command("DEBUG", "POPULATE", "100000")
    admin.config_set("loading-process-events-interval-bytes", "1024")
    other = client(own_server.port)
    other.ping()
    found: BaseException | None = None
    for _ in range(3):  # a reload that wins the race against every GET is tried again
        reload = threading.Thread(target=lambda: admin.execute_command("DEBUG", "RELOAD"))
        reload.start()
        deadline = time.monotonic() + 5.0
        while found is None and reload.is_alive() and time.monotonic() < deadline:
            try:
                other.get("key:1")
            except redis.RedisError as exc:
                found = exc
        reload.join(10)
        if found is not None:
            break
    assert found is not None, "every reload finished before a command saw LOADING"
    assert "BusyLoadingError" == type(found).__name__
    assert Fault(True, "server") == classify(found)


# --- cluster --------------------------------------------------------------------------------


def test_cluster_command_on_a_plain_server_is_permanent(server: RedisServer) -> None:
    """CLUSTER INFO on a server without cluster support is a ResponseError: permanent."""
    exc = raised(lambda: client(server.port).cluster("info"))
    assert "ResponseError" == type(exc).__name__
    assert PERMANENT == classify(exc)


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    """A server in cluster mode that serves no hash slot (no cluster was formed)."""
    yield from serve(tmp_path, args=["--cluster-enabled", "yes", *_bus_port()])


def test_cluster_without_served_slots_is_transient(cluster_node: RedisServer) -> None:
    """CLUSTERDOWN from a cluster node that serves no slot is a ClusterDownError: transient."""
    exc = raised(lambda: client(cluster_node.port).get("k"))
    assert ("ClusterDownError", Fault(True, "server")) == (type(exc).__name__, classify(exc)), exc


def _bus_port() -> list[str]:
    """A free cluster-bus port: by default redis uses port + 10000, which may be taken
    or past 65535 for a port from the ephemeral range (redis-server then exits 1)."""
    return ["--cluster-port", str(free_port())]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """Two cluster-mode nodes that met: the first serves slots 0-8000 only (full
    coverage not required), the second none. Yields their ports.
    """
    nodes = []
    bus_ports = []
    for name in ("a", "b"):
        bus = _bus_port()
        bus_ports.append(int(bus[1]))
        args = ["--cluster-enabled", "yes", "--cluster-require-full-coverage", "no", *bus]
        body = serve(tmp_path_factory.mktemp(f"cluster-{name}"), args=args)
        nodes.append((body, next(body)))
    try:
        first = client(nodes[0][1].port)
        first.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 8000)
        first.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[1][1].port, bus_ports[1])
        # a node reports cluster_state:ok 2 s after it starts at the earliest
        wait_for(lambda: b"cluster_state:ok" in first.execute_command("CLUSTER", "INFO"), 10)
        wait_for(lambda: b"handshake" not in first.execute_command("CLUSTER", "NODES"), 10)
        yield nodes[0][1].port, nodes[1][1].port
    finally:
        for body, _ in nodes:
            body.close()


def key_in_slots(conn: Any, low: int, high: int) -> str:
    """A hash tag whose slot lies in low..high (found by asking the server)."""
    for n in range(1000):
        tag = f"{{t{n}}}"
        if low <= conn.execute_command("CLUSTER", "KEYSLOT", tag) <= high:
            return tag
    raise AssertionError("no hash tag found")  # pragma: no cover


def test_multi_key_command_on_a_migrating_slot_is_transient(cluster: tuple[int, int]) -> None:
    """TRYAGAIN (multi-key command while its slot migrates) is a TryAgainError: transient."""
    first, second = client(cluster[0]), client(cluster[1])
    tag = key_in_slots(first, 0, 8000)
    first.set(f"{tag}present", "1")
    slot = first.execute_command("CLUSTER", "KEYSLOT", tag)
    target = second.execute_command("CLUSTER", "MYID")
    first.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target)
    try:
        exc = raised(lambda: first.mget(f"{tag}present", f"{tag}absent"))
    finally:
        first.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    assert "TryAgainError" == type(exc).__name__
    assert Fault(True, "server") == classify(exc)


def test_slot_without_a_node_is_transient_for_the_cluster_client(cluster: tuple[int, int]) -> None:
    """RedisCluster on a key whose slot no node serves: SlotNotCoveredError, transient."""
    conn = RedisCluster(host="127.0.0.1", port=cluster[0], require_full_coverage=False, **NO_RETRY)
    try:
        tag = key_in_slots(client(cluster[0]), 8001, 16383)
        exc = raised(lambda: conn.get(f"{tag}k"))
    finally:
        conn.close()
    assert "SlotNotCoveredError" == type(exc).__name__
    assert Fault(True, "server") == classify(exc)


def test_cluster_client_with_no_reachable_node_is_unsent() -> None:
    """RedisCluster with every startup node refusing: its exception carries the refusal."""
    exc = raised(lambda: RedisCluster(host="127.0.0.1", port=free_port(), **NO_RETRY))
    assert "RedisClusterException" == type(exc).__name__
    assert CONNECTION_UNSENT == classify(exc)
    assert is_unsent(exc)


def test_cluster_client_on_a_plain_server_is_permanent(server: RedisServer) -> None:
    """RedisCluster against a server without cluster mode: permanent."""
    exc = raised(lambda: RedisCluster(host="127.0.0.1", port=server.port, **NO_RETRY))
    assert "RedisClusterException" == type(exc).__name__
    assert PERMANENT == classify(exc)


# --- asyncio ----------------------------------------------------------------------------------


async def araised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        await call()
    return info.value


def aclient(port: int, **options: Any) -> Any:
    return redis.asyncio.Redis(host="127.0.0.1", port=port, **NO_ARETRY, **options)


def test_async_refused_connection_is_unsent() -> None:
    """redis.asyncio: a refused connect is connection and unsent."""

    async def main() -> BaseException:
        conn = aclient(free_port())
        try:
            return await araised(conn.ping)
        finally:
            await conn.aclose()

    exc = asyncio.run(main())
    assert "ConnectionError" == type(exc).__name__
    assert CONNECTION_UNSENT == classify(exc)


def test_async_read_timeout_is_a_timeout(silent: int) -> None:
    """redis.asyncio: a server that never answers gives a TimeoutError: timeout."""

    async def main() -> BaseException:
        conn = aclient(silent, socket_timeout=0.2)
        try:
            return await araised(conn.ping)
        finally:
            await conn.aclose()

    exc = asyncio.run(main())
    assert "TimeoutError" == type(exc).__name__
    assert Fault(True, "timeout") == classify(exc)


def test_async_server_answers(own_server: RedisServer, second_server: RedisServer) -> None:
    """redis.asyncio: NOAUTH is permanent, READONLY is connection, an unknown command permanent."""
    client(own_server.port).config_set("requirepass", "secret")
    client(second_server.port).replicaof("127.0.0.1", own_server.port)

    async def main() -> list[BaseException]:
        locked, replica = aclient(own_server.port), aclient(second_server.port)
        try:
            return [
                await araised(locked.ping),
                await araised(lambda: replica.set("k", "v")),
                await araised(lambda: replica.execute_command("NO-SUCH-COMMAND")),
            ]
        finally:
            await locked.aclose()
            await replica.aclose()

    auth, readonly, unknown = asyncio.run(main())
    assert ("AuthenticationError", PERMANENT) == (type(auth).__name__, classify(auth))
    assert ("ReadOnlyError", CONNECTION) == (type(readonly).__name__, classify(readonly))
    assert ("ResponseError", PERMANENT) == (type(unknown).__name__, classify(unknown))


def test_async_cluster_client_with_no_reachable_node_is_unsent() -> None:
    """redis.asyncio RedisCluster with every startup node refusing: connection, unsent."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    async def main() -> BaseException:
        conn = AsyncRedisCluster(host="127.0.0.1", port=free_port(), **NO_ARETRY)
        try:
            return await araised(lambda: conn.get("k"))
        finally:
            await conn.aclose()

    exc = asyncio.run(main())
    assert "RedisClusterException" == type(exc).__name__
    assert CONNECTION_UNSENT == classify(exc)


# --- end to end ---------------------------------------------------------------------------------


def test_retry_recovers_when_the_server_comes_back(own_server: RedisServer) -> None:
    """@retry over a redis-py command succeeds once the killed server is restarted."""
    conn = client(own_server.port, socket_timeout=1, socket_connect_timeout=1)
    conn.set("counter", 41)
    own_server.stop()
    restart = threading.Timer(0.3, own_server.start)
    restart.start()

    @retry(Policy(attempts=50, backoff=backoff.fixed(0.05), jitter="none", deadline=10))
    def bump() -> int:
        return int(conn.incr("counter"))

    try:
        assert 1 == bump()  # the restarted server has no persistence: a fresh counter
    finally:
        restart.join()


def test_non_idempotent_retry_resends_only_what_was_never_sent(
    own_server: RedisServer, silent: int
) -> None:
    """idempotent=False: a refused INCR is retried until the server is back; a timed-out
    INCR (it may have run) is not retried.
    """
    policy = Policy(
        attempts=50, backoff=backoff.fixed(0.05), jitter="none", deadline=10, idempotent=False
    )
    conn = client(own_server.port, socket_timeout=1, socket_connect_timeout=1)
    own_server.stop()
    restart = threading.Timer(0.3, own_server.start)
    restart.start()
    try:
        assert 1 == retry(policy)(conn.incr)("counter")
    finally:
        restart.join()
    calls = []

    @retry(policy)
    def bump() -> int:
        calls.append(1)
        return int(client(silent, socket_timeout=0.1).incr("counter"))

    with pytest.raises(redis.TimeoutError):
        bump()
    assert 1 == len(calls)


def test_failover_moves_on_when_a_server_is_killed(
    own_server: RedisServer, second_server: RedisServer
) -> None:
    """@failover across two real redis-servers answers from the second when the first dies."""
    clients = {
        own_server.port: client(own_server.port),
        second_server.port: client(second_server.port),
    }
    clients[second_server.port].set("where", "second")
    clients[own_server.port].set("where", "first")

    @failover([own_server.port, second_server.port], param="port")
    def where(port: int) -> bytes:
        return bytes(clients[port].get("where"))

    assert b"first" == where()
    own_server.stop()
    assert b"second" == where()


def test_failover_moves_past_a_read_only_replica(
    own_server: RedisServer, second_server: RedisServer
) -> None:
    """@failover skips a demoted primary (READONLY) and writes to the promoted one."""
    old, new = client(own_server.port), client(second_server.port)
    old.replicaof("127.0.0.1", second_server.port)  # the old primary became a replica

    @failover([own_server.port, second_server.port], param="port")
    def write(port: int) -> int:
        return int({own_server.port: old, second_server.port: new}[port].incr("n"))

    assert 1 == write()


def test_failover_raises_all_endpoints_failed_when_both_are_down() -> None:
    """Both servers refusing: AllEndpointsFailed, transient and unsent."""
    ports = [free_port(), free_port()]

    @failover(ports, param="port")
    def ping(port: int) -> bool:
        return bool(client(port).ping())

    exc = raised(ping)
    assert isinstance(exc, AllEndpointsFailed)
    assert classify(exc).transient
    assert is_unsent(exc)


# --- redis-py's own retry layer ----------------------------------------------------------------


def test_store_warns_once_about_a_client_that_retries(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """RedisStore given a redis-py client with its default Retry logs one WARNING."""
    from retryx.redis import RedisStore

    retrying = redis.Redis(host="127.0.0.1", port=server.port)
    with caplog.at_level(logging.WARNING, logger="retryx"):
        for _ in range(2):
            RedisStore(retrying).close()
    warnings = [r for r in caplog.records if "Retry" in r.getMessage()]
    assert 1 == len(warnings)
    assert "retry=Retry(NoBackoff(), 0)" in warnings[0].getMessage()


def test_store_does_not_warn_about_a_client_without_retries(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client built with Retry(NoBackoff(), 0), or a URL, gives no warning."""
    from retryx.redis import RedisStore

    with caplog.at_level(logging.WARNING, logger="retryx"):
        RedisStore(client(server.port)).close()
        RedisStore(server.url).close()
    assert [] == [r for r in caplog.records if "Retry" in r.getMessage()]
