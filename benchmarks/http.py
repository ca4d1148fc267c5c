#!/usr/bin/env python
"""Cost of the retryx HTTP integrations on a successful request, against the bare client.

Run from the repository root::

    python benchmarks/http.py           # a minute or so
    python benchmarks/http.py --quick   # tiny repeat counts: a smoke test

Two measures, each interleaved (every round takes one sample of every candidate,
starting from a different one), medians of the same run:

- *loopback*: requests per second against a keep-alive HTTP server in another
  process (``retryx.testing.servers.http``, always 200), for httpx sync
  (``retryx.httpx.Transport``), httpx async (``AsyncTransport``) and requests
  (``retryx.requests.Adapter``), each beside the same client with its default
  transport / adapter; the overhead is the retryx median's extra time per
  request as a share of the bare client's round trip;
- *in memory*: the same six clients with no network (``httpx.MockTransport``,
  and an ``HTTPAdapter`` answering a canned response), timed in process CPU
  time: the integration's own cost per request, in microseconds, which the
  machine's other work hardly blurs.

The target: the overhead (the in-memory extra time per request) stays under 5%
of the bare client's loopback round trip. On a loaded machine the loopback
medians wander by more than the overhead; the in-memory rows do not.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: run as a script, its directory would shadow the
# stdlib's ``http`` package, so it leaves sys.path first.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # benchmark the working tree, not an installed copy
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import requests  # noqa: E402

import retryx.httpx  # noqa: E402
import retryx.requests  # noqa: E402

SERVER = (
    "import sys, time\n"
    "from retryx.testing import servers\n"
    "with servers.http([(200, {}, b'ok')]) as srv:\n"
    "    print(srv.port, flush=True)\n"
    "    sys.stdin.read()\n"  # until the benchmark closes our stdin
)
TARGET = 0.05


def interleave(
    candidates: dict[str, Callable[[int], None]],
    rounds: int,
    n: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per request of each candidate, ``n`` requests per sample."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for name in names:
        candidates[name](max(1, n // 10))  # warm up: connections, pipelines, caches
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = clock()
            candidates[name](n)
            samples[name].append((clock() - started) / n)
    return {name: statistics.median(values) for name, values in samples.items()}


def httpx_sync(client: httpx.Client, url: str) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            client.get(url)

    return run


def httpx_async(
    runner: asyncio.Runner, client: httpx.AsyncClient, url: str
) -> Callable[[int], None]:
    async def many(n: int) -> None:
        for _ in range(n):
            await client.get(url)

    return lambda n: runner.run(many(n))


def requests_sync(session: requests.Session, url: str) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            session.get(url)

    return run


def mounted(adapter: requests.adapters.HTTPAdapter) -> requests.Session:
    session = requests.Session()
    session.mount("http://", adapter)
    return session


def report(title: str, medians: dict[str, float], pairs: list[tuple[str, str]]) -> None:
    print(f"== {title} ==")
    for name, seconds in medians.items():
        print(f"  {name:<36} {1 / seconds:>10,.0f} req/s   {seconds * 1e6:>8.2f} us/req")
    for bare, wrapped in pairs:
        extra = medians[wrapped] - medians[bare]
        print(f"  {wrapped} vs {bare}: {extra * 1e6:+.2f} us/req ({extra / medians[bare]:+.1%})")


class _Canned(requests.adapters.HTTPAdapter):
    """An adapter answering 200 without a network: isolates the adapter's own cost."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = b"ok"
        response.request = request
        return response


class _RetryxCanned(retryx.requests.Adapter, _Canned):
    """``retryx.requests.Adapter`` whose attempts go to ``_Canned.send``."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny repeat counts (smoke test)")
    args = parser.parse_args()
    rounds, n = (3, 20) if args.quick else (41, 100)
    versions = f"httpx {httpx.__version__}, requests {requests.__version__}"
    print(f"python {sys.version.split()[0]}, {versions}, {os.cpu_count()} CPUs")

    policy = retryx.Policy()  # the defaults: 3 attempts, breakers on
    pairs = [
        ("httpx", "httpx + retryx Transport"),
        ("httpx async", "httpx async + retryx AsyncTransport"),
        ("requests", "requests + retryx Adapter"),
    ]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    port = int(server.stdout.readline())
    url = f"http://127.0.0.1:{port}/"
    runner = asyncio.Runner()
    try:
        loopback = candidates(runner, url, policy, network=True)
        rtt = interleave(loopback, rounds, n)
        report(f"loopback, keep-alive ({rounds} rounds x {n} requests)", rtt, pairs)
    finally:
        server.stdin.close()
        server.wait(10)
    memory = candidates(runner, url, policy, network=False)
    # CPU time of this process: what the integration itself costs, whatever else
    # the machine runs meanwhile.
    own = interleave(memory, rounds, n * 10, clock=time.process_time)
    report(f"in memory, no network, CPU time ({rounds} rounds x {n * 10} requests)", own, pairs)
    runner.close()

    print("== overhead: in-memory extra time per request / loopback round trip ==")
    verdicts = []
    for bare, wrapped in pairs:
        share = (own[wrapped] - own[bare]) / rtt[bare]
        verdicts.append(share < TARGET)
        extra = (own[wrapped] - own[bare]) * 1e6
        print(f"  {wrapped}: {extra:.2f} us of {rtt[bare] * 1e6:.0f} us = {share:.2%}")
    verdict = "PASS" if all(verdicts) else "FAIL"
    print(f"target: overhead < {TARGET:.0%} of a loopback round trip: {verdict}")


def candidates(
    runner: asyncio.Runner, url: str, policy: retryx.Policy, *, network: bool
) -> dict[str, Callable[[int], None]]:
    """The six clients, over the network or over in-memory transports."""

    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"ok")

    async def async_ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"ok")

    def sync_inner() -> httpx.BaseTransport:
        return httpx.HTTPTransport() if network else httpx.MockTransport(ok)

    def async_inner() -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport() if network else httpx.MockTransport(async_ok)

    bare_adapter = requests.adapters.HTTPAdapter() if network else _Canned()
    retryx_adapter = retryx.requests.Adapter(policy) if network else _RetryxCanned(policy)
    sync_retryx = retryx.httpx.Transport(policy, transport=sync_inner())
    async_retryx = retryx.httpx.AsyncTransport(policy, transport=async_inner())
    return {
        "httpx": httpx_sync(httpx.Client(transport=sync_inner()), url),
        "httpx + retryx Transport": httpx_sync(httpx.Client(transport=sync_retryx), url),
        "httpx async": httpx_async(runner, httpx.AsyncClient(transport=async_inner()), url),
        "httpx async + retryx AsyncTransport": httpx_async(
            runner, httpx.AsyncClient(transport=async_retryx), url
        ),
        "requests": requests_sync(mounted(bare_adapter), url),
        "requests + retryx Adapter": requests_sync(mounted(retryx_adapter), url),
    }


if __name__ == "__main__":
    main()
