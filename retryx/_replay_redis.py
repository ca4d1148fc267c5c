"""The Redis replay backend (extra ``retryx[redis]``): one queue shared by a fleet.

Keys, all under the hash tag ``retryx:replay:{NAME}:`` (``NAME`` from ``?queue=``,
default ``default``), so a cluster keeps them in one slot:

- ``seq``: counter giving each entry its order;
- ``pending`` / ``dead``: sorted sets of call ids scored by ``seq``;
- ``claims``: sorted set of claimed call ids scored by claim expiry (server ms);
- ``e:CALL_ID``: hash with ``target args kwargs error created_at attempts
  last_error seq`` and the claim ``token``.

Every step is one Lua script, so it is atomic on the server, and claim times
come from the server clock (``TIME``), so workers' clocks do not matter.
"""

from __future__ import annotations

from typing import Any

from ._errors import ConfigError
from ._replay_model import Claimed, ReplayEntry, make_entry

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_ENQUEUE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], 'target', ARGV[2], 'args', ARGV[3], 'kwargs', ARGV[4],
  'error', ARGV[5], 'created_at', ARGV[6], 'attempts', 0, 'last_error', ARGV[5], 'seq', seq)
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return seq
"""

# KEYS: pending, claims. ARGV: after, upto, token, timeout_ms, batch, entry key prefix.
_CLAIM = (
    _NOW
    + """
local batch = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'WITHSCORES',
  'LIMIT', 0, batch)
local last = ARGV[1]
for i = 1, #ids, 2 do
  local cid = ids[i]
  local key = ARGV[6] .. cid
  last = ids[i + 1]
  local expiry = redis.call('ZSCORE', KEYS[2], cid)
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], cid)
    redis.call('ZREM', KEYS[2], cid)
  elseif (not expiry) or tonumber(expiry) <= now then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), cid)
    redis.call('HSET', key, 'token', ARGV[3])
    local e = redis.call('HMGET', key, 'target', 'args', 'kwargs', 'attempts', 'last_error',
      'created_at')
    return {cid, last, e[1], e[2], e[3], e[4], e[5], e[6]}
  end
end
if #ids < 2 * batch then last = ARGV[2] end
return {'', last}
"""
)

# KEYS: claims, entry. ARGV: call_id, token, timeout_ms.
_RENEW = (
    _NOW
    + """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# KEYS: pending, dead, claims, entry. ARGV: call_id.
_PURGE = """
local n = redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
"""

# KEYS: pending, dead, claims, entry. ARGV: call_id, token, error, max_replays.
_FAIL = """
if redis.call('HGET', KEYS[4], 'token') ~= ARGV[2] then return -1 end
local n = redis.call('HINCRBY', KEYS[4], 'attempts', 1)
redis.call('HSET', KEYS[4], 'last_error', ARGV[3])
redis.call('HDEL', KEYS[4], 'token')
redis.call('ZREM', KEYS[3], ARGV[1])
if n >= tonumber(ARGV[4]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[4], 'seq'), ARGV[1])
  return 1
end
return 0
"""

# KEYS: claims, entry. ARGV: call_id, token.
_RELEASE = """
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], 'token')
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


def _settimeout(conn: Any, timeout: float | None) -> None:
    """Apply ``timeout`` to a connected redis-py connection's socket (if connected)."""
    sock = getattr(conn, "_sock", None)
    if sock is not None:
        sock.settimeout(timeout)


_FIELDS = ("target", "args", "kwargs", "attempts", "last_error", "created_at")
_BATCH = 100


