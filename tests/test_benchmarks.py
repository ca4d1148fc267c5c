"""The benchmark script must keep running end to end (no timing assertions here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADERS = (
    "== retry happy path - function ==",
    "== retry happy path - coroutine ==",
    "== retry happy path - method ==",
    "== breaker happy path (closed) - function ==",
    "== breaker happy path (closed) - coroutine ==",
    "== breaker happy path (closed) - method ==",
    "== full stack happy path (retry + failover over 3 hosts + breaker) - function ==",
    "== full stack happy path (retry + failover over 3 hosts + breaker) - coroutine ==",
    "== full stack happy path (retry + failover over 3 hosts + breaker) - method ==",
    "== cost per retry (fails twice, then succeeds; zero waits) - function ==",
    "== cost per retry (fails twice, then succeeds; zero waits) - coroutine ==",
    "threads x 5,000 calls through one shared breaker ==",
    "== memory retained per call",
    "== import time",
    "== targets ==",
)


def test_overhead_quick_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    missing = [h for h in HEADERS if h not in proc.stdout]
    assert not missing, f"missing sections {missing}\n{proc.stdout[-4000:]}"
    assert "summary:" in proc.stdout
    data = json.loads(out.read_text())
    assert {"machine", "scenarios", "threads", "memory", "imports", "targets"} <= set(data)
    assert len(data["scenarios"]) == 11
    assert all(t["status"] in {"PASS", "FAIL", "N/A"} for t in data["targets"])


def test_classify_benchmark_quick_runs_end_to_end() -> None:
    """``benchmarks/classify.py --quick`` runs and prints its table (no timing assertions)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "classify.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    assert "ConnectionRefusedError (builtin)" in proc.stdout


def test_drivers_benchmark_quick_runs_end_to_end() -> None:
    """``benchmarks/drivers.py --quick`` runs and prints every table (no timing assertions)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "drivers.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    for header in ("== sync, positional call", "== async, keyword call", "== decorating 50"):
        assert header in proc.stdout
    assert "exec, exact" in proc.stdout


def test_compare_trees_quick_runs_end_to_end() -> None:
    """``benchmarks/compare_trees.py`` compares a tree with itself and prints every case
    (no timing assertions)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "compare_trees.py"),
            str(ROOT),
            str(ROOT),
            "--rounds",
            "1",
            "--quick",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    for case in ("retry, function", "full stack, coroutine", "two retries, function"):
        assert case in proc.stdout
