"""``retryx connect``: TCP connect with retry and failover, reported for people and scripts.

The first tests drive the command against a stand-in ``retryx.sockets`` so they
check the command itself; the last ones run the real module end to end against
the loopback servers of ``retryx.testing`` (skipped until it exists).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import retryx
from retryx import events
from retryx._cli import main
from retryx._errors import AllEndpointsFailed
from retryx._policy import Policy
from retryx.testing import servers

ROOT = Path(__file__).resolve().parents[1]


def endpoint(addr: tuple[str, int]) -> str:
    """``"host:port"`` of a loopback server address."""
    return f"{addr[0]}:{addr[1]}"


class FakeSockets(ModuleType):
    """A stand-in ``retryx.sockets``: one sweep over the endpoints, recording each call."""

    def __init__(self, *, emit: bool = True) -> None:
        super().__init__("retryx.sockets")
        self.emit = emit
        self.calls: list[dict[str, Any]] = []

    def connect(
        self,
        endpoints: list[str],
        *,
        policy: Policy | None = None,
        timeout: float = 5.0,
        order: str = "priority",
    ) -> socket.socket:
        """Connect to the first endpoint that answers, else raise ``AllEndpointsFailed``."""
        self.calls.append({"endpoints": endpoints, "policy": policy, "timeout": timeout})
        errors: dict[Hashable, BaseException] = {}
        for ep in endpoints:
            host, _, port = ep.rpartition(":")
            try:
                return socket.create_connection((host, int(port)), timeout=timeout)
            except OSError as exc:
                errors[ep] = exc
                if self.emit:
                    events.emit(events.EndpointFailed("connect", ep, exc))
        raise AllEndpointsFailed(errors)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeSockets]:
    """Install a ``FakeSockets`` as ``retryx.sockets`` for the test."""

    def install(**kwargs: Any) -> FakeSockets:
        module = FakeSockets(**kwargs)
        monkeypatch.setitem(sys.modules, "retryx.sockets", module)
        monkeypatch.setattr(retryx, "sockets", module, raising=False)
        return module

    return install


@pytest.fixture
def refused() -> Iterator[str]:
    """An endpoint that refuses connections."""
    with servers.refusing() as addr:
        yield endpoint(addr)


@pytest.fixture
def echoing() -> Iterator[str]:
    """An endpoint that echoes what it receives."""
    with servers.echo() as addr:
        yield endpoint(addr)


def connect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``retryx connect`` in-process; ``(status, stdout, stderr)``."""
    status = main(["connect", *args])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------- the command


def test_reports_failed_endpoints_and_the_one_that_answered(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], refused: str, echoing: str
) -> None:
    """Per-endpoint errors come first, then the endpoint that answered with its timing."""
    fake()
    status, out, err = connect(capsys, refused, echoing)
    lines = out.splitlines()
    assert (0, "") == (status, err)
    assert f"{refused} failed: ConnectionRefusedError" in lines[0]
    assert lines[1].startswith(f"connected to {echoing} in ")
    assert "(local 127.0.0.1:" in lines[1]


def test_send_prints_the_reply(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], echoing: str
) -> None:
    """``--send TEXT`` sends the text and prints what came back."""
    fake()
    status, out, _ = connect(capsys, echoing, "--send", "ping\n", "--timeout", "3")
    assert status == 0
    assert out.splitlines()[1:] == ["reply (5 bytes):", "ping"]


def test_json_output(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], refused: str, echoing: str
) -> None:
    """``--json`` reports the endpoint, the attempts' errors, timings and the reply."""
    fake()
    status, out, _ = connect(capsys, refused, echoing, "--send", "hi", "--json")
    data = json.loads(out)
    assert status == 0
    assert data["connected"] is True
    assert data["endpoint"] == echoing
    assert data["reply"] == "hi"
    assert data["error"] is None
    assert data["elapsed"] >= 0
    (attempt,) = data["attempts"]
    assert attempt["endpoint"] == refused
    assert attempt["error"].startswith("ConnectionRefusedError")


def test_not_connected_exits_1(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], refused: str
) -> None:
    """When every endpoint fails, the errors are listed and the status is 1."""
    fake()
    status, out, err = connect(capsys, refused, refused)
    assert status == 1
    assert out.count("failed: ConnectionRefusedError") == 2
    assert "not connected after" in err.splitlines()[-1]


def test_errors_come_from_all_endpoints_failed_without_events(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], refused: str
) -> None:
    """Without events, the errors of the final ``AllEndpointsFailed`` are printed."""
    fake(emit=False)
    status, out, _ = connect(capsys, refused, "--json")
    data = json.loads(out)
    assert (status, data["connected"]) == (1, False)
    assert [a["endpoint"] for a in data["attempts"]] == [refused]
    assert data["error"].startswith("AllEndpointsFailed")


def test_policy_and_timeout_are_passed_on(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], echoing: str
) -> None:
    """Policy options build a policy for ``sockets.connect``; without them it gets ``None``."""
    module = fake()
    connect(capsys, echoing)
    connect(capsys, echoing, "--attempts", "2", "--backoff", "none", "--timeout", "1.5")
    assert module.calls[0]["policy"] is None
    assert module.calls[0]["timeout"] == 5.0
    assert module.calls[1]["policy"] == Policy(attempts=2, backoff="none")
    assert module.calls[1]["timeout"] == 1.5


def test_missing_sockets_module_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``retryx.sockets`` the command says so in one line and exits 2."""
    monkeypatch.setitem(sys.modules, "retryx.sockets", None)
    status, _, err = connect(capsys, "127.0.0.1:9")
    assert status == 2
    assert err == "retryx: error: connect needs retryx.sockets, which is not available\n"


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["localhost"],
        ["localhost:"],
        ["localhost:0"],
        ["localhost:65536"],
        ["::1:80"],
        ["127.0.0.1:80", "--timeout", "0"],
        ["127.0.0.1:80", "--attempts", "0"],
        ["127.0.0.1:80", "--order", "sideways"],
    ],
)
def test_bad_options_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], fake: Callable[..., FakeSockets], options: list[str]
) -> None:
    """Every invalid ``connect`` option prints one ``retryx: error:`` line and exits 2."""
    module = fake()
    status, out, err = connect(capsys, *options)
    assert (2, "") == (status, out)
    assert len(err.splitlines()) == 1
    assert err.startswith("retryx: error: ")
    assert module.calls == []


def test_ipv6_endpoint_syntax_is_accepted() -> None:
    """``[v6]:port`` is parsed; the brackets are dropped."""
    from retryx._cli import parse_endpoint

    assert parse_endpoint("[::1]:8080") == ("::1", 8080)
    assert parse_endpoint("db1.example:5432") == ("db1.example", 5432)


# --------------------------------------------------------------------------- end to end


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m retryx connect ...`` from the source tree."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "retryx", "connect", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_real_failover_to_the_echo_server(refused: str, echoing: str) -> None:
    """Through ``python -m retryx``, the refusing endpoint fails over to the echo server."""
    pytest.importorskip("retryx.sockets")
    proc = run_cli(refused, echoing, "--send", "hello", "--timeout", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["endpoint"] == echoing
    assert data["reply"] == "hello"


def test_real_all_refused_exits_1(refused: str) -> None:
    """Through ``python -m retryx``, an endpoint that always refuses gives status 1."""
    pytest.importorskip("retryx.sockets")
    proc = run_cli(refused, "--attempts", "2", "--backoff", "none", "--timeout", "1")
    assert proc.returncode == 1
    assert "ConnectionRefusedError" in proc.stdout
