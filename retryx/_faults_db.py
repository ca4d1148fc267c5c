"""Client verdicts: db clients (see ``retryx._clients``)."""

from __future__ import annotations

from collections.abc import Callable

from ._fault import Fault

__all__ = ["JUDGES"]

JUDGES: dict[str, Callable[[BaseException], Fault | None]] = {}
