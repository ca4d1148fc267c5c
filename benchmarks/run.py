#!/usr/bin/env python
"""Run every retryx benchmark: ``python benchmarks/run.py [--quick] [--json FILE]``.

A thin entry point over ``benchmarks/overhead.py``; every option is passed through.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead

if __name__ == "__main__":
    sys.exit(overhead.main(sys.argv[1:]))
