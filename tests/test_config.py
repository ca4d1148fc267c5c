"""Named policies and breakers from TOML configuration: sources, reload, errors, check."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retryx import _config, backoff, jitter
from retryx._classifiers import TypesClassifier
from retryx._classify import classify
from retryx._errors import ConfigError
from retryx._policy import Policy


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test from an empty directory, no $RETRYX_CONFIG and nothing loaded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(_config.ENV_VAR, raising=False)
    _config.reset_for_tests()
    yield
    _config.reset_for_tests()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def policy_file(path: Path, attempts: int) -> Path:
    return write(path, f"[policies.p]\nattempts = {attempts}\n")


def errors_of(text: str, name: str = "retryx.toml") -> str:
    path = write(Path(name), text)
    with pytest.raises(ConfigError) as info:
        _config.configure(path)
    return str(info.value)


# --- sources and precedence ----------------------------------------------------------


def test_explicit_path_wins_over_env_and_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path given to configure() is used even when $RETRYX_CONFIG and pyproject.toml exist."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 2\n")
    monkeypatch.setenv(_config.ENV_VAR, str(policy_file(tmp_path / "env.toml", 3)))
    _config.configure(policy_file(tmp_path / "explicit.toml", 4))
    assert _config.resolve_policy("p").attempts == 4


def test_env_var_wins_over_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a path, $RETRYX_CONFIG is used before ./pyproject.toml."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 2\n")
    monkeypatch.setenv(_config.ENV_VAR, str(policy_file(tmp_path / "env.toml", 3)))
    _config.configure()
    assert _config.resolve_policy("p").attempts == 3
    assert "env.toml" in _config.snapshot().source


def test_pyproject_tool_retryx_is_used(tmp_path: Path) -> None:
    """Without a path or env var, [tool.retryx] of ./pyproject.toml is used."""
    write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "app"
        [tool.retryx.policies.p]
        attempts = 2
        [tool.retryx.breakers.db]
        failure_threshold = 7
        """,
    )
    _config.configure()
    assert _config.resolve_policy("p").attempts == 2
    assert _config.breaker_settings("db") == {"failure_threshold": 7}
    assert _config.snapshot().source == "pyproject.toml"


def test_builtin_defaults_when_nothing_is_found() -> None:
    """With no file anywhere there are no named policies and breakers use their defaults."""
    _config.configure()
    snap = _config.snapshot()
    assert dict(snap.policies) == {}
    assert _config.breaker_settings("db") == {}
    assert snap.source == _config.DEFAULTS


def test_pyproject_without_tool_retryx_means_defaults(tmp_path: Path) -> None:
    """A pyproject.toml with no [tool.retryx] table gives the built-in defaults."""
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\n')
    _config.configure()
    assert dict(_config.snapshot().policies) == {}
    assert _config.snapshot().source.startswith(_config.DEFAULTS)


def test_empty_env_var_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty $RETRYX_CONFIG falls through to pyproject.toml instead of naming a file ''."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 2\n")
    monkeypatch.setenv(_config.ENV_VAR, "")
    assert _config.resolve_policy("p").attempts == 2


def test_explicit_pyproject_path_reads_tool_retryx(tmp_path: Path) -> None:
    """A file named pyproject.toml given explicitly is read from its [tool.retryx] table."""
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 6\n")
    _config.configure(sub / "pyproject.toml")
    assert _config.resolve_policy("p").attempts == 6


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    """A path given to configure() that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"missing\.toml: configuration file not found"):
        _config.configure(tmp_path / "missing.toml")


def test_missing_env_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A $RETRYX_CONFIG naming a missing file is a ConfigError saying where the name came from."""
    monkeypatch.setenv(_config.ENV_VAR, "gone.toml")
    with pytest.raises(ConfigError, match=r"gone\.toml: .*not found \(from \$RETRYX_CONFIG\)"):
        _config.resolve_policy("p")


