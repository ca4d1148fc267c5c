"""Verdicts on the exceptions of third-party clients, without importing them.

Each ``_faults_*`` module maps a top-level package name (the first part of an
exception class's ``__module__``) to a *judge*: ``judge(exc) -> Fault | None``
(``None``: no opinion). ``judge`` walks the exception's MRO and asks the judge of
each class's package, so a subclass defined elsewhere still gets its base's verdict.
"""

from __future__ import annotations

from collections.abc import Callable

from . import _faults_db, _faults_http, _faults_rpc
from ._fault import Fault

__all__ = ["Judge", "judge"]

Judge = Callable[[BaseException], "Fault | None"]

JUDGES: dict[str, Judge] = {**_faults_http.JUDGES, **_faults_rpc.JUDGES, **_faults_db.JUDGES}


def judge(exc: BaseException) -> Fault | None:
    """The built-in client verdict on ``exc``, or ``None`` when no client rule knows it."""
    seen: set[str] = set()
    for klass in type(exc).__mro__:
        root = klass.__module__.partition(".")[0]
        if root in seen:
            continue
        seen.add(root)
        rule = JUDGES.get(root)
        if rule is not None:
            fault = rule(exc)
            if fault is not None:
                return fault
    return None
