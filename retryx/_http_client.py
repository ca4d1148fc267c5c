"""What the HTTP client integrations share: the method rules, the verdict on a
response, and the per-host pipelines built from the public decorators.

``retryx.httpx`` and ``retryx.requests`` only adapt their client's types to
this. Every request goes through a pipeline made by ``retryx.retry`` and
``retryx.circuit_breaker`` for its host, so events, stats, budgets, deadlines
and the nested-retry guard behave exactly as for a decorated function. A
retryable status travels through the pipeline as a ``StatusFault`` (a
private exception carrying the response, judged by ``classify``: status,
``Retry-After``, ``Retryx-Pushback``); after giving up the client returns that
last response, not the exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Container
from typing import Any

from ._breaker import CircuitBreaker
from ._classify import _TRANSIENT_STATUSES, Classifier, classify, is_unsent
from ._context import current
from ._decorators import circuit_breaker, retry
from ._errors import ConfigError
from ._fault import Fault
from ._policy import Policy
from ._stats import Stats

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "Host",
    "Hosts",
    "StatusFault",
    "capped",
    "host_name",
    "may_resend",
    "time_left",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Retried for any transient fault (RFC 9110 section 9.2.2)."""

KEYED_METHODS = frozenset({"POST", "PATCH"})
"""Retried for any transient fault only with an ``Idempotency-Key`` header."""

RETRYABLE_STATUSES: Container[int] = _TRANSIENT_STATUSES  # the classifier's table: one place
_MAX_HOSTS = 1024  # a client calling ever new hosts forgets the oldest pipelines
_MIN_TIMEOUT = 0.001  # a client timeout of 0 means "none" to some clients
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class StatusFault(Exception):
    """A response with a retryable status, raised inside the pipeline so it is retried.

    ``classify`` reads its ``.response`` (status, ``Retry-After``, ``Retryx-Pushback``).
    """

    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def may_resend(method: str, headers: Container[str], replayable: bool) -> bool:
    """Whether a request may be sent again after a fault that does not prove it unsent.

    Idempotent methods may, ``POST`` and ``PATCH`` only with an ``Idempotency-Key``
    (``headers`` is the client's case-insensitive mapping); a body that cannot be
    replayed never is.
    """
    if not replayable:
        return False
    if method in IDEMPOTENT_METHODS:
        return True
    return method in KEYED_METHODS and "idempotency-key" in headers


def time_left() -> float | None:
    """Seconds left before the deadline of the retryx call in progress, or ``None``."""
    context = current()
    if context is None or context.remaining is None:
        return None
    return max(context.remaining, _MIN_TIMEOUT)


def capped(timeout: float | None, left: float) -> float:
    """A client timeout (``None``: none) that ends by the deadline."""
    return left if timeout is None else min(timeout, left)


def host_name(scheme: str, host: str, port: int | None) -> str:
    """``"host:port"`` (``"[::1]:port"`` for IPv6), the default port filled in."""
    if port is None:
        port = _DEFAULT_PORTS.get(scheme.lower(), 0)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class _HostClassifier:
    """The classifier of one host pipeline: the policy's ``retry_on`` for exceptions,
    the status table for responses, then the method rule.
    """

    __slots__ = ("classifier", "resend")

    def __init__(self, classifier: Classifier, resend: bool) -> None:
        self.classifier = classifier
        self.resend = resend

    def __call__(self, exc: BaseException) -> Fault:
        # A status is judged by its status table, Retry-After and Retryx-Pushback
        # (classify's rules, whatever retry_on says about exceptions).
        fault = classify(exc) if type(exc) is StatusFault else self.classifier(exc)
        if fault.transient and not self.resend and not (fault.unsent or is_unsent(exc)):
            # Sent (or maybe sent) and not safe to send again: the caller gets it.
            return Fault(False, fault.cause)
        return fault

    def __repr__(self) -> str:
        return f"http({self.classifier!r}, resend={self.resend})"


