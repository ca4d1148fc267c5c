"""An in-process gRPC server for the client-verdict tests: generic handlers, raw bytes.

The one method ``METHOD`` reads its request as a command (see ``_handler``), so a
test makes the real server abort with any status code and trailer.
"""

from __future__ import annotations

import collections
import time
from concurrent import futures
from typing import Any

import grpc

__all__ = ["CALLS", "METHOD", "start_server"]

METHOD = "/retryx.test.Faults/Call"
CALLS: collections.Counter[str] = collections.Counter()


def _handler(request: bytes, context: Any) -> bytes:
    """``b"CODE"`` aborts with that status; ``b"CODE pushback"`` also sets the trailer;
    ``b"sleep S"`` answers after S seconds; ``b"ok"`` answers; ``b"tag NAME ..."``
    counts the call in ``CALLS[NAME]`` first.
    """
    text = request.decode()
    if text.startswith("tag "):  # b"tag NAME REST": count the call under NAME, then REST
        _, name, text = text.split(" ", 2)
        CALLS[name] += 1
    word, _, arg = text.partition(" ")
    if word == "ok":
        return b"ok"
    if word == "sleep":
        time.sleep(float(arg))
        return b"late"
    if arg:
        context.set_trailing_metadata((("grpc-retry-pushback-ms", arg),))
    context.abort(grpc.StatusCode[word], f"aborted with {word}")
    raise AssertionError("abort returns only by raising")  # pragma: no cover


def start_server(port: int = 0) -> tuple[Any, int]:
    """A started in-process server on 127.0.0.1 (``port`` 0: a free one) and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(_handler)
    generic = grpc.method_handlers_generic_handler("retryx.test.Faults", {"Call": handler})
    server.add_generic_rpc_handlers((generic,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound
