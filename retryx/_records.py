"""Log records for retryx's own messages, made cheaply.

``logging.LogRecord.__init__`` re-derives the same call-site fields (file name,
module, level name...) for every record, and that is most of what a logged retry
costs. A ``RecordMaker`` belongs to one call site (a decorated function): it takes
the fields that never change from one real record, then makes each record by
copying them and filling in only what changes per record (message, level, time,
thread, process, task), exactly as ``LogRecord.__init__`` does.

Safety nets: a record factory installed with ``logging.setLogRecordFactory`` is
always honoured (the fast path is only for the stock ``LogRecord``), and the first
fast record is compared with a real one field by field; on any difference (a
Python version that adds a field, say) the fast path turns itself off for good.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

__all__ = ["RecordMaker"]

_LogRecord = logging.LogRecord
_new = object.__new__
_getLevelName = logging.getLevelName
# getLevelName's own table (kept current by logging.addLevelName); the function is
# the fallback for levels it does not name.
_level_names: dict[int, str] = getattr(logging, "_levelToName", {})
_NS = sys.version_info >= (3, 13)  # LogRecord reads time.time_ns() from 3.13 on
_TASKS = sys.version_info >= (3, 12)  # ... and records the asyncio task's name from 3.12
# Fields that differ between two records of one call site made a moment apart.
_TIMES = ("created", "msecs", "relativeCreated")
_fast = True  # turned off for good if a fast record ever differs from a real one
_FACTORY_GLOBAL = hasattr(logging, "_logRecordFactory")

# os.getpid() is a system call here (glibc no longer caches it): remember it, and
# forget it in a forked child.
_pid: list[int] = [os.getpid()]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


class RecordMaker:
    """Makes the ``LogRecord``s of one call site (logger name, file, line, function)."""

    __slots__ = ("func", "lineno", "name", "pathname", "template")

    def __init__(self, name: str, pathname: str, lineno: int, func: str | None) -> None:
        self.name = name
        self.pathname = pathname
        self.lineno = lineno
        self.func = func
        # Every field of a real record of this call site, in its order; learnt once.
        self.template: dict[str, Any] | None = None

    def __call__(
        self, level: int, msg: str, args: tuple[Any, ...], clock: Any = None
    ) -> logging.LogRecord:
        """A record as ``Logger.makeRecord`` would make it (no ``exc_info``, no extra).

        ``clock`` is the time reading to use (``time.time()``, or ``time.time_ns()``
        from 3.13 on); ``None`` reads the clock now. The clock and thread functions
        are looked up on their modules at each call, as ``LogRecord`` does, so a
        patched ``time.time`` (freezegun) or ``threading`` (gevent) gives the same
        values in both.
        """
        # getLogRecordFactory() only returns this module global: read it without the call.
        factory = logging._logRecordFactory if _FACTORY_GLOBAL else logging.getLogRecordFactory()  # type: ignore[attr-defined]
        template = self.template
        if template is None or factory is not _LogRecord or not _fast:
            record: logging.LogRecord = factory(
                self.name, level, self.pathname, self.lineno, msg, args, None, self.func
            )
            if template is None and factory is _LogRecord and _fast:
                self._learn(record)
            return record
        record = _new(_LogRecord)
        record.__dict__ = fields = template.copy()  # much cheaper than update()
        # What LogRecord.__init__ computes per record, in the same way. (A sole
        # Mapping argument is unwrapped by LogRecord; retryx never passes one.)
        fields["msg"] = msg
        fields["args"] = args
        fields["levelname"] = _level_names.get(level) or _getLevelName(level)
        fields["levelno"] = level
        if _NS:
            ns = time.time_ns() if clock is None else clock
            fields["created"] = ns / 1e9
            fields["msecs"] = ns // 1_000_000 % 1000 + 0.0
            fields["relativeCreated"] = (ns - logging._startTime) / 1e6  # type: ignore[attr-defined]
        else:
            ct = time.time() if clock is None else clock
            fields["created"] = ct
            fields["msecs"] = (ct % 1.0 * 1000) // 1  # == int((ct - int(ct)) * 1000) + 0.0
            fields["relativeCreated"] = (ct - logging._startTime) * 1000  # type: ignore[attr-defined]
        if logging.logThreads:
            fields["thread"] = threading.get_ident()
            fields["threadName"] = threading.current_thread().name
        else:
            fields["thread"] = None
            fields["threadName"] = None
        if not logging.logMultiprocessing:
            fields["processName"] = None
        else:
            name = "MainProcess"
            mp = sys.modules.get("multiprocessing")
            if mp is not None:
                try:
                    name = mp.current_process().name
                except Exception:  # as LogRecord does: multiprocessing may be half-loaded
                    pass
            fields["processName"] = name
        fields["process"] = _pid[0] if logging.logProcesses else None
        if _TASKS:
            task = None
            if logging.logAsyncioTasks:  # type: ignore[attr-defined]
                asyncio = sys.modules.get("asyncio")
                if asyncio is not None:
                    try:
                        task = asyncio.current_task().get_name()
                    except Exception:  # as LogRecord does: no running loop or task
                        pass
            fields["taskName"] = task
        return record

    def _learn(self, real: logging.LogRecord) -> None:
        """Keep ``real``'s fields as the template if a fast copy of it is identical.

        The copy is made by the fast path itself, from the real record's inputs and
        its clock reading, so the check covers every per-record computation.
        """
        global _fast
        self.template = dict(real.__dict__)
        created = real.created
        copy = self(real.levelno, real.msg, real.args, round(created * 1e9) if _NS else created)  # type: ignore[arg-type]
        fields = copy.__dict__
        # From 3.13 the real clock reading (ns) is not recoverable from ``created``
        # exactly: the time fields are then compared to within a millisecond.
        same = list(fields) == list(real.__dict__) and all(
            fields[key] == value or (_NS and key in _TIMES and abs(fields[key] - value) <= 1.0)
            for key, value in real.__dict__.items()
        )
        if not same:
            self.template = None
            _fast = False
        else:
            # Every record sets its own msg and args: the template keeps none, so the
            # first record's arguments (an exception, its frames) are not kept alive.
            self.template["msg"] = self.template["args"] = None