class RedisBackend:
    """A queue in one Redis database; the client is thread-safe and fork-aware."""

    def __init__(self, url: str, name: str) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "ReplayQueue: a redis:// queue needs the redis package "
                "(pip install 'retryx[redis]')"
            ) from None
        try:
            self.client: Any = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=5.0,
                socket_timeout=30.0,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"ReplayQueue: bad Redis URL: {exc}") from None
        prefix = f"retryx:replay:{{{name}}}:"
        self.prefix = prefix
        self.seq, self.pending, self.dead = prefix + "seq", prefix + "pending", prefix + "dead"
        self.claims = prefix + "claims"
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        register = self.client.register_script
        self._enqueue = register(_ENQUEUE)
        self._claim = register(_CLAIM)
        self._renew = register(_RENEW)
        self._purge = register(_PURGE)
        self._fail = register(_FAIL)
        self._release = register(_RELEASE)

    def _key(self, call_id: str) -> str:
        return f"{self.prefix}e:{call_id}"

    def enqueue(
        self,
        call_id: str,
        target: str,
        args: str,
        kwargs: str,
        error: str,
        created_at: float,
        timeout: float | None = None,
    ) -> None:
        keys = [self.seq, self.pending, self._key(call_id)]
        argv = [call_id, target, args, kwargs, error, repr(created_at)]
        if timeout is None:
            self._enqueue(keys=keys, args=argv)
            return
        # Bounded by the caller's time left: one pooled connection whose timeouts are
        # lowered for this one command, then put back.
        pool = self.client.connection_pool
        try:
            conn = pool.get_connection()
        except TypeError:  # redis-py < 5.3 requires a command name
            conn = pool.get_connection("EVALSHA")
        saved = (conn.socket_timeout, conn.socket_connect_timeout)
        try:
            conn.socket_timeout = timeout
            conn.socket_connect_timeout = min(timeout, saved[1] or timeout)
            _settimeout(conn, timeout)
            try:
                conn.send_command("EVALSHA", self._enqueue.sha, len(keys), *keys, *argv)
                conn.read_response()
            except self._no_script:
                conn.send_command("EVAL", _ENQUEUE, len(keys), *keys, *argv)
                conn.read_response()
        finally:
            conn.socket_timeout, conn.socket_connect_timeout = saved
            _settimeout(conn, saved[0])
            pool.release(conn)

    def last_seq(self) -> int:
        return int(self.client.get(self.seq) or 0)

    def claim(
        self, after: int, upto: int, token: str, timeout: float
    ) -> tuple[Claimed | None, int]:
        reply = self._claim(
            keys=[self.pending, self.claims],
            args=[after, upto, token, max(1, round(timeout * 1000)), _BATCH, self.prefix + "e:"],
        )
        last = int(float(reply[1]))
        if not reply[0]:
            return None, last
        call_id, _, target, args, kwargs, attempts, last_error, created_at = reply
        entry = make_entry(call_id, target, args, kwargs, attempts, last_error, created_at)
        return Claimed(last, entry), last

    def renew(self, call_id: str, token: str, timeout: float) -> None:
        self._renew(
            keys=[self.claims, self._key(call_id)],
            args=[call_id, token, max(1, round(timeout * 1000))],
        )

    def complete(self, call_id: str) -> None:
        # Removed even when the claim was lost meanwhile: the call did succeed.
        self._purge(keys=[self.pending, self.dead, self.claims, self._key(call_id)], args=[call_id])

    def fail(self, call_id: str, token: str, error: str, max_replays: int) -> bool | None:
        moved = int(
            self._fail(
                keys=[self.pending, self.dead, self.claims, self._key(call_id)],
                args=[call_id, token, error, max_replays],
            )
        )
        return None if moved < 0 else bool(moved)

    def release(self, call_id: str, token: str) -> None:
        self._release(keys=[self.claims, self._key(call_id)], args=[call_id, token])

    def entries(self, dead: bool) -> list[ReplayEntry]:
        ids = self.client.zrange(self.dead if dead else self.pending, 0, -1)
        pipe = self.client.pipeline(transaction=False)
        for call_id in ids:
            pipe.hmget(self._key(call_id), _FIELDS)
        out = []
        for call_id, values in zip(ids, pipe.execute(), strict=True):
            if values[0] is not None:  # purged between the two reads
                out.append(make_entry(call_id, *values))
        return out

    def count(self) -> int:
        return int(self.client.zcard(self.pending))

    def purge(self, call_id: str) -> bool:
        keys = [self.pending, self.dead, self.claims, self._key(call_id)]
        return bool(self._purge(keys=keys, args=[call_id]))

    def close(self) -> None:
        self.client.close()