def test_first_lookup_loads_lazily_and_caches(tmp_path: Path) -> None:
    """The first lookup loads the configuration once; later edits wait for configure()."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 2\n")
    assert _config.resolve_policy("p").attempts == 2
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 9\n")
    assert _config.resolve_policy("p").attempts == 2
    _config.configure()
    assert _config.resolve_policy("p").attempts == 9


# --- reload -----------------------------------------------------------------------------


def test_reload_swaps_the_snapshot(tmp_path: Path) -> None:
    """After a reload, a Policy got before keeps its values and the next lookup gets new ones."""
    path = policy_file(tmp_path / "retryx.toml", 2)
    _config.configure(path)
    before = _config.resolve_policy("p")
    generation = _config.generation()
    policy_file(path, 5)
    _config.configure(path)
    assert before.attempts == 2
    assert _config.resolve_policy("p").attempts == 5
    assert generation + 1 == _config.generation()


def test_failed_reload_keeps_the_old_configuration(tmp_path: Path) -> None:
    """A reload that finds a problem raises and keeps the previous snapshot and generation."""
    path = policy_file(tmp_path / "retryx.toml", 2)
    _config.configure(path)
    generation = _config.generation()
    policy_file(path, 0)
    with pytest.raises(ConfigError):
        _config.configure(path)
    assert _config.resolve_policy("p").attempts == 2
    assert generation == _config.generation()


def test_generation_never_repeats_after_reset(tmp_path: Path) -> None:
    """reset_for_tests() does not rewind the generation, so cached resolutions are never reused."""
    first = _config.generation()
    _config.reset_for_tests()
    assert first < _config.generation()


def test_same_policy_object_within_one_generation(tmp_path: Path) -> None:
    """Lookups between reloads return the same Policy object, so callers may cache it."""
    _config.configure(policy_file(tmp_path / "retryx.toml", 2))
    assert _config.resolve_policy("p") is _config.resolve_policy("p")


def test_reload_under_threads_is_never_half_applied(tmp_path: Path) -> None:
    """Four threads resolving during 200 reloads always see fields that changed together agree."""
    files = []
    for n in (2, 7):
        files.append(
            write(
                tmp_path / f"c{n}.toml",
                f"""
                [policies.a]
                attempts = {n}
                deadline = {n}
                [policies.b]
                attempts = {n}
                [breakers.db]
                failure_threshold = {n}
                """,
            )
        )
    _config.configure(files[0])
    stop = threading.Event()
    mismatches: list[str] = []
    reads = [0] * 4

    def reader(i: int) -> None:
        for _ in range(1_000_000):  # bounded even if stop is never set
            if stop.is_set():
                return
            a = _config.resolve_policy("a")
            if a.deadline != a.attempts:
                mismatches.append(f"policy a: {a.attempts} vs {a.deadline}")
            snap = _config.snapshot()
            b = snap.policy("b").attempts
            db = snap.breaker("db")["failure_threshold"]
            if not snap.policy("a").attempts == b == db:
                mismatches.append(f"snapshot {snap.generation}: a/b/db differ")
            reads[i] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        for i in range(200):
            _config.configure(files[i % 2])
            if time.monotonic() > deadline:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert mismatches == []
    assert all(n > 0 for n in reads)
    assert not any(t.is_alive() for t in threads)


# --- values -----------------------------------------------------------------------------


def test_every_policy_key_is_read(tmp_path: Path) -> None:
    """Each policy key of the file lands in the Policy, normalised like the constructor does."""
    write(
        tmp_path / "retryx.toml",
        """
        [policies.payments]
        attempts = 5
        backoff = { kind = "exponential", initial = 0.2, max = 10, multiplier = 3 }
        jitter = "equal"
        deadline = 30
        attempt_timeout = 2.5
        retry_on = ["ConnectionError", "TimeoutError"]
        retry_after_max = 12
        idempotent = false
        nested = "raise"
        """,
    )
    _config.configure("retryx.toml")
    expected = Policy(
        attempts=5,
        backoff=backoff.exponential(initial=0.2, max=10, multiplier=3),
        jitter=jitter.equal,
        deadline=30,
        attempt_timeout=2.5,
        retry_on=TypesClassifier((ConnectionError, TimeoutError)),
        retry_after_max=12,
        idempotent=False,
        nested="raise",
        name="payments",
    )
    assert expected == _config.resolve_policy("payments")


def test_policy_name_defaults_to_table_name_unless_set(tmp_path: Path) -> None:
    """A policy is named after its table unless the table sets name."""
    write(
        tmp_path / "retryx.toml",
        """
        [policies.plain]
        [policies.labelled]
        name = "payments-api"
        """,
    )
    _config.configure("retryx.toml")
    assert _config.resolve_policy("plain").name == "plain"
    assert _config.resolve_policy("labelled").name == "payments-api"
    assert classify is _config.resolve_policy("plain").retry_on


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"exponential"', backoff.exponential()),
        ('"incremental"', backoff.incremental()),
        ('"fixed"', backoff.fixed()),
        ('"immediate"', backoff.immediate()),
        ('"none"', backoff.none()),
        ('{ kind = "incremental", initial = 1, step = 2, max = 9 }', backoff.incremental(1, 2, 9)),
        ('{ kind = "fixed", delay = 0.5 }', backoff.fixed(0.5)),
        ('{ kind = "none" }', backoff.none()),
        ('{ kind = "schedule", delays = [0.1, 1, 5] }', backoff.schedule([0.1, 1, 5])),
        (
            '{ kind = "immediate", then = { kind = "fixed", delay = 2 } }',
            backoff.immediate(then=backoff.fixed(2)),
        ),
        ('{ kind = "immediate", then = "incremental" }', backoff.immediate(backoff.incremental())),
    ],
)
def test_backoff_forms(tmp_path: Path, text: str, expected: backoff.Backoff) -> None:
    """Every backoff kind can be written as a string or an inline table."""
    write(tmp_path / "retryx.toml", f"[policies.p]\nbackoff = {text}\n")
    _config.configure("retryx.toml")
    assert expected == _config.resolve_policy("p").backoff


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"none"', jitter.none),
        ('"full"', jitter.full),
        ('"equal"', jitter.equal),
        ('"decorrelated"', jitter.decorrelated),
        ('{ kind = "full" }', jitter.full),
        ('{ kind = "proportional", factor = 0.2 }', jitter.proportional(0.2)),
    ],
)
def test_jitter_forms(tmp_path: Path, text: str, expected: jitter.Jitter) -> None:
    """Every jitter kind can be written as a string or an inline table."""
    write(tmp_path / "retryx.toml", f"[policies.p]\njitter = {text}\n")
    _config.configure("retryx.toml")
    assert expected == _config.resolve_policy("p").jitter


def test_retry_on_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """retry_on imports 'module:Qualname' entries at load time, nested classes included."""
    mods = tmp_path / "mods"
    mods.mkdir()
    write(
        mods / "cfg_errors_mod.py",
        """
        class Throttled(Exception):
            class Inner(Exception):
                pass
        """,
    )
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.delitem(sys.modules, "cfg_errors_mod", raising=False)
    write(
        tmp_path / "retryx.toml",
        """
        [policies.p]
        retry_on = ["cfg_errors_mod:Throttled", "cfg_errors_mod:Throttled.Inner"]
        """,
    )
    _config.configure("retryx.toml")
    module = sys.modules["cfg_errors_mod"]
    retry_on = _config.resolve_policy("p").retry_on
    assert isinstance(retry_on, TypesClassifier)
    assert (module.Throttled, module.Throttled.Inner) == retry_on.types
    assert retry_on(module.Throttled()).transient
    assert not retry_on(ValueError()).transient


def test_retry_on_single_string(tmp_path: Path) -> None:
    """retry_on may be one exception name instead of an array."""
    write(tmp_path / "retryx.toml", '[policies.p]\nretry_on = "TimeoutError"\n')
    _config.configure("retryx.toml")
    assert TypesClassifier((TimeoutError,)) == _config.resolve_policy("p").retry_on


def test_breaker_settings_are_validated_keywords(tmp_path: Path) -> None:
    """breaker_settings() returns the table's keys as CircuitBreaker keywords, counts imported."""
    write(
        tmp_path / "retryx.toml",
        """
        [breakers.db]
        failure_rate = 0.5
        window = 30
        minimum_calls = 10
        recovery_timeout = 2.5
        half_open_max_calls = 2
        success_threshold = 3
        failure_threshold = 4
        counts = ["ConnectionError"]
        """,
    )
    _config.configure("retryx.toml")
    expected = {
        "failure_rate": 0.5,
        "window": 30,
        "minimum_calls": 10,
        "recovery_timeout": 2.5,
        "half_open_max_calls": 2,
        "success_threshold": 3,
        "failure_threshold": 4,
        "counts": (ConnectionError,),
    }
    assert expected == _config.breaker_settings("db")
    assert _config.breaker_settings("other") == {}


