"""Cost of ``classify`` on real faults of redis-py, grpc, google-api-core and botocore.

Each fault is raised by the real library against a loopback endpoint, then judged
many times. CPU time (``time.process_time``) keeps the numbers usable on a busy
machine. ``judge`` is the client dispatch alone (``retryx._clients.judge``).

    python benchmarks/classify_rpc.py

Needs redis, grpcio, google-api-core[grpc] and botocore (the ``test`` extra).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
import timeit
from concurrent import futures
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import botocore.session
import grpc
import redis
from botocore.config import Config
from google.api_core import grpc_helpers
from redis.backoff import NoBackoff
from redis.retry import Retry

from retryx import classify
from retryx._clients import judge
from retryx.testing import servers

METHOD = "/bench.Faults/Call"


def _abort(request: bytes, context: Any) -> bytes:
    code, _, pushback = request.decode().partition(" ")
    if pushback:
        context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
    context.abort(grpc.StatusCode[code], code)
    return b""  # pragma: no cover - abort raises


def collect() -> dict[str, BaseException]:
    faults: dict[str, BaseException] = {}

    def grab(name: str, call: Any) -> None:
        try:
            call()
        except Exception as exc:
            faults[name] = exc

    with servers.refusing() as (_, port):
        client = redis.Redis(port=port, retry=Retry(NoBackoff(), 0))
        grab("redis ConnectionError (refused)", client.ping)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handlers = {"Call": grpc.unary_unary_rpc_method_handler(_abort)}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Faults", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        grab("grpc UNAVAILABLE with pushback", lambda: call(b"UNAVAILABLE 100", timeout=5))
        grab("grpc INVALID_ARGUMENT", lambda: call(b"INVALID_ARGUMENT", timeout=5))
        wrapped = grpc_helpers.wrap_errors(call)
        grab("google-api-core ServiceUnavailable", lambda: wrapped(b"UNAVAILABLE", timeout=5))
    server.stop(None)
    body = json.dumps({"__type": "ThrottlingException"})
    with servers.http([(400, {"x-amzn-ErrorType": "ThrottlingException"}, body)]) as srv:
        aws = botocore.session.get_session().create_client(
            "dynamodb",
            endpoint_url=srv.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}),
        )
        grab("botocore ThrottlingException", aws.list_tables)
    faults["builtin ConnectionRefusedError"] = ConnectionRefusedError(111, "refused")
    return faults


def main() -> None:
    number = 100_000
    for name, exc in collect().items():
        timings = []
        for func in (classify, judge):
            runs = timeit.repeat(
                lambda f=func, e=exc: f(e), number=number, repeat=7, timer=time.process_time
            )
            timings.append(min(runs) / number * 1e6)
        print(f"{name:40s} classify {timings[0]:5.2f} us   judge {timings[1]:5.2f} us")


if __name__ == "__main__":
    main()