class Hosts:
    """The pipelines of one client, two per host: one for requests that may be
    sent again, one that retries only faults proving the request unsent.
    """

    def __init__(
        self,
        client: str,
        policy: Policy | None,
        breakers: bool | CircuitBreaker,
        budget: Any,
        *,
        is_async: bool,
    ) -> None:
        owner = f"retryx.{client}"
        if policy is None:
            policy = Policy()
        elif not isinstance(policy, Policy):
            raise ConfigError(f"{owner}: policy must be a retryx.Policy or None, got {policy!r}")
        if not isinstance(breakers, bool | CircuitBreaker):
            raise ConfigError(
                f"{owner}: breakers must be True, False or a CircuitBreaker template, "
                f"got {breakers!r}"
            )
        if budget is not None:
            from ._budget import RetryBudget

            if not isinstance(budget, RetryBudget):
                raise ConfigError(f"{owner}: budget must be a RetryBudget or None, got {budget!r}")
            policy = policy.replace(budget=budget)
        if policy.attempt_timeout is not None and not is_async:
            raise ConfigError(
                f"{owner}: policy.attempt_timeout needs the async client (a sync request "
                f"cannot be interrupted), got attempt_timeout={policy.attempt_timeout}; "
                "set the client's own timeout instead"
            )
        self.client = client
        self.policy = policy
        self.breakers = breakers
        # One attempt (the client's send, a plain function): set by the client before
        # its first request, after this validated the arguments.
        self.attempt: Callable[..., Any] | None = None
        classifier: Classifier = policy.retry_on  # type: ignore[assignment]  # normalised
        self._classifiers = (
            _HostClassifier(classifier, resend=False),
            _HostClassifier(classifier, resend=True),
        )
        self._hosts: dict[Any, Host] = {}
        self.lookup = self._hosts.get
        self._lock = threading.Lock()

    def add(self, key: Any, scheme: str, host: str, port: int | None) -> Host:
        """The pipelines of the host ``key`` stands for, made on its first request
        (``lookup(key)`` finds them afterwards).
        """
        name = host_name(scheme, host, port)
        with self._lock:
            found = self._hosts.get(key)
            if found is None:
                breaker = None
                if self.breakers is True:
                    breaker = CircuitBreaker(name, counts=self._classifiers[1])
                elif isinstance(self.breakers, CircuitBreaker):
                    breaker = self.breakers.copy(name)
                found = Host(
                    self._make(name, breaker, 0), self._make(name, breaker, 1), name, breaker
                )
                if len(self._hosts) >= _MAX_HOSTS:
                    self._hosts.pop(next(iter(self._hosts)))
                self._hosts[key] = found
        return found

    def _make(self, name: str, breaker: CircuitBreaker | None, resend: int) -> Any:
        label = f"{self.policy.name or self.client}@{name}"
        policy = self.policy.replace(retry_on=self._classifiers[resend], name=label)
        attempt = self.attempt
        assert attempt is not None
        if breaker is not None:
            attempt = circuit_breaker(breaker)(attempt)
        return retry(policy)(attempt)

    def find(self, host: str) -> Host:
        """The pipelines of ``host`` (``"host:port"``).

        Raises:
            ConfigError: when no request went to ``host`` yet.
        """
        for found in list(self._hosts.values()):
            if found.name == host:
                return found
        raise ConfigError(f"retryx.{self.client}: no request went to {host!r} yet")


class Host:
    """One host's pipelines (``once``: no re-sending; ``resend``) and breaker."""

    __slots__ = ("breaker", "name", "once", "resend")

    def __init__(self, once: Any, resend: Any, name: str, breaker: CircuitBreaker | None) -> None:
        self.once = once
        self.resend = resend
        self.name = name
        self.breaker = breaker

    def stats(self) -> Stats:
        """The counters of both pipelines together."""
        from ._decorators import stats

        return _sum(stats(self.once), stats(self.resend))


def _sum(a: Stats, b: Stats) -> Stats:
    by_cause = dict(a.by_cause)
    for cause, n in b.by_cause.items():
        by_cause[cause] = by_cause.get(cause, 0) + n
    return Stats(
        calls=a.calls + b.calls,
        successes=a.successes + b.successes,
        failures=a.failures + b.failures,
        attempts=a.attempts + b.attempts,
        retries=a.retries + b.retries,
        gave_up=a.gave_up + b.gave_up,
        total_elapsed=a.total_elapsed + b.total_elapsed,
        max_elapsed=max(a.max_elapsed, b.max_elapsed),
        by_cause=by_cause,
        rejections=a.rejections + b.rejections,
        switches=a.switches + b.switches,
    )
