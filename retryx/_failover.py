"""``@failover`` at call time: the endpoints of a pipeline, their breakers, the sweep.

One attempt under failover is a *sweep*: the endpoints in the layer's order, each
called through its own breaker (and the ``@circuit_breaker`` layer's, inside it)
with the endpoint as the ``param`` keyword, until one answers. Transient faults
move to the next endpoint, permanent ones end the sweep; when every endpoint
failed, ``AllEndpointsFailed``. The sweep's closed-breaker path is ``_guard``'s,
generated into both flavours of ``sweep`` from one template.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _bus, _clock, _engine, _guard, events
from ._breaker import CircuitBreaker
from ._breaker_state import unjudged
from ._classify import Classifier, classify
from ._context import HEAD_CALL_ID, HEAD_ENDPOINT, Head, call_id_of, retrying_of
from ._errors import AllEndpointsFailed, CircuitOpenError, ConfigError
from ._frozen import Frozen
from ._mistakes import callable_name
from ._nesting import address, carried

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["MAX_ENDPOINT_BREAKERS", "Failover", "FailoverLayer"]

MAX_ENDPOINT_BREAKERS = 1024


class FailoverLayer(Frozen):
    """What ``@failover(...)`` was given, validated (immutable, shared by pipelines)."""

    __slots__ = ("breaker", "hosts", "order", "param")
    hosts: tuple[Hashable, ...] | Callable[[], Sequence[Hashable]]
    param: str
    order: str
    breaker: CircuitBreaker | None

    def __init__(
        self,
        hosts: tuple[Hashable, ...] | Callable[[], Sequence[Hashable]],
        param: str,
        order: str,
        breaker: CircuitBreaker | None,
    ) -> None:
        self._set("hosts", hosts)
        self._set("param", param)
        self._set("order", order)
        self._set("breaker", breaker)


class Failover:
    """The failover layer of one pipeline: its endpoints' breakers and the sweep."""

    def __init__(self, pipeline: Pipeline, layer: FailoverLayer, inner: Any) -> None:
        self.pipeline = pipeline
        self.layer = layer
        self.param = layer.param
        # A fixed list in priority order needs no work per call.
        self.hosts: tuple[Hashable, ...] = ()
        if layer.order == "priority" and isinstance(layer.hosts, tuple):
            self.hosts = layer.hosts
        # The @circuit_breaker layer's breaker, called inside each endpoint's: fixed,
        # or (a name) resolved per sweep by the pipeline.
        self._inner: CircuitBreaker | None = inner if isinstance(inner, CircuitBreaker) else None
        self._inner_named = isinstance(inner, str)
        self._breakers: dict[Hashable, CircuitBreaker] = {}
        self._lock = threading.Lock()  # making, evicting (reads stay lock-free)
        # endpoint -> (its breaker, {param: endpoint}): the sweep's lookups in one.
        self._routes: dict[Hashable, tuple[CircuitBreaker, dict[str, Hashable]]] = {}
        self._rr = itertools.count()

    if TYPE_CHECKING:  # generated below the class (_SWEEP), sync and async

        def sweep(self, head: Head, wrapped: Any, args: Any, kwargs: Any) -> Any:
            """One attempt: the sweep over the endpoints (or the one the caller pinned)."""

        async def sweep_async(self, head: Head, wrapped: Any, args: Any, kwargs: Any) -> Any:
            """``sweep`` for coroutine functions."""

    def endpoints(self) -> Sequence[Hashable]:
        """The endpoints of this sweep, in the layer's order."""
        hosts = self.layer.hosts
        if callable(hosts):
            found = hosts()
            if isinstance(found, str | bytes) or not isinstance(found, Iterable):
                raise ConfigError(
                    f"{self.pipeline.name}: failover hosts callable {callable_name(hosts)} "
                    f"returned {found!r}; it must return a sequence of endpoints"
                )
            hosts = tuple(found)
            if not hosts:
                raise ConfigError(
                    f"{self.pipeline.name}: failover hosts callable returned no endpoints"
                )
        order = self.layer.order
        if order == "priority" or len(hosts) == 1:
            return hosts
        if order == "round_robin":
            start = next(self._rr) % len(hosts)
            return (*hosts[start:], *hosts[:start])
        shuffled = list(hosts)
        _clock.rng.shuffle(shuffled)
        return shuffled

    def inner(self) -> CircuitBreaker | None:
        """The @circuit_breaker layer's breaker (a named one as configured now)."""
        return self.pipeline.breaker() if self._inner_named else self._inner

    def breaker_of(self, endpoint: Hashable) -> CircuitBreaker:
        """``endpoint``'s breaker, made on first use."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            with self._lock:
                return self._new_breaker(endpoint)
        return breaker

    def _new_breaker(self, endpoint: Hashable) -> CircuitBreaker:
        """``endpoint``'s breaker, made and remembered (the lock held)."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:  # (made by another thread meanwhile otherwise)
            pipeline = self.pipeline
            template = self.layer.breaker
            # One predicate, set once: without counts= the breakers judge faults
            # with the policy's classifier (its retry_on).
            counts = pipeline.policy().classifier if pipeline.has_retry else classify
            if template is None:
                made = CircuitBreaker(
                    f"{pipeline.name}@{endpoint}",
                    failure_threshold=3,
                    recovery_timeout=30.0,
                    counts=counts,
                )
            else:
                made = template.copy(f"{template.name}@{endpoint}")
                if template.counts is classify:
                    made.counts = counts
            breakers = self._breakers
            if len(breakers) >= MAX_ENDPOINT_BREAKERS:
                # A hosts callable may keep naming new endpoints: forget the oldest
                # (and its route, so the sweep never holds a forgotten breaker).
                oldest = next(iter(breakers))
                breakers.pop(oldest, None)
                self._routes.pop(oldest, None)
            breaker = breakers.setdefault(endpoint, made)
        return breaker

    def route(self, endpoint: Hashable) -> tuple[CircuitBreaker, dict[str, Hashable]]:
        """The endpoint's breaker and its keyword, made once per endpoint.

        The keyword dict is shared by the endpoint's calls: each call copies it
        (``**``), so nothing can change it.
        """
        route = (self.breaker_of(endpoint), {self.param: endpoint})
        with self._lock:
            # Remembered only while its breaker is (an eviction meanwhile forgot it).
            if self._breakers.get(endpoint) is route[0]:
                self._routes[endpoint] = route
        return route

    def endpoint_failed(self, endpoint: Hashable, exc: Exception) -> None:
        self.pipeline.recorder.switched()
        if _bus._subscribers:
            _bus.emit(events.EndpointFailed(self.pipeline.name, endpoint, exc))

    def counted(
        self, head: Head, exc: Exception, guard: CircuitBreaker, inner: CircuitBreaker | None
    ) -> None:
        """Book a failure on the endpoint's breaker and the @circuit_breaker layer's,
        judged once: one ``counts`` verdict for both when they share the classifier,
        kept for the sweep and the retry decision when it is the policy's too."""
        if unjudged(exc):
            return  # an inner breaker's classifier failed: no verdict for these two
        counts = guard.counts
        fault = counts(exc)
        if inner is not None:
            inner._on_failure(None, exc, fault.transient if inner.counts is counts else None)
        guard._on_failure(None, exc, fault.transient)
        pipeline = self.pipeline
        if pipeline.has_retry:
            policy = pipeline.policy()
            if policy.retry_on is counts:
                call_id = call_id_of(head)
                if carried(exc, call_id) is None:  # a deferring inner layer's verdict wins
                    address(exc, call_id, (fault, True))

    def goes_on(self, head: Head, exc: Exception) -> bool:
        """Whether the sweep moves to the next endpoint after ``exc``.

        Judged once: the verdict of a deferring inner layer when the fault carries
        one, else the pipeline's policy; a fault that ends the sweep takes its
        verdict along to the retry decision (and ``defer``), which do not judge again.
        """
        if isinstance(exc, CircuitOpenError):
            return True  # an endpoint skipped by its open breaker: nothing was sent
        retrying = retrying_of(head)
        verdict = carried(exc, None if retrying is None else retrying[HEAD_CALL_ID])
        pipeline = self.pipeline
        if not pipeline.has_retry:
            # No policy here: the inner layer's judgement, else the default classifier.
            fault, idempotent = (classify(exc), True) if verdict is None else verdict
            return fault.transient and (idempotent or fault.unsent)
        policy = pipeline.policy()
        classifier: Classifier = policy.retry_on  # type: ignore[assignment]  # normalised
        judged = _engine.judge(classifier, policy.idempotent, exc, verdict)
        fault, idempotent = judged
        # Not idempotent: move on only when the request provably never left.
        if fault.transient and (idempotent or fault.unsent):
            return True
        address(exc, call_id_of(head), judged)
        return False