def test_breaker_settings_returns_a_copy(tmp_path: Path) -> None:
    """Mutating the returned settings does not change the loaded configuration."""
    write(tmp_path / "retryx.toml", "[breakers.db]\nwindow = 5\n")
    _config.configure("retryx.toml")
    _config.breaker_settings("db")["window"] = 99
    assert _config.breaker_settings("db") == {"window": 5}


def test_unknown_policy_lists_known_names(tmp_path: Path) -> None:
    """An unknown policy name is a ConfigError listing the names the file defines."""
    write(tmp_path / "retryx.toml", "[policies.payments]\n[policies.search]\n")
    _config.configure("retryx.toml")
    with pytest.raises(
        ConfigError, match=r"unknown policy 'pay'.*known policies: payments, search"
    ):
        _config.resolve_policy("pay")


def test_unknown_policy_without_configuration_says_none_found() -> None:
    """An unknown name with no configuration file says none was found and no names are known."""
    with pytest.raises(ConfigError, match=r"no configuration file found.*known policies: none"):
        _config.resolve_policy("payments")


# --- errors -----------------------------------------------------------------------------


def test_error_message_names_file_table_and_key() -> None:
    """A bad value is reported as 'FILE: [TABLE] KEY: message'."""
    message = errors_of("[policies.payments]\nattempts = 0\n")
    assert (
        message == "retryx.toml: [policies.payments] attempts: Policy.attempts must be >= 1, got 0"
    )


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ('attempts = "5"', "attempts", "must be an integer, got '5' (a string)"),
        ("attempts = 3.0", "attempts", "must be an integer, got 3.0 (a float)"),
        ("attempts = true", "attempts", "must be an integer, got True (a boolean)"),
        ('deadline = "30"', "deadline", "must be a number of seconds, got '30' (a string)"),
        ("deadline = 0", "deadline", "Policy.deadline must be > 0 seconds, got 0"),
        ("deadline = nan", "deadline", "Policy.deadline must be > 0 seconds"),
        ("attempt_timeout = -1", "attempt_timeout", "must be > 0 seconds, got -1"),
        ("retry_after_max = -1", "retry_after_max", "must be >= 0 seconds, got -1"),
        ('idempotent = "yes"', "idempotent", "must be true or false, got 'yes'"),
        ('nested = "sometimes"', "nested", "Policy.nested must be one of defer, raise, allow"),
        ('name = ""', "name", "Policy.name must be a non-empty str"),
        ("name = 3", "name", "must be a string, got 3 (an integer)"),
        ("atempts = 3", "atempts", "unknown key 'atempts' (did you mean 'attempts'?"),
        ("budget = 1", "budget", "cannot be set in a configuration file"),
        ("retry_if_result = 1", "retry_if_result", "cannot be set in a configuration file"),
        ('backoff = "expo"', "backoff", "unknown backoff kind 'expo' (known: exponential,"),
        ('backoff = "schedule"', "backoff", 'needs delays: { kind = "schedule"'),
        ("backoff = 5", "backoff", "must be a backoff kind or an inline table, got 5"),
        ("backoff = { initial = 1 }", "backoff.kind", "missing"),
        ('backoff = { kind = "warp" }', "backoff.kind", "unknown backoff kind 'warp'"),
        ("backoff = { kind = 1 }", "backoff.kind", "unknown backoff kind 1 (an integer)"),
        (
            'backoff = { kind = "exponential", initial = "0.2" }',
            "backoff.initial",
            "initial must be a number, got '0.2' (a string)",
        ),
        (
            'backoff = { kind = "exponential", multiplier = 0.5 }',
            "backoff.multiplier",
            "multiplier must be >= 1, got 0.5",
        ),
        ('backoff = { kind = "fixed", delay = -1 }', "backoff.delay", "must be >= 0"),
        (
            'backoff = { kind = "exponential", step = 1 }',
            "backoff.step",
            "unknown key 'step' for backoff 'exponential'",
        ),
        ('backoff = { kind = "schedule" }', "backoff.delays", "missing"),
        ('backoff = { kind = "schedule", delays = [] }', "backoff.delays", "must not be empty"),
        (
            'backoff = { kind = "schedule", delays = [1, "2"] }',
            "backoff.delays",
            "must be an array of numbers",
        ),
        (
            'backoff = { kind = "immediate", then = { kind = "fixed", delay = "x" } }',
            "backoff.then.delay",
            "must be a number",
        ),
        ('jitter = "wobbly"', "jitter", "unknown jitter kind 'wobbly' (known: none, full,"),
        ('jitter = "proportional"', "jitter", "needs a factor"),
        ("jitter = 0.5", "jitter", "must be a jitter kind or an inline table, got 0.5 (a float)"),
        ('jitter = { kind = "proportional" }', "jitter.factor", "missing"),
        ('jitter = { kind = "proportional", factor = 2 }', "jitter.factor", "in (0, 1], got 2"),
        (
            'jitter = { kind = "proportional", factor = "0.2" }',
            "jitter.factor",
            "must be a number, got '0.2' (a string)",
        ),
        ('jitter = { kind = "full", factor = 1 }', "jitter.factor", "unknown key 'factor'"),
        ('jitter = { kind = "chaos" }', "jitter.kind", "unknown jitter kind 'chaos'"),
        ('retry_on = ["NoSuchError"]', "retry_on", "'NoSuchError' is not a builtin exception"),
        ('retry_on = ["no_such_mod_xyz:Err"]', "retry_on", "cannot import 'no_such_mod_xyz:Err'"),
        ('retry_on = ["os:NoSuch"]', "retry_on", "cannot import 'os:NoSuch'"),
        ('retry_on = ["os:path"]', "retry_on", "'os:path' is not an exception type"),
        ('retry_on = ["len"]', "retry_on", "'len' is not an exception type"),
        ("retry_on = [1]", "retry_on", "entries must be exception names"),
        ("retry_on = []", "retry_on", "must not be empty"),
        ("retry_on = 1", "retry_on", "must be an array of exception names, got 1"),
    ],
)
def test_policy_errors_name_file_table_and_key(body: str, key: str, fragment: str) -> None:
    """Every bad policy entry is a ConfigError naming the file, the table and the key."""
    message = errors_of(f"[policies.payments]\n{body}\n")
    assert message.startswith(f"retryx.toml: [policies.payments] {key}: ")
    assert fragment in message


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ('failure_threshold = "5"', "failure_threshold", "must be an integer, got '5'"),
        ("failure_threshold = 0", "failure_threshold", "must be >= 1, got 0"),
        ("window = 2.5", "window", "must be an integer, got 2.5 (a float)"),
        ("minimum_calls = 0", "minimum_calls", "must be >= 1"),
        ("half_open_max_calls = 0", "half_open_max_calls", "must be >= 1"),
        ("success_threshold = false", "success_threshold", "must be an integer, got False"),
        ("failure_rate = 1.5", "failure_rate", "must be in (0, 1], got 1.5"),
        ("failure_rate = 0", "failure_rate", "must be in (0, 1], got 0"),
        ('failure_rate = "half"', "failure_rate", "must be a number, got 'half'"),
        ("recovery_timeout = -1", "recovery_timeout", "must be >= 0 seconds"),
        ("recovery_timeout = inf", "recovery_timeout", "finite"),
        ('recovery_timeout = "30s"', "recovery_timeout", "must be a number of seconds"),
        (
            "failure_rate = 0.5\nwindow = 5\nminimum_calls = 8",
            "minimum_calls",
            "window (5) must be >= minimum_calls (8) when failure_rate is set",
        ),
        ("failure_rate = 0.5\nwindow = 5", "window", "window (5) must be >= minimum_calls (10)"),
        ('counts = ["NoSuchError"]', "counts", "'NoSuchError' is not a builtin exception"),
        ("counts = []", "counts", "must not be empty"),
        ("store = 1", "store", "cannot be set in a configuration file"),
        ('name = "x"', "name", "the breaker's name is the table's name"),
        ("threshold = 5", "threshold", "unknown key 'threshold'"),
    ],
)
def test_breaker_errors_name_file_table_and_key(body: str, key: str, fragment: str) -> None:
    """Every bad breaker entry is a ConfigError naming the file, the table and the key."""
    message = errors_of(f"[breakers.db]\n{body}\n")
    assert message.startswith(f"retryx.toml: [breakers.db] {key}: ")
    assert fragment in message


