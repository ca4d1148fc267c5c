"""What the docs say about behaviour the code decides (issue 21, item 7): each claim
checked against the code, so the two cannot drift apart silently."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import retryx
from retryx.testing import FakeClock, _plugin

ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_documents_every_fixture_of_the_plugin() -> None:
    """The plugin's docstring (rendered in docs/reference/testing.md) names every fixture."""
    fixtures = [name for name in vars(_plugin) if name.startswith("retryx_")]
    assert len(fixtures) >= 7
    doc = inspect.getdoc(_plugin) or ""
    assert [] == [name for name in fixtures if name not in doc]
    reference = (ROOT / "docs" / "reference" / "testing.md").read_text(encoding="utf-8")
    assert "::: retryx.testing._plugin\n" in reference


def test_no_page_says_retryx_toml_is_found_by_itself() -> None:
    """``retryx.toml`` is read only when named (``configure(path)``, ``$RETRYX_CONFIG``):
    the pages that used to say named policies come from it no longer mention it."""
    for page in ("README.md", "docs/index.md", "docs/choosing-a-policy.md"):
        assert "retryx.toml" not in (ROOT / page).read_text(encoding="utf-8"), page


def test_switches_count_every_endpoint_failure(clock: FakeClock) -> None:
    """``Stats.switches`` counts endpoint failures, the last endpoint's included."""

    @retryx.failover(["a", "b", "c"])
    def query(*, host: str = retryx.ENDPOINT) -> None:
        raise ConnectionRefusedError(host)

    with pytest.raises(retryx.AllEndpointsFailed):
        query()
    assert 3 == retryx.stats(query).switches


def test_endpoint_breakers_are_named_after_the_policy_name(clock: FakeClock) -> None:
    """Without a template, an endpoint's breaker is ``"{policy name}@{endpoint}"`` when the
    retry policy has a name, else ``"{qualified name}@{endpoint}"``."""
    opened: list[str] = []
    retryx.events.subscribe(
        lambda e: (
            opened.append(e.breaker)
            if type(e).__name__ == "CircuitStateChanged" and e.new == "open"
            else None
        )
    )

    @retryx.retry(attempts=3, name="orders-api")
    @retryx.failover(["db1"])
    def named(*, host: str = retryx.ENDPOINT) -> None:
        raise ConnectionRefusedError(host)

    @retryx.retry(attempts=3)
    @retryx.failover(["db1"])
    def unnamed(*, host: str = retryx.ENDPOINT) -> None:
        raise ConnectionRefusedError(host)

    for func in (named, unnamed):
        with pytest.raises(retryx.AllEndpointsFailed):
            func()
    assert ["orders-api@db1", f"{unnamed.__qualname__}@db1"] == opened
