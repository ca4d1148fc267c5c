"""The backoff and jitter kinds, and the options each takes, come from one table per module
(``backoff.KINDS``, ``jitter.KINDS``): the configuration and the command line accept the
same kinds with the same options and build the same strategy from them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retryx import _config, backoff, jitter
from retryx._cli import _parser, build_policy
from retryx._cli_options import policy_parent

# A valid value for every option of every kind. A new option fails these tests until it
# has a value here, and so until both the configuration and the command line are shown
# to take it.
BACKOFF_VALUES: dict[str, Any] = {
    "initial": 0.5,
    "multiplier": 3.0,
    "max": 9.0,
    "min": 0.25,
    "step": 0.75,
    "delay": 2.0,
    "delays": [1.0, 2.0, 5.0],
    "then": "fixed",
}
JITTER_VALUES: dict[str, Any] = {"factor": 0.2, "max": 0.5}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test from an empty directory, no $RETRYX_CONFIG and nothing loaded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(_config.ENV_VAR, raising=False)
    _config.reset_for_tests()
    yield
    _config.reset_for_tests()


def from_cli(*argv: str) -> Any:
    return build_policy(_parser().parse_args(["explain", *argv]))


def inline(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, **options}


def toml_table(table: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + " }"


def cli_value(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


@pytest.mark.parametrize("kind", list(backoff.KINDS))
def test_every_backoff_kind_takes_the_same_options_in_config_and_cli(kind: str) -> None:
    """Each backoff kind with all its options builds the same backoff from a file and from
    the command line, and the same as its constructor."""
    options = {name: BACKOFF_VALUES[name] for name in backoff.parameters(kind)}
    arguments = {k: backoff.KINDS[v]() if k == "then" else v for k, v in options.items()}
    expected = backoff.KINDS[kind](**arguments)
    text = f"[policies.p]\nbackoff = {toml_table(inline(kind, options))}\n"
    Path("retryx.toml").write_text(text, encoding="utf-8")
    argv = [f"--{name}={cli_value(value)}" for name, value in options.items()]

    from_file = _config.load("retryx.toml").policy("p").backoff_strategy
    from_options = from_cli("--backoff", kind, *argv).backoff_strategy

    assert (expected, expected) == (from_file, from_options)


@pytest.mark.parametrize("kind", list(jitter.KINDS))
def test_every_jitter_kind_takes_the_same_options_in_config_and_cli(kind: str) -> None:
    """Each jitter kind with all its options builds the same jitter from a file and from
    the command line (``--jitter-OPTION``)."""
    options = {name: JITTER_VALUES[name] for name in jitter.parameters(kind)}
    expected = jitter.make(kind, **options)
    text = f"[policies.p]\njitter = {toml_table(inline(kind, options))}\n"
    Path("retryx.toml").write_text(text, encoding="utf-8")
    argv = [f"--jitter-{name}={value}" for name, value in options.items()]

    from_file = _config.load("retryx.toml").policy("p").jitter_strategy
    from_options = from_cli("--jitter", kind, *argv).jitter_strategy

    assert (expected, expected) == (from_file, from_options)


def test_the_command_line_offers_exactly_the_kinds_and_options_of_the_tables() -> None:
    """``--backoff`` and ``--jitter`` list every kind, and each option of a kind is an option."""
    actions = {a.dest: a for a in policy_parent()._actions}
    backoff_options = {n for kind in backoff.KINDS for n in backoff.parameters(kind)}
    jitter_options = {f"jitter_{n}" for kind in jitter.KINDS for n in jitter.parameters(kind)}

    assert sorted(backoff.KINDS) == sorted(actions["backoff"].choices or ())
    assert sorted(jitter.KINDS) == sorted(actions["jitter"].choices or ())
    assert backoff_options | jitter_options <= set(actions)


@pytest.mark.parametrize("kind", list(backoff.KINDS))
def test_a_backoff_gives_back_the_arguments_that_make_it(kind: str) -> None:
    """``backoff.arguments`` names each built-in backoff's kind and the constructor
    arguments (every parameter) that build it again."""
    options = {name: BACKOFF_VALUES[name] for name in backoff.parameters(kind)}
    made = backoff.KINDS[kind](
        **{k: backoff.KINDS[v]() if k == "then" else v for k, v in options.items()}
    )

    found = backoff.arguments(made)

    assert found is not None
    assert (kind, sorted(backoff.parameters(kind))) == (found[0], sorted(found[1]))
    assert made == backoff.KINDS[kind](**found[1])


def test_backoff_options_adjust_a_named_policy_keeping_its_floor() -> None:
    """``--max`` on a named policy changes only the cap: its ``min`` stays."""
    text = """\
        [policies.p]
        backoff = { kind = "exponential", initial = 0.2, min = 0.5 }
    """
    Path("retryx.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    _config.configure("retryx.toml")

    policy = from_cli("--policy", "p", "--max", "20")

    assert backoff.exponential(0.2, max=20, min=0.5) == policy.backoff_strategy


def test_immediate_options_apply_to_its_then_backoff() -> None:
    """``--backoff immediate`` passes the options it does not take to its ``then`` backoff."""
    policy = from_cli("--backoff", "immediate", "--then", "incremental", "--step", "2")

    assert backoff.immediate(backoff.incremental(step=2)) == policy.backoff_strategy


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backoff", "schedule"], "--backoff schedule needs --delays"),
        (["--backoff", "fixed", "--initial", "1", "--delay", "2"], "--initial and --delay"),
        (["--backoff", "immediate", "--step", "1"], "--step does not apply to --backoff immediate"),
        (["--jitter", "proportional"], "--jitter proportional needs --jitter-factor"),
        (["--jitter", "full", "--jitter-factor", "0.2"], "--jitter-factor does not apply"),
        (["--jitter-max", "1"], "--jitter-max needs --jitter KIND too"),
    ],
)
def test_options_that_do_not_fit_the_kind_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing required option, two options for one parameter, or an option the kind
    does not take is a one-line usage error."""
    from retryx._cli import main

    status = main(["explain", *argv])

    err = capsys.readouterr().err
    assert (2, 1) == (status, len(err.splitlines()))
    assert message in err
