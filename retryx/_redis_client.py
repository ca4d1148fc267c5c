"""The synchronous Redis client a ``retryx.redis.RedisStore`` talks through.

Built from a URL (the store owns it), taken as passed (a ``redis.Redis``), or made
from a ``redis.asyncio.Redis``'s connection settings. Needs the ``redis`` package:
only ``retryx.redis`` imports this module.
"""

from __future__ import annotations

import inspect
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._errors import ConfigError

__all__ = ["ERRORS", "TIMEOUT", "sync_client", "text", "where"]

# What a failed round trip raises: the store's outage handling catches these only.
ERRORS = (redis.RedisError, OSError)
# Socket timeouts of the clients retryx builds itself: an unreachable Redis must
# not block a caller for long (a URL's own options win).
TIMEOUT = 1.0
# Connection settings carried over from an asyncio client to the private sync one.
_PORTABLE = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "credential_provider",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "client_name",
    }
)


def text(value: Any) -> str:
    """A reply field as a str (clients may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def sync_client(client_or_url: Any) -> tuple[redis.Redis, bool]:
    """The synchronous client the store uses, and whether the store owns it.

    Raises:
        ConfigError: naming ``RedisStore.client_or_url``.
    """
    no_retry = Retry(NoBackoff(), 0)  # the sync loop is the retry: fail fast
    if isinstance(client_or_url, str):
        try:
            client = redis.Redis.from_url(
                client_or_url,
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
                retry=no_retry,
            )
        except ValueError as exc:
            raise ConfigError(
                f"RedisStore.client_or_url is not a Redis URL: {client_or_url!r} ({exc})"
            ) from exc
        return client, True
    if isinstance(client_or_url, redis.Redis):
        return client_or_url, False
    if isinstance(client_or_url, redis.asyncio.Redis):
        # The breaker protocol is synchronous (the drivers call it inline), and the
        # sync thread cannot use a client bound to an event loop: connect a private
        # sync client with the same connection settings.
        pool = client_or_url.connection_pool
        kwargs = {
            key: value
            for key, value in pool.connection_kwargs.items()
            if key in _PORTABLE or key.startswith("ssl_")
        }
        kwargs["socket_timeout"] = kwargs.get("socket_timeout") or TIMEOUT
        kwargs["socket_connect_timeout"] = kwargs.get("socket_connect_timeout") or TIMEOUT
        name = pool.connection_class.__name__
        connection_class = getattr(redis.connection, name, redis.connection.Connection)
        # Drop what the sync class does not take (the asyncio one has a few more).
        accepted: set[str] = set()
        for klass in connection_class.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                accepted.update(inspect.signature(init).parameters)
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
        sync_pool = redis.ConnectionPool(
            connection_class=connection_class, retry=no_retry, **kwargs
        )
        return redis.Redis(connection_pool=sync_pool), True
    raise ConfigError(
        "RedisStore.client_or_url must be a redis.Redis, a redis.asyncio.Redis or a "
        f"redis:// URL, got {client_or_url!r}"
    )


def where(client: redis.Redis) -> str:
    """The server ``client`` talks to, for messages: ``host:port/db`` or ``unix://path``."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
