"""Process-wide switches: retries off (``set_active``), capped (``test_mode``), a
decorated function's policy swapped (``override``).

The drivers read one flag, ``switches.slow``, on the happy path: it is ``True``
only while a switch is in effect, and sends each call through ``Pipeline.start``,
which applies them. ``test_mode`` acts on the retry decisions only (the failure
path), so it needs no flag at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError

if TYPE_CHECKING:
    from ._policy import Policy

__all__ = ["BYPASS", "Switches", "overriding", "set_active", "switches", "test_mode"]


class Switches:
    """The switches' state (one object, read by the drivers through a closure cell)."""

    __slots__ = ("active", "lock", "overrides", "slow", "test_attempts")

    def __init__(self) -> None:
        self.active = True
        self.slow = False
        self.test_attempts: int | None = None
        self.overrides = 0  # override() blocks in effect
        self.lock = threading.Lock()

    def _update(self) -> None:
        self.slow = not self.active or self.overrides > 0


switches = Switches()


class _Bypass:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BYPASS"


BYPASS: Any = _Bypass()
"""What ``Pipeline.start`` returns while retryx is switched off: call the function plainly."""


def set_active(active: bool) -> None:
    """Switch every retryx layer on (``True``, the default) or off.

    Off, every decorated callable is one plain call of the function: nothing is
    retried, breakers admit and count nothing, failover calls the first endpoint,
    fallbacks do not catch. Stamina's ``set_active``, tenacity's ``enabled=False``.
    """
    if not isinstance(active, bool):
        raise ConfigError(f"set_active: active must be a bool, got {active!r}")
    with switches.lock:
        switches.active = active
        switches._update()


def is_active() -> bool:
    """Whether retryx layers are switched on (see ``set_active``)."""
    return switches.active


@contextmanager
def test_mode(attempts: int = 1) -> Iterator[None]:  # noqa: PT028 (not a test)
    """Cap every retry policy at ``attempts`` and remove every wait, inside the block.

    For test suites that exercise code with retries but should not wait for them
    (stamina's ``set_testing``). Restores the previous mode on exit.

    Raises:
        ConfigError: when ``attempts`` is not an int >= 1.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"test_mode: attempts must be an int >= 1, got {attempts!r}")
    with switches.lock:
        saved = switches.test_attempts
        switches.test_attempts = attempts
    try:
        yield
    finally:
        with switches.lock:
            switches.test_attempts = saved


def capped(policy: Policy) -> Policy:
    """``policy`` under ``test_mode`` (attempts capped), or ``policy`` itself."""
    cap = switches.test_attempts
    if cap is None or (policy.attempts is not None and policy.attempts <= cap):
        return policy
    return policy.replace(attempts=cap)


@contextmanager
def overriding(pipeline: Any, policy: Policy) -> Iterator[Policy]:
    """``pipeline`` (a ``Pipeline``) runs with ``policy`` inside the block (``override``)."""
    with switches.lock:
        saved = pipeline.override
        pipeline.override = policy
        switches.overrides += 1
        switches._update()
    try:
        yield policy
    finally:
        with switches.lock:
            pipeline.override = saved
            switches.overrides -= 1
            switches._update()