# The sweep, sync and async from the same lines. While the endpoint's breaker and the
# @circuit_breaker layer's are closed, both guards run in this frame (_guard's closed
# path, judged once by ``counted``); else through the breakers' own calls.
_SWEEP = """\
{A}def sweep(self, head, wrapped, args, kwargs):
    param = self.param
    inner = self._inner if not self._inner_named else self.inner()
    if param in kwargs:  # pinned by the caller: no sweep, the failure raised as is
        endpoint = kwargs[param]
        head[{ENDPOINT}] = endpoint
        guard = self.breaker_of(endpoint)
        if inner is None:
            return {W}guard.{CALL}(wrapped, args, kwargs, self.pipeline.recorder)
        return {W}guard.{CALL_WITH}(inner, wrapped, args, kwargs, self.pipeline.recorder)
    errors = None  # made on the first failure
    routes = self._routes
    for endpoint in self.hosts or self.endpoints():
        head[{ENDPOINT}] = endpoint
        guard, endpoint_kwargs = routes.get(endpoint) or self.route(endpoint)
        call_kwargs = {{**kwargs, param: endpoint}} if kwargs else endpoint_kwargs
        try:
            if {CLOSED}:
{PATH}
                return result
            # (the pipeline's recorder counts a rejection)
            recorder = self.pipeline.recorder
            if inner is None:
                return {W}guard.{CALL}(wrapped, args, call_kwargs, recorder)
            return {W}guard.{CALL_WITH}(inner, wrapped, args, call_kwargs, recorder)
        except error as exc:
            if not self.goes_on(head, exc):
                raise
            if errors is None:
                errors = {{}}
            errors[endpoint] = exc
            self.endpoint_failed(endpoint, exc)
    try:
        raise all_failed(errors or {{}})
    finally:
        errors = None  # its errors' tracebacks hold this frame: no cycle
"""


def _generate_sweeps(cls: type) -> None:
    for is_async in (False, True):
        w = "await " if is_async else ""
        closed, path = _guard.closed_path(
            [("guard", False), ("inner", True)],
            call=f"{w}wrapped(*args, **call_kwargs)",
            on_failure="self.counted(head, exc, guard, inner)",
            indent=16,
        )
        source = _SWEEP.format(
            A="async " if is_async else "",
            W=w,
            CALL="_call_async" if is_async else "_call",
            CALL_WITH="_call_with_async" if is_async else "_call_with",
            ENDPOINT=HEAD_ENDPOINT,
            CLOSED=closed,
            PATH=path,
        )
        flavour = "async" if is_async else "sync"
        namespace = {**_guard.names(), "all_failed": AllEndpointsFailed}
        sweep = _guard.compile_source(source, f"<retryx failover sweep, {flavour}>", namespace)
        method = sweep["sweep"]
        name = "sweep_async" if is_async else "sweep"
        method.__name__ = name
        method.__qualname__ = f"Failover.{name}"
        setattr(cls, name, method)


# Generated on first use (a compile each: not paid by ``import retryx``).
_guard.generated_lazily(Failover, ("sweep", "sweep_async"), _generate_sweeps)
