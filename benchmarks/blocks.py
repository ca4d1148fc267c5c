#!/usr/bin/env python
"""Happy path of a retry block (one successful attempt), against the peers' blocks.

Run from the repository root::

    python benchmarks/blocks.py           # about 20 s
    python benchmarks/blocks.py --quick   # a smoke test, numbers meaningless

Candidates, each a function whose body is one block around ``x + 1``:

- *bare*: the body with no block;
- *retryx*: ``for attempt in retryx.attempts(policy): with attempt: ...``;
- *tenacity*: ``for attempt in tenacity.Retrying(...): with attempt: ...``;
- *stamina*: ``for attempt in stamina.retry_context(on=...): with attempt: ...``.

Interleaved rounds (every round times every candidate, starting from a different
one), ``timeit`` per round, medians over rounds; ratios to tenacity in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmark the working tree
    sys.path.insert(0, str(ROOT))

import retryx  # noqa: E402


def candidates() -> dict[str, Any]:
    policy = retryx.Policy(attempts=3, name="bench-block")

    def bare(x: int) -> int:
        return x + 1

    def with_retryx(x: int) -> int:
        for attempt in retryx.attempts(policy):
            with attempt:
                return x + 1
        raise AssertionError

    found: dict[str, Any] = {"bare": bare, "retryx": with_retryx}
    try:
        import tenacity

        def with_tenacity(x: int) -> int:
            for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_attempt(3), retry=tenacity.retry_if_exception_type(OSError)
            ):
                with attempt:
                    return x + 1
            raise AssertionError

        found["tenacity"] = with_tenacity
    except ImportError:
        pass
    try:
        import stamina

        def with_stamina(x: int) -> int:
            for attempt in stamina.retry_context(on=OSError, attempts=3):
                with attempt:
                    return x + 1
            raise AssertionError

        found["stamina"] = with_stamina
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    rounds, number = (3, 200) if opts.quick else (15, 20_000)
    funcs = candidates()
    names = list(funcs)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = funcs[name]
            t = timeit.timeit(lambda fn=fn: fn(1), number=number)
            samples[name].append(t / number * 1e9)
    med = {n: statistics.median(v) for n, v in samples.items()}
    print(f"python {sys.version.split()[0]}; {rounds} rounds x {number} calls; median ns per call")
    base = med.get("tenacity")
    for name in names:
        ratio = f"  {med[name] / base:.3f}x tenacity" if base else ""
        print(f"{name:>9}: {med[name]:10.0f} ns{ratio}")


if __name__ == "__main__":
    main()
