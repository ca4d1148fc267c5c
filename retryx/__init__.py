"""retryx: retries, failover and circuit breakers for calls to unreliable things.

Decorators wrap any callable (sync or async, functions and every kind of method)
and fuse into one pipeline: ``fallback -> retry -> failover -> circuit_breaker ->
call``, whatever order they are written in.
"""

from typing import TYPE_CHECKING

from ._attempts import attempts
from ._breaker import CircuitBreaker
from ._breaker_registry import breakers
from ._budget import RetryBudget
from ._classify import Fault, classify
from ._config import configure
from ._context import ENDPOINT, context, current
from ._decorators import circuit_breaker, describe, failover, fallback, retry, stats
from ._errors import (
    AllEndpointsFailed,
    CircuitOpenError,
    ConfigError,
    NestedRetryError,
    Permanent,
    RetryxError,
    Transient,
)
from ._nesting import carry
from ._policy import Policy
from ._switches import set_active
from ._wrapper import override

from . import backoff, events, jitter  # isort: skip

if TYPE_CHECKING:  # typed for checkers; loaded on first use at run time (__getattr__)
    # asgi, httpx, requests, wsgi: not in __all__ (a star-import never needs an extra),
    # so re-exported by the alias.
    from . import asgi as asgi
    from . import faults, otel, prometheus, redis, replay, sockets, testing
    from . import httpx as httpx
    from . import requests as requests
    from . import wsgi as wsgi

__all__ = [
    "ENDPOINT",
    "AllEndpointsFailed",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "Fault",
    "NestedRetryError",
    "Permanent",
    "Policy",
    "RetryBudget",
    "RetryxError",
    "Transient",
    "attempts",
    "backoff",
    "breakers",
    "carry",
    "circuit_breaker",
    "classify",
    "configure",
    "context",
    "current",
    "describe",
    "events",
    "failover",
    "fallback",
    "faults",
    "jitter",
    "otel",
    "override",
    "prometheus",
    "redis",
    "replay",
    "retry",
    "set_active",
    "sockets",
    "stats",
    "testing",
]

__version__ = "0.1.0"


# Heavier modules load on first use so ``import retryx`` stays light. A module added
# here is also imported under TYPE_CHECKING above, so checkers see its types.
# httpx, requests, asgi, wsgi: the HTTP integrations (section 16), not in __all__.
_LAZY = (
    *("faults", "otel", "prometheus", "redis", "replay", "sockets", "testing"),
    *("httpx", "requests", "asgi", "wsgi"),
)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'retryx' has no attribute {name!r}")
