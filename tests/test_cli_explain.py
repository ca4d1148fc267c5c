"""``retryx explain``, the schedule computation behind it, and the shared CLI plumbing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retryx import _config, _explain, backoff, jitter
from retryx._cli import main
from retryx._policy import Policy

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m retryx`` from the source tree."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "retryx", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(autouse=True)
def _fresh_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the loaded configuration around each test."""
    monkeypatch.delenv("RETRYX_CONFIG", raising=False)
    _config.reset_for_tests()
    yield
    _config.reset_for_tests()


@pytest.fixture
def payments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration file with a ``payments`` policy, installed through $RETRYX_CONFIG."""
    path = tmp_path / "retryx.toml"
    path.write_text(
        "[policies.payments]\n"
        "attempts = 4\n"
        'backoff = { kind = "exponential", initial = 0.2, max = 10 }\n'
        'jitter = "equal"\n'
        "deadline = 30\n"
    )
    monkeypatch.setenv("RETRYX_CONFIG", str(path))
    _config.reset_for_tests()
    return path


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``retryx explain`` in-process; ``(status, stdout, stderr)``."""
    status = main(["explain", *args])
    out, err = capsys.readouterr()
    return status, out, err


def warning_lines(out: str) -> list[str]:
    """The ``warning:`` lines of an explain output."""
    return [line for line in out.splitlines() if line.startswith("warning:")]


# --------------------------------------------------------------------------- table


def test_default_policy_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Without options the default policy is shown: 3 attempts, exponential 0.1 s, full jitter."""
    status, out, err = explain(capsys)
    assert (0, "") == (status, err)
    lines = out.splitlines()
    assert lines[0].startswith("policy: attempts=3, backoff=backoff.exponential(initial=0.1")
    assert lines[1].split()[:5] == ["attempt", "wait", "min", "wait", "max"]
    rows = [line.split() for line in lines[2:5]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert rows[1][1:4] == ["0s", "0.1s", "0.1s"]
    assert rows[2][1:4] == ["0s", "0.2s", "0.3s"]


def test_bar_chart_marks_sure_and_jittered_parts(capsys: pytest.CaptureFixture[str]) -> None:
    """The bar shows the guaranteed wait with '#' and the jitter range with '-'."""
    _, out, _ = explain(capsys, "--attempts", "3", "--jitter", "equal", "--initial", "1")
    last = out.splitlines()[4]
    assert last.endswith("#" * 15 + "-" * 15)
    _, out, _ = explain(capsys, "--attempts", "3", "--jitter", "none", "--initial", "1")
    assert out.splitlines()[4].endswith("#" * 30)


def test_deadline_marks_and_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """Attempts whose start may or must cross the deadline are marked, and a warning says so."""
    status, out, _ = explain(
        capsys, "--attempts", "5", "--initial", "1", "--jitter", "equal", "--deadline", "4"
    )
    assert status == 0
    marks = [line.split()[4] for line in out.splitlines()[2:7]]
    # worst cases 0, 1, 3, 7, 15; best cases 0, 0.5, 1.5, 3.5, 7.5
    assert marks == ["ok", "ok", "ok", "maybe", "cut"]
    (warning,) = warning_lines(out)
    assert "beyond the 4s deadline" in warning
    assert "attempt 4" in warning


def test_good_policy_has_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """A bounded exponential policy with jitter and a deadline draws no warning."""
    status, out, _ = explain(
        capsys,
        "--attempts",
        "5",
        "--backoff",
        "exponential",
        "--jitter",
        "full",
        "--deadline",
        "30",
    )
    assert (0, []) == (status, warning_lines(out))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--attempts", "11"], "11 attempts and no deadline"),
        (["--attempts", "3", "--backoff", "none"], "2 immediate (0 s) retries"),
        (["--max", "301"], "the delay cap is 301s"),
        (["--jitter", "none"], "no jitter"),
        (["--attempts", "6", "--backoff", "fixed"], "a fixed 1s interval over 6 attempts"),
        (["--attempts", "4", "--initial", "1", "--deadline", "2"], "beyond the 2s deadline"),
    ],
)
def test_each_anti_pattern_warns(
    capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    """Each anti-pattern of the guidance yields its own ``warning:`` line."""
    status, out, _ = explain(capsys, *options)
    assert status == 0
    assert any(expected in line for line in warning_lines(out)), out


def test_warnings_come_after_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings are the last lines of the output, one per line."""
    _, out, _ = explain(capsys, "--attempts", "12", "--backoff", "none", "--jitter", "none")
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("warning:"))
    assert all(line.startswith("warning:") for line in lines[first:])
    assert len(lines) - first == 2


def test_one_immediate_retry_is_fine() -> None:
    """``backoff.immediate`` makes a single 0 s retry, which is not an anti-pattern."""
    policy = Policy(attempts=4, backoff=backoff.immediate())
    assert not any("immediate" in w for w in _explain.warnings(policy))


