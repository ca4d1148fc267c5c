"""``retryx replay list|run`` through the command's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from retryx._cli import main
from retryx.replay import ReplayQueue
from retryx.testing import fake_time
from tests import _replay_workers as workers


def test_replay_list_and_run_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deferred call is listed, then replayed successfully by ``retryx replay run``."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    queue = ReplayQueue(url)
    workers.use(queue)
    down = tmp_path / "down"
    down.write_text("1")
    log = tmp_path / "log"
    try:
        with fake_time():
            assert workers.record(str(log), str(down), 7) is None  # deferred
    finally:
        workers.use(None)
    assert 1 == len(queue.pending())

    assert 0 == main(["replay", "list", url])
    listed = capsys.readouterr().out
    assert queue.pending()[0].call_id in listed

    down.unlink()  # the dependency is back
    workers.use(queue)
    try:
        assert 0 == main(["replay", "run", url, "--limit", "5"])
    finally:
        workers.use(None)
    assert [] == queue.pending()


def test_replay_run_bad_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``--limit 0`` is refused with one line on stderr and exit status 2."""
    assert 2 == main(["replay", "run", "sqlite:///x.db", "--limit", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert 1 == len(err)
