"""retryx's own log records: made from a learnt template, identical to ``LogRecord``'s."""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from typing import Any

import pytest

import retryx
from retryx import _records
from retryx._records import RecordMaker
from retryx.testing import FakeClock, FaultSequence

TIMES = ("created", "msecs", "relativeCreated")


def real_record(level: int, msg: str, args: tuple[Any, ...]) -> logging.LogRecord:
    return logging.LogRecord("retryx", level, "/src/app/client.py", 42, msg, args, None, "fetch")


def test_fast_records_equal_real_ones_field_for_field() -> None:
    """After the first record, every field but the clock readings is what
    ``LogRecord.__init__`` computes, in the same order.
    """
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    first = maker(logging.WARNING, "retrying %s", ("a",))
    assert maker.template is not None
    fast = maker(logging.ERROR, "giving up on %s after %d", ("b", 3))
    real = real_record(logging.ERROR, "giving up on %s after %d", ("b", 3))
    assert type(real) is type(fast) is type(first)
    assert list(real.__dict__) == list(fast.__dict__)
    for key, value in real.__dict__.items():
        if key not in TIMES:
            assert value == fast.__dict__[key], key
    assert "giving up on b after 3" == fast.getMessage()
    assert "ERROR" == fast.levelname
    assert "client" == fast.module
    assert "client.py" == fast.filename


def test_the_clock_fields_follow_the_standard_arithmetic() -> None:
    """``msecs`` and ``relativeCreated`` derive from ``created`` as in ``LogRecord``."""
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    record = maker(logging.WARNING, "m", ())
    created = record.created
    if sys.version_info < (3, 13):
        assert int((created - int(created)) * 1000) + 0.0 == record.msecs
        assert (created - logging._startTime) * 1000 == record.relativeCreated  # type: ignore[attr-defined]
    assert 0.0 <= record.msecs < 1000.0
    assert abs(real_record(logging.WARNING, "m", ()).created - created) < 5.0


def test_thread_name_is_the_logging_threads() -> None:
    """A record made in another thread names that thread."""
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    names: list[str | None] = []
    worker = threading.Thread(
        target=lambda: names.append(maker(logging.WARNING, "m", ()).threadName),
        name="worker-7",
    )
    worker.start()
    worker.join(timeout=10)
    assert ["worker-7"] == names


def test_a_custom_record_factory_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``logging.setLogRecordFactory``, records come from the user's factory."""

    class Tagged(logging.LogRecord):
        tag = "mine"

    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())  # the template is learnt from the stock factory
    monkeypatch.setattr(logging, "_logRecordFactory", Tagged)
    assert Tagged is logging.getLogRecordFactory()
    record = maker(logging.WARNING, "m", ())
    assert isinstance(record, Tagged)


def test_a_difference_turns_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a fast record would differ from a real one, records come from ``LogRecord``."""
    monkeypatch.setattr(_records, "_fast", True)
    # A field computed differently (as a future Python might): the level's name.
    monkeypatch.setattr(_records, "_level_names", {logging.WARNING: "WARN"})
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    assert maker.template is None
    assert not _records._fast
    record = maker(logging.WARNING, "m", ())
    assert "WARNING" == record.levelname


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_records_its_own_pid() -> None:
    """The cached process id is refreshed in a forked child."""
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    assert os.getpid() == maker(logging.WARNING, "m", ()).process
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            os.write(write, str(maker(logging.WARNING, "m", ()).process).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert str(pid) == reported


def test_a_retry_record_points_at_the_decorated_function(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The WARNING of a retry is a complete record: file, line, function, thread, process."""
    flaky = FaultSequence(ConnectionError("down"), ConnectionError("down"), "ok")

    @retryx.retry(attempts=3, backoff="none")
    def fetch() -> str:
        return str(flaky())

    with caplog.at_level(logging.WARNING, logger="retryx"):
        assert "ok" == fetch()
    first, second = [r for r in caplog.records if r.levelno == logging.WARNING]
    code = fetch.__wrapped__.__code__  # type: ignore[attr-defined]
    for record in (first, second):
        assert code.co_filename == record.pathname
        assert code.co_firstlineno == record.lineno
        assert os.path.basename(code.co_filename) == record.filename
        assert fetch.__qualname__ == record.funcName
        assert threading.current_thread().name == record.threadName
        assert os.getpid() == record.process
        assert "ConnectionError" in record.getMessage()
    assert 2 == second.retryx["attempt"]


def test_logger_filters_still_apply(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A filter on the ``retryx`` logger sees (and may drop) every retryx record."""
    seen: list[str] = []

    def only_errors(record: logging.LogRecord) -> bool:
        seen.append(record.levelname)
        return record.levelno >= logging.ERROR

    flaky = FaultSequence(ConnectionError("down"), "ok")

    @retryx.retry(attempts=2, backoff="none")
    def fetch() -> str:
        return str(flaky())

    logger = logging.getLogger("retryx")
    logger.addFilter(only_errors)
    try:
        with caplog.at_level(logging.WARNING, logger="retryx"):
            assert "ok" == fetch()
    finally:
        logger.removeFilter(only_errors)
    assert ["WARNING"] == seen
    assert [] == [r for r in caplog.records if r.name == "retryx"]


def test_a_patched_clock_is_read_as_logging_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``time.time`` patched (freezegun does this), records carry the patched time."""
    import time

    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    monkeypatch.setattr(time, "time", lambda: 1_000_000_000.25)
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_250_000_000)
    fast = maker(logging.WARNING, "m", ())
    real = real_record(logging.WARNING, "m", ())
    for key in TIMES:
        assert getattr(real, key) == getattr(fast, key), key
    assert 250.0 == fast.msecs


@pytest.mark.parametrize(
    "flags",
    [
        {"logThreads": False},
        {"logProcesses": False},
        {"logMultiprocessing": False},
        {"logThreads": False, "logProcesses": False, "logMultiprocessing": False},
    ],
    ids=["no-threads", "no-processes", "no-multiprocessing", "none"],
)
def test_logging_flags_are_honoured(
    monkeypatch: pytest.MonkeyPatch, flags: dict[str, bool]
) -> None:
    """``logging.logThreads``/``logProcesses``/``logMultiprocessing`` turned off leave the
    same fields empty as in a real record."""
    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    for name, value in flags.items():
        monkeypatch.setattr(logging, name, value)
    fast = maker(logging.WARNING, "m", ())
    real = real_record(logging.WARNING, "m", ())
    for key in ("thread", "threadName", "process", "processName"):
        assert getattr(real, key) == getattr(fast, key), key


def test_the_multiprocessing_process_name_is_recorded() -> None:
    """With multiprocessing loaded, ``processName`` is its current process's name."""
    import multiprocessing

    maker = RecordMaker("retryx", "/src/app/client.py", 42, "fetch")
    maker(logging.WARNING, "m", ())
    process = multiprocessing.current_process()
    saved = process.name
    process.name = "worker-3"
    try:
        fast = maker(logging.WARNING, "m", ())
    finally:
        process.name = saved
    assert "worker-3" == fast.processName