def test_custom_backoff_without_cap_warns() -> None:
    """A backoff that does not state its cap is reported as having none."""

    class Doubling:
        def delay(self, n: int) -> float:
            return 2.0**n

    policy = Policy(attempts=4, backoff=Doubling())
    assert any(w.startswith("no cap on the delay") for w in _explain.warnings(policy))
    assert _explain.to_json(policy)["policy"]["cap"] is None


def test_single_attempt_only_checks_attempts() -> None:
    """With one attempt there is no wait, hence no delay-related warning."""
    assert _explain.warnings(Policy(attempts=1, jitter="none")) == []


def test_many_rows_are_elided(capsys: pytest.CaptureFixture[str]) -> None:
    """Long schedules show the first and last rows, and say when attempts go beyond the limit."""
    _, out, _ = explain(capsys, "--attempts", "5000")
    assert "... 977 more rows ..." in out
    assert f"(schedule shows the first {_explain.MAX_ROWS} of 5000 attempts)" in out
    assert len(out.splitlines()) < 40


# --------------------------------------------------------------------------- JSON


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints the policy, rows, worst case and warnings as one JSON document."""
    status, out, _ = explain(
        capsys, "--attempts", "4", "--jitter", "none", "--initial", "1", "--deadline", "2", "--json"
    )
    data = json.loads(out)
    assert status == 0
    assert data["policy"] == {
        "name": None,
        "attempts": 4,
        "backoff": "backoff.exponential(initial=1.0, multiplier=2.0, max=30.0)",
        "jitter": "none",
        "deadline": 2.0,
        "cap": 30.0,
    }
    assert [r["delay_max"] for r in data["rows"]] == [0.0, 1.0, 2.0, 4.0]
    assert [r["worst_case"] for r in data["rows"]] == [0.0, 1.0, 3.0, 7.0]
    assert [r["deadline"] for r in data["rows"]] == ["ok", "ok", "cut", "cut"]
    assert data["worst_case"] == 7.0
    assert data["truncated"] is False
    assert any("deadline" in w for w in data["warnings"])


# --------------------------------------------------------------------------- policies


def test_named_policy_positional_and_option(
    capsys: pytest.CaptureFixture[str], payments: Path
) -> None:
    """NAME and ``--policy NAME`` both resolve through the configuration."""
    for args in (["payments"], ["--policy", "payments"]):
        status, out, _ = explain(capsys, *args, "--json")
        data = json.loads(out)
        assert status == 0
        assert data["policy"]["name"] == "payments"
        assert data["policy"]["attempts"] == 4
        assert data["policy"]["jitter"] == "equal"


def test_options_override_named_policy(capsys: pytest.CaptureFixture[str], payments: Path) -> None:
    """Options adjust a named policy; backoff options keep its other backoff settings."""
    _, out, _ = explain(capsys, "payments", "--max", "20", "--attempts", "6", "--json")
    data = json.loads(out)
    assert data["policy"]["attempts"] == 6
    assert data["policy"]["backoff"] == "backoff.exponential(initial=0.2, multiplier=2.0, max=20.0)"


def test_backoff_kinds_from_options() -> None:
    """Each ``--backoff`` kind takes its options: ``--initial`` is its first delay."""
    cases = {
        ("exponential", "--initial", "0.5", "--multiplier", "3", "--max", "9"): backoff.exponential(
            0.5, 3, 9
        ),
        ("incremental", "--initial", "2", "--step", "0.5", "--max", "4"): backoff.incremental(
            2, 0.5, 4
        ),
        ("fixed", "--initial", "2"): backoff.fixed(2),
        ("immediate", "--initial", "0.3"): backoff.immediate(backoff.exponential(0.3)),
        ("none",): backoff.none(),
    }
    from retryx._cli import _parser, build_policy

    for argv, expected in cases.items():
        args = _parser().parse_args(["explain", "--backoff", *argv])
        assert expected == build_policy(args).backoff


@pytest.mark.parametrize(
    "options",
    [
        ["--attempts", "0"],
        ["--attempts", "-3"],
        ["--attempts", "x"],
        ["--backoff", "bogus"],
        ["--jitter", "bogus"],
        ["--deadline", "0"],
        ["--deadline", "-1"],
        ["--deadline", "nan"],
        ["--initial", "-1"],
        ["--initial", "inf"],
        ["--max", "nan"],
        ["--multiplier", "0.5"],
        ["--backoff", "incremental", "--multiplier", "2"],
        ["--step", "1"],
        ["--backoff", "fixed", "--max", "3"],
        ["--backoff", "none", "--initial", "1"],
        ["nosuchpolicy"],
        ["a", "--policy", "b"],
        ["--bogus"],
        ["--attempts"],
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    """Every invalid option prints exactly one ``retryx: error:`` line on stderr and exits 2."""
    status, out, err = explain(capsys, *options)
    assert (2, "") == (status, out)
    assert len(err.splitlines()) == 1
    assert err.startswith("retryx: error: ")


def test_bad_named_policy_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken configuration behind a named policy is a one-line usage error."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[policies.p]\nattempts = 0\nbogus = 1\n")
    monkeypatch.setenv("RETRYX_CONFIG", str(bad))
    status, _, err = explain(capsys, "p")
    assert status == 2
    assert len(err.splitlines()) == 1


# --------------------------------------------------------------------------- schedule


def test_decorrelated_bounds_follow_previous_maximum() -> None:
    """Decorrelated jitter's max grows from the previous row's max, capped at the backoff max."""
    policy = Policy(attempts=5, backoff=backoff.exponential(1.0, max=20.0), jitter="decorrelated")
    rows = _explain.schedule_rows(policy)
    assert [r.delay_max for r in rows] == [0.0, 3.0, 9.0, 20.0, 20.0]
    assert {r.delay_min for r in rows[1:]} == {1.0}


backoffs = st.one_of(
    st.builds(
        backoff.exponential,
        initial=st.floats(0, 10),
        multiplier=st.floats(1, 4),
        max=st.floats(0, 100),
    ),
    st.builds(backoff.incremental, initial=st.floats(0, 10), step=st.floats(0, 5)),
    st.builds(backoff.fixed, delay=st.floats(0, 10)),
    st.just(backoff.immediate()),
    st.just(backoff.none()),
    st.lists(st.floats(0, 10), min_size=1, max_size=4).map(backoff.schedule),
)
jitters = st.sampled_from([jitter.none, jitter.full, jitter.equal, jitter.decorrelated])


@settings(max_examples=60, deadline=None)
@given(b=backoffs, j=jitters, attempts=st.integers(1, 12), seed=st.integers(0, 1000))
def test_drawn_delays_fall_within_the_schedule(
    b: backoff.Backoff, j: jitter.Jitter, attempts: int, seed: int
) -> None:
    """Every delay the engine-style draw produces lies within its row's bounds and the cap."""
    from retryx import testing

    policy = Policy(attempts=attempts, backoff=b, jitter=j)
    rows = _explain.schedule_rows(policy)
    assert len(rows) == attempts
    with testing.seed(seed):
        drawn = list(_explain.delays(policy))
    assert len(drawn) == attempts - 1
    total = 0.0
    for row, d in zip(rows[1:], drawn, strict=True):
        assert row.delay_min - 1e-9 <= d <= row.delay_max + 1e-9
        assert d <= backoff.cap_of(b) + 1e-9
        total += row.delay_max
        assert math.isclose(row.worst_case, total, abs_tol=1e-9)
        assert row.best_case <= row.worst_case