def test_window_is_unchecked_without_failure_rate(tmp_path: Path) -> None:
    """window < minimum_calls is fine when failure_rate is not set (both are unused)."""
    write(tmp_path / "retryx.toml", "[breakers.db]\nwindow = 2\nminimum_calls = 5\n")
    _config.configure("retryx.toml")
    assert _config.breaker_settings("db") == {"window": 2, "minimum_calls": 5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[polices.x]\n", "retryx.toml: polices: unknown table or key 'polices' (did you mean"),
        ("attempts = 3\n", "retryx.toml: attempts: unknown table or key 'attempts'"),
        ("policies = 3\n", "retryx.toml: policies: must hold tables like [policies.NAME]"),
        ("[policies]\nx = 1\n", "retryx.toml: [policies] x: must be a table [policies.x], got 1"),
        ('[policies."a.b"]\nattempts = 0\n', 'retryx.toml: [policies."a.b"] attempts: '),
        ("[policies.a]\nattempts = = 3\n", "retryx.toml: invalid TOML: Invalid value (at line 2"),
    ],
)
def test_structure_errors(text: str, expected: str) -> None:
    """Unknown tables, non-table entries and TOML syntax errors are ConfigErrors naming the spot."""
    assert errors_of(text).startswith(expected)


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is a ConfigError naming it."""
    (tmp_path / "retryx.toml").write_bytes(b"[policies.p]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match=r"retryx\.toml: not UTF-8 text"):
        _config.configure("retryx.toml")


def test_unreadable_path_is_an_error(tmp_path: Path) -> None:
    """A path that cannot be read (here a directory) is a ConfigError naming it."""
    (tmp_path / "conf.toml").mkdir()
    with pytest.raises(ConfigError, match=r"conf\.toml: cannot read configuration file"):
        _config.configure("conf.toml")


def test_module_failing_at_import_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry_on module that raises while importing is a ConfigError, not a crash."""
    write(tmp_path / "cfg_broken_mod.py", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = errors_of('[policies.p]\nretry_on = ["cfg_broken_mod:Err"]\n')
    assert message.startswith(
        "retryx.toml: [policies.p] retry_on: cannot import 'cfg_broken_mod:Err'"
    )
    assert "RuntimeError: boom" in message


def test_pyproject_messages_use_the_tool_prefix(tmp_path: Path) -> None:
    """Problems in pyproject.toml name the table as [tool.retryx.policies.NAME]."""
    write(
        tmp_path / "pyproject.toml",
        """
        [tool.retryx]
        polcies = 1
        [tool.retryx.policies.x]
        attempts = 0
        """,
    )
    with pytest.raises(ConfigError) as info:
        _config.configure()
    assert str(info.value).splitlines() == [
        "pyproject.toml: [tool.retryx] polcies: unknown table or key 'polcies' "
        "(did you mean 'policies'? known: breakers, faults, policies)",
        "pyproject.toml: [tool.retryx.policies.x] attempts: Policy.attempts must be >= 1, got 0",
    ]


def test_pyproject_tool_retryx_must_be_a_table(tmp_path: Path) -> None:
    """A [tool] retryx entry that is not a table is a ConfigError naming [tool] retryx."""
    write(tmp_path / "pyproject.toml", "[tool]\nretryx = 1\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml: \[tool\] retryx: must be a table"):
        _config.configure()


def test_lazy_load_error_surfaces_at_lookup(tmp_path: Path) -> None:
    """A bad file found lazily raises at the lookup, and the lookup retries after it is fixed."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 0\n")
    with pytest.raises(ConfigError, match=r"\[tool\.retryx\.policies\.p\] attempts"):
        _config.resolve_policy("p")
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 4\n")
    assert _config.resolve_policy("p").attempts == 4


def test_configure_error_lists_every_problem() -> None:
    """configure() reports every problem of the file, one per line, not just the first."""
    message = errors_of(
        """
        [policies.a]
        attempts = 0
        jitter = "wobbly"
        [breakers.db]
        window = 0
        """
    )
    assert len(message.splitlines()) == 3


# --- check ------------------------------------------------------------------------------


def test_check_collects_every_problem(tmp_path: Path) -> None:
    """check() returns every problem in the file at once and still reports the valid tables."""
    write(
        tmp_path / "retryx.toml",
        """
        [policies.good]
        attempts = 4
        [policies.bad]
        attempts = 0
        backoff = { kind = "exponential", initial = "1", multiplier = 0.5 }
        retry_on = ["NoSuchError", "no_such_mod_xyz:E"]
        [breakers.db]
        failure_threshold = 0
        colour = "red"
        [extra]
        """,
    )
    report, problems = _config.check("retryx.toml")
    assert [p[: p.index(": ", len("retryx.toml: ")) + 2] for p in problems] == [
        "retryx.toml: [policies.bad] attempts: ",
        "retryx.toml: [policies.bad] backoff.initial: ",
        "retryx.toml: [policies.bad] backoff.multiplier: ",
        "retryx.toml: [policies.bad] retry_on: ",
        "retryx.toml: [policies.bad] retry_on: ",
        "retryx.toml: [breakers.db] failure_threshold: ",
        "retryx.toml: [breakers.db] colour: ",
        "retryx.toml: extra: ",
    ]
    assert report[0] == "configuration: retryx.toml"
    assert any(line.startswith("policy good: attempts=4") for line in report)


def test_check_reports_policies_and_breakers(tmp_path: Path) -> None:
    """A valid file gives one report line per policy and breaker and no problems."""
    write(
        tmp_path / "retryx.toml",
        """
        [policies.payments]
        attempts = 5
        retry_on = ["ConnectionError"]
        [breakers.db]
        failure_threshold = 3
        [breakers.cache]
        """,
    )
    report, problems = _config.check("retryx.toml")
    assert problems == []
    assert report == [
        "configuration: retryx.toml",
        "policy payments: attempts=5, backoff=backoff.exponential(initial=0.1, multiplier=2.0, "
        "max=30.0), jitter=jitter.full, deadline=none, attempt_timeout=none, "
        "retry_on=(ConnectionError), retry_after_max=60s, idempotent=true, nested=defer",
        "breaker db: failure_threshold=3",
        "breaker cache: all defaults",
    ]


def test_check_does_not_change_the_live_configuration(tmp_path: Path) -> None:
    """check() of another file leaves the configuration in force and its generation alone."""
    _config.configure(policy_file(tmp_path / "live.toml", 2))
    generation = _config.generation()
    policy_file(tmp_path / "other.toml", 8)
    _, problems = _config.check(str(tmp_path / "other.toml"))
    assert problems == []
    assert _config.resolve_policy("p").attempts == 2
    assert generation == _config.generation()


def test_check_without_path_checks_what_configure_would_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check() with no path follows the same precedence as configure()."""
    write(tmp_path / "pyproject.toml", "[tool.retryx.policies.p]\nattempts = 0\n")
    _, problems = _config.check()
    assert [p[: p.index("attempts: ") + len("attempts: ")] for p in problems] == [
        "pyproject.toml: [tool.retryx.policies.p] attempts: "
    ]
    monkeypatch.setenv(_config.ENV_VAR, "missing.toml")
    _, problems = _config.check()
    assert problems == ["missing.toml: configuration file not found (from $RETRYX_CONFIG)"]


def test_check_without_any_configuration() -> None:
    """check() with nothing to load reports the built-in defaults and no problems."""
    assert _config.check() == (
        ["configuration: built-in defaults", "no policies or breakers defined"],
        [],
    )


def test_check_missing_file_is_a_problem() -> None:
    """check() of a missing file reports it as a problem instead of raising."""
    _, problems = _config.check("nope.toml")
    assert problems == ["nope.toml: configuration file not found"]


def test_load_returns_a_snapshot_without_installing(tmp_path: Path) -> None:
    """load() parses and validates a file but leaves the configuration in force alone."""
    snap = _config.load(policy_file(tmp_path / "a.toml", 3))
    assert snap.policies["p"].attempts == 3
    assert "a.toml" in snap.source
    assert dict(_config.snapshot().policies) == {}


def test_policies_of_gives_the_valid_policies(tmp_path: Path) -> None:
    """policies_of() returns the file's valid policies by name without installing them."""
    write(tmp_path / "retryx.toml", "[policies.a]\nattempts = 2\n[policies.b]\nattempts = 0\n")
    assert list(_config.policies_of("retryx.toml")) == ["a"]
    assert dict(_config.snapshot().policies) == {}


def test_documented_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The complete example in docs/configuration.md loads without problems."""
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "myapp").mkdir()
    write(tmp_path / "myapp" / "__init__.py", "")
    write(tmp_path / "myapp" / "errors.py", "class Throttled(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("myapp", "myapp.errors"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    write(tmp_path / "retryx.toml", example)
    report, problems = _config.check("retryx.toml")
    assert problems == []
    assert len(report) == 8


def test_breaker_tables_know_every_breaker_setting() -> None:
    """``[breakers.NAME]`` defaults and the breaker's settings are the same list."""
    from retryx._breaker import SETTINGS
    from retryx._config_tables import BREAKER_DEFAULTS

    assert sorted(SETTINGS) == sorted(BREAKER_DEFAULTS)
