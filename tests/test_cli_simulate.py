"""``retryx simulate``: the contention experiment behind backoff with jitter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retryx import _clock, _simulate, backoff
from retryx._cli import main
from retryx._policy import Policy

ROOT = Path(__file__).resolve().parents[1]
BASE = ["simulate", "--clients", "100", "--attempts", "100", "--seed", "1"]


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``retryx simulate`` in-process; ``(status, stdout, stderr)``."""
    status = main(["simulate", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_jitter_makes_fewer_calls_than_no_jitter(capsys: pytest.CaptureFixture[str]) -> None:
    """For the same clients, every jittered policy makes fewer calls and finishes sooner."""
    status, out, _ = simulate(capsys, *BASE[1:], "--json")
    data = json.loads(out)
    assert status == 0
    results = {r["jitter"]: r for r in data["results"]}
    assert list(results) == ["none", "full", "equal", "decorrelated"]
    for kind in ("full", "equal", "decorrelated"):
        assert results[kind]["calls"] < results["none"]["calls"] / 2
        assert results[kind]["time"] < results["none"]["time"]
    assert all(r["succeeded"] == 100 and r["failed"] == 0 for r in results.values())


# The AWS architecture blog's simulator ("Exponential Backoff and Jitter"), 100 clients,
# averaged over runs: calls and seconds until every client is done. Its decorrelated
# jitter starts from the 5 ms base, retryx's from the first delay (10 ms): not compared.
BLOG = {"none": (1855, 63.0), "full": (798, 4.8), "equal": (813, 6.6)}


def test_the_blog_experiment_is_reproduced() -> None:
    """With the blog's policy and network, 100 clients make the blog's number of calls
    and take its time, within 10% on average, exponential without jitter included (the
    lockstep model made 5,050 calls there).
    """
    policy = Policy(attempts=1000, backoff=backoff.exponential(initial=0.01, max=2.0))
    runs = [_simulate.simulate_all(policy, clients=100, tick=0.02, seed=s) for s in range(8)]
    for kind, (calls, seconds) in BLOG.items():
        results = [r for run in runs for r in run if r.jitter == kind]
        assert all(r.succeeded == 100 for r in results)
        assert abs(sum(r.calls for r in results) / len(results) - calls) < 0.1 * calls, kind
        assert abs(sum(r.time for r in results) / len(results) - seconds) < 0.1 * seconds, kind


def test_without_backoff_every_jitter_kind_gives_the_same_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With no backoff delay, jitter has nothing to spread: the rows are equal, and the
    report says why.
    """
    results = _simulate.simulate_all(Policy(attempts=30, backoff="none"), clients=20, seed=4)
    assert 1 == len({(r.calls, r.time, r.failed) for r in results})
    _, out, _ = simulate(capsys, "--clients", "20", "--backoff", "none", "--seed", "4")
    assert "note: with no backoff delay there is nothing for jitter to spread" in out


def test_same_seed_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs with the same seed print exactly the same report."""
    first = simulate(capsys, *BASE[1:])
    second = simulate(capsys, *BASE[1:])
    assert first == second
    expected = "100 clients, service capacity 1 per read-write window, 0.02s round trips, seed 1"
    assert expected == first[1].splitlines()[0]


def test_simulation_leaves_retryx_random_source_alone() -> None:
    """A run draws from its own seeded generator and restores retryx's shared one."""
    shared = _clock.rng
    state = shared.getstate()
    _simulate.simulate_all(Policy(attempts=5), clients=20, seed=2)
    assert _clock.rng is shared
    assert shared.getstate() == state


def test_text_report_has_table_and_bar_charts(capsys: pytest.CaptureFixture[str]) -> None:
    """The text report is a table, then bar charts of calls and of time to finish."""
    status, out, _ = simulate(capsys, *BASE[1:])
    lines = out.splitlines()
    assert status == 0
    assert lines[1].split() == [
        "jitter",
        "calls",
        "calls/client",
        "succeeded",
        "failed",
        "time",
        "to",
        "finish",
    ]
    assert [line.split()[0] for line in lines[2:6]] == ["none", "full", "equal", "decorrelated"]
    assert "calls" in lines
    assert "time to finish" in lines
    none_bar = next(line for line in lines if line.strip().startswith("none") and "#" in line)
    assert none_bar.endswith("#" * 30)


def test_exhausted_clients_count_as_failed(capsys: pytest.CaptureFixture[str]) -> None:
    """Clients that run out of attempts are counted as failed and a note says so."""
    status, out, _ = simulate(capsys, "--clients", "20", "--attempts", "2", "--seed", "3")
    assert status == 0
    assert "note: some clients ran out of attempts" in out
    result = _simulate.simulate(Policy(attempts=2, jitter="none"), clients=20, seed=3)
    assert result.failed > 0
    assert 20 == result.succeeded + result.failed
    assert 20 + result.failed <= result.calls <= 40  # a failed client made its 2 attempts


def test_deadline_ends_clients(capsys: pytest.CaptureFixture[str]) -> None:
    """A client gives up when its next wait would cross the deadline."""
    policy = Policy(attempts=50, jitter="none", deadline=1.0)
    result = _simulate.simulate(policy, clients=50, seed=1)
    assert result.failed > 0
    assert result.time <= 1.0


def test_capacity_and_tick_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``--capacity`` lets that many writes win per window; ``--tick`` is the round trip."""
    _, out, _ = simulate(
        capsys, "--clients", "10", "--capacity", "10", "--tick", "0.5", "--seed", "1", "--json"
    )
    data = json.loads(out)
    assert (data["capacity"], data["tick"]) == (10, 0.5)
    # Nobody conflicts: one call each, done after a read, a write and an answer.
    assert all(r["calls"] == 10 and 0.5 < r["time"] < 3 * 0.5 for r in data["results"])


def test_random_seed_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``--seed`` a seed is drawn and printed, so the run can be repeated."""
    _, out, _ = simulate(capsys, "--clients", "5", "--json")
    seed = json.loads(out)["seed"]
    _, again, _ = simulate(capsys, "--clients", "5", "--json", "--seed", str(seed))
    assert json.loads(again)["results"] == json.loads(out)["results"]


def test_jitter_option_is_reported_unused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--jitter`` does not narrow the comparison; a note says it is not used."""
    _, out, _ = simulate(capsys, "--clients", "5", "--seed", "1", "--jitter", "full")
    assert out.splitlines()[-1] == "note: simulate compares every jitter kind; --jitter is not used"


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(1, 40),
    capacity=st.integers(1, 5),
    attempts=st.integers(1, 8),
    seed=st.integers(0, 10**6),
)
def test_counts_add_up(clients: int, capacity: int, attempts: int, seed: int) -> None:
    """Every client succeeds or fails, and calls stay between clients and clients x attempts."""
    for r in _simulate.simulate_all(
        Policy(attempts=attempts), clients=clients, capacity=capacity, seed=seed
    ):
        assert r.succeeded + r.failed == clients
        assert clients <= r.calls <= clients * attempts
        assert r.succeeded >= min(clients, capacity)


def test_plot_without_matplotlib_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--plot`` without matplotlib prints one clear line and exits 2 before simulating."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = simulate(capsys, "--clients", "5", "--plot", str(tmp_path / "x.png"))
    assert (2, "") == (status, out)
    assert len(err.splitlines()) == 1
    assert "needs matplotlib" in err
    assert "pip install 'retryx[plot]'" in err


def test_plot_draws_with_matplotlib(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--plot FILE`` draws the calls and times per jitter kind and saves the figure."""
    pyplot: Any = mock.MagicMock()
    fig, calls_ax, time_ax = mock.MagicMock(), mock.MagicMock(), mock.MagicMock()
    pyplot.subplots.return_value = (fig, (calls_ax, time_ax))
    mpl: Any = ModuleType("matplotlib")
    mpl.use = mock.MagicMock()
    mpl.pyplot = pyplot
    monkeypatch.setitem(sys.modules, "matplotlib", mpl)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    target = str(tmp_path / "jitter.png")
    status, out, _ = simulate(capsys, "--clients", "5", "--seed", "1", "--plot", target)
    assert status == 0
    mpl.use.assert_called_once_with("Agg")
    fig.savefig.assert_called_once_with(target)
    names = calls_ax.bar.call_args.args[0]
    assert names == ["none", "full", "equal", "decorrelated"]
    assert out.splitlines()[-1] == f"plot written to {target}"
    # Readable: every bar labelled with its value; the setting and policy in the title.
    calls_ax.bar_label.assert_called_once()
    time_ax.bar_label.assert_called_once()
    title = fig.suptitle.call_args.args[0]
    assert title.startswith("5 clients, service capacity 1 per read-write window, 0.02s")
    assert "seed 1\npolicy: backoff.exponential(" in title


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--clients", "0"],
        ["--clients", "x"],
        ["--clients", "5", "--capacity", "0"],
        ["--clients", "5", "--tick", "0"],
        ["--clients", "5", "--tick", "nan"],
        ["--clients", "5", "--seed", "x"],
        ["--clients", "5", "--attempts", "0"],
        ["--clients", "5", "--backoff", "fixed", "--multiplier", "2"],
        ["--clients", "100000", "--attempts", "100"],
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    """Every invalid ``simulate`` option prints one ``retryx: error:`` line and exits 2."""
    status, out, err = simulate(capsys, *options)
    assert (2, "") == (status, out)
    assert len(err.splitlines()) == 1
    assert err.startswith("retryx: error: ")


def test_simulate_through_python_m_is_deterministic() -> None:
    """``python -m retryx simulate --seed`` prints the same report as the in-process run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.run(
            [sys.executable, "-m", "retryx", *BASE],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            cwd=ROOT,
            check=False,
        )
        for _ in range(2)
    ]
    assert procs[0].returncode == 0, procs[0].stderr
    assert procs[0].stdout == procs[1].stdout
    calls = {line.split()[0]: int(line.split()[1]) for line in procs[0].stdout.splitlines()[2:6]}
    assert calls["none"] > max(calls["full"], calls["equal"], calls["decorrelated"])
