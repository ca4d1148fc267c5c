"""The nested-retry guard across services: A -> B -> C in three real processes.

A (this test process) calls B with 3 attempts through ``retryx.httpx.Transport``;
B (an ASGI app under uvicorn, or a WSGI app under wsgiref, in its own process)
calls C with 3 attempts through retryx; C (a third process) always answers 503.
With B behind ``retryx.asgi`` / ``retryx.wsgi`` middleware, C sees 3 requests per
call of A (B gave up and says ``Retryx-Pushback: no-retry``); without it, 9.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import retryx
import retryx.httpx

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0
ENTRY = "import tests._http_apps as apps; apps.main()"


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Start one chain process; returns it and the port it printed once listening."""
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(START_TIMEOUT):
            _stop(process)
            pytest.fail(f"chain process {args[0]} did not start in {START_TIMEOUT}s")
    line = process.stdout.readline()
    if not line.strip().isdigit():
        _stop(process)
        pytest.fail(f"chain process {args[0]} printed {line!r} instead of its port")
    return process, int(line)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5.0)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def c_url() -> Iterator[str]:
    """C: a process answering 503 to everything, counting at ``/count``."""
    process, port = _spawn("c")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def c_count(c_url: str) -> int:
    """How many requests C has refused so far."""
    return int(httpx.get(c_url + "/count", timeout=5.0).text)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize(("middleware", "expected"), [(True, 3), (False, 9)])
def test_c_sees_3_calls_with_the_middleware_and_9_without(
    c_url: str, kind: str, middleware: bool, expected: int
) -> None:
    """One call of A (3 attempts) through B (3 attempts) reaches C ``expected`` times."""
    b, port = _spawn(kind, c_url, "1" if middleware else "0")
    try:
        policy = retryx.Policy(attempts=3, backoff="none", jitter="none", deadline=30.0)
        transport = retryx.httpx.Transport(policy, breakers=False)
        with httpx.Client(transport=transport, timeout=10.0) as a:
            before = c_count(c_url)
            response = a.get(f"http://127.0.0.1:{port}/order")
            assert 503 == response.status_code
            assert expected == c_count(c_url) - before
            pushback = response.headers.get("retryx-pushback")
            assert ("no-retry" if middleware else None) == pushback
            assert (1 if middleware else 3) == transport.stats(f"127.0.0.1:{port}").attempts
    finally:
        _stop(b)
