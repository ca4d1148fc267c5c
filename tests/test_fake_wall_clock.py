"""The fake clock's wall time starts at the real time, so a real server's HTTP-date
``Retry-After`` is honoured under ``fake_time()`` (it used to look years away)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from email.utils import formatdate

import retryx
from retryx.testing import FakeClock, fake_time, servers


def test_the_fake_wall_clock_starts_at_the_real_time() -> None:
    """``now()`` starts at the real time in whole seconds; ``monotonic()`` at ``start``."""
    before = int(time.time())
    clock = FakeClock()
    after = time.time()
    assert before <= clock.now() <= after
    assert clock.now() == int(clock.now())
    assert 1000.0 == clock.monotonic()


def test_an_explicit_wall_time_is_kept() -> None:
    """``FakeClock(wall=...)`` still pins the wall clock."""
    assert 1_750_000_000.0 == FakeClock(wall=1_750_000_000.0).now()


def test_a_real_servers_http_date_retry_after_is_waited() -> None:
    """A 503 whose ``Retry-After`` is an HTTP-date 3 s from now (as a real server writes
    it, from the real clock) is waited about 3 s on the fake clock, then retried."""
    when = formatdate(time.time() + 3, usegmt=True)
    script = [(503, {"Retry-After": when}, b""), (200, {}, b"ok")]

    @retryx.retry(attempts=2, deadline=30)
    def fetch(url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            exc.close()  # its socket; the status and headers stay readable
            raise

    with servers.http(script) as srv, fake_time() as clock:
        assert b"ok" == fetch(srv.url + "/")
    assert 1 == len(clock.sleeps)
    assert 1.0 <= clock.sleeps[0] <= 3.0
