"""Loopback ports that never answer, for timeout tests of real clients.

``silent()`` completes the TCP handshake (the listen backlog does) and never reads
or answers: a read timeout. ``full_backlog()`` listens with a full queue, so the
kernel drops new SYNs: a connect timeout.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

__all__ = ["full_backlog", "silent"]


@contextlib.contextmanager
def silent() -> Iterator[int]:
    """A port that accepts connections (in the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full: a new connect times out."""
    with socket.socket() as listener, contextlib.ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = fillers.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.05)  # let the handshakes of the fillers complete
        yield port
