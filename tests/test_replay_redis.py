"""The Redis replay backend's own behaviour (the shared behaviour is in test_replay.py)."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the workers are imported as tests._replay_workers
    sys.path.insert(0, str(ROOT))

from retryx import ConfigError  # noqa: E402
from retryx.replay import ReplayQueue, ReplayReport  # noqa: E402
from tests import _replay_workers as w  # noqa: E402


@pytest.fixture
def name() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def queue(redis_base: str, name: str) -> Iterator[ReplayQueue]:
    made = ReplayQueue(f"{redis_base}?queue={name}")
    w.use(made)
    yield made
    w.use(None)
    made.close()


@pytest.fixture
def client(redis_base: str) -> Iterator[Any]:
    import redis

    made = redis.Redis.from_url(redis_base, decode_responses=True)
    yield made
    made.close()


@pytest.mark.redis
def test_keys_live_under_one_hash_tag_and_go_away(
    queue: ReplayQueue, client: Any, name: str, tmp_path: Path
) -> None:
    """Every key of a queue shares the hash tag {NAME}; a replayed entry leaves only seq."""
    down = tmp_path / "down"
    down.touch()
    w.record(str(tmp_path / "log"), str(down))
    [entry] = queue.pending()
    prefix = f"retryx:replay:{{{name}}}:"

    assert {f"{prefix}seq", f"{prefix}pending", f"{prefix}e:{entry.call_id}"} == set(
        client.keys(f"{prefix}*")
    )
    down.unlink()
    assert ReplayReport(1, 1, 0, 0) == queue.replay()
    assert [f"{prefix}seq"] == client.keys(f"{prefix}*")


@pytest.mark.redis
def test_named_queues_are_separate(redis_base: str, queue: ReplayQueue) -> None:
    """?queue=NAME keeps queues on one server apart."""
    w.always_down(1)
    with ReplayQueue(f"{redis_base}?queue=other-{uuid.uuid4().hex}") as other:
        assert [] == other.pending()
        assert ReplayReport(0, 0, 0, 0) == other.replay()
    assert 1 == len(queue.pending())


@pytest.mark.redis
def test_claims_follow_the_server_clock(queue: ReplayQueue, client: Any, name: str) -> None:
    """A claim is free once its expiry (server milliseconds) has passed, whoever held it."""
    w.always_down(1)
    [entry] = queue.pending()
    claims = f"retryx:replay:{{{name}}}:claims"
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000

    client.zadd(claims, {entry.call_id: now_ms + 60_000})  # another worker holds it
    assert ReplayReport(0, 0, 0, 0) == queue.replay()
    client.zadd(claims, {entry.call_id: now_ms - 1})  # that worker died long ago
    assert ReplayReport(1, 0, 1, 0) == queue.replay()
    assert 0 == client.zcard(claims)


@pytest.mark.redis
def test_url_options_reach_the_client(redis_base: str) -> None:
    """Query options other than queue= go to redis-py."""
    with ReplayQueue(f"{redis_base}?socket_timeout=5&queue=opts-{uuid.uuid4().hex}") as q:
        assert [] == q.pending()


def test_unreachable_redis_raises_the_fault_with_a_note() -> None:
    """When Redis cannot be reached at the call, the caller gets its own fault, noted."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytest.importorskip("redis")
    with ReplayQueue(f"redis://127.0.0.1:{port}/0") as queue:
        w.use(queue)
        try:
            with pytest.raises(ConnectionResetError) as info:
                w.always_down(1)
        finally:
            w.use(None)
    assert any("could not defer" in note for note in info.value.__notes__)


def test_missing_redis_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redis:// queue without the redis package names the extra to install."""
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigError, match=r"retryx\[redis\]"):
        ReplayQueue("redis://127.0.0.1:6379/0")
