"""``python -m retryx``: the ``retryx`` command line."""

from ._cli import main

raise SystemExit(main())