def test_fmt_seconds() -> None:
    """Seconds print with at most three decimals and no trailing zeros."""
    assert [_explain.fmt_seconds(x) for x in (0, 0.1, 25.6, 2.0, 0.0004, math.inf)] == [
        "0s",
        "0.1s",
        "25.6s",
        "2s",
        "0s",
        "inf",
    ]


# --------------------------------------------------------------------------- plumbing


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``retryx`` alone prints one error line and exits 2."""
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retryx: error:")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "command", [["explain"], ["run"], ["connect"], ["simulate"], ["config"], ["config", "check"]]
)
def test_every_command_has_help_with_examples(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """``--help`` exits 0 and shows examples for every command."""
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "retryx " in out


def test_explain_through_python_m() -> None:
    """``python -m retryx explain`` prints the table and warnings end to end."""
    proc = run_cli("explain", "--attempts", "12", "--backoff", "fixed", "--jitter", "none")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].startswith("attempt")
    assert len(warning_lines(proc.stdout)) == 3


def test_bad_option_through_python_m() -> None:
    """``python -m retryx explain --attempts 0`` exits 2 with one stderr line."""
    proc = run_cli("explain", "--attempts", "0")
    assert (2, "") == (proc.returncode, proc.stdout)
    assert proc.stderr == "retryx: error: Policy.attempts must be >= 1, got 0\n"


# --------------------------------------------------------------------------- config check


def test_config_check_valid_file_shows_each_schedule(
    capsys: pytest.CaptureFixture[str], payments: Path
) -> None:
    """A valid file exits 0 with the report lines, then each policy's schedule table."""
    assert main(["config", "check", str(payments)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"configuration: {payments}"
    assert lines[1].startswith("policy payments: attempts=4")
    assert "policy 'payments': attempts=4" in out
    assert sum(1 for line in lines if line.split()[:1] == ["4"]) == 1  # the last table row


def test_config_check_lists_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bad file exits 1 and prints every problem, one per line."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[policies.p]\nattempts = 0\nbogus = 1\n")
    assert main(["config", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert "attempts" in errors[0]
    assert "bogus" in errors[1]
    assert out.splitlines()[-1] == "2 problems found"


def test_config_check_missing_file_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file given explicitly that does not exist is a problem (exit 1)."""
    assert main(["config", "check", str(tmp_path / "nope.toml")]) == 1
    assert "1 problem found" in capsys.readouterr().out


def test_config_check_without_file_checks_what_configure_loads(
    capsys: pytest.CaptureFixture[str], payments: Path
) -> None:
    """Without FILE, ``config check`` checks what ``configure()`` would load ($RETRYX_CONFIG)."""
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"configuration: {payments}"


def test_config_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """``retryx config`` without ``check`` is a one-line usage error."""
    assert main(["config"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
