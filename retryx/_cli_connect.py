"""``retryx connect``: open a TCP connection with retry and failover, print what happened."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from . import _clock
from ._cli_options import (
    HELP_FMT,
    PROG,
    Parser,
    UsageError,
    build_policy,
    policy_given,
    positive_float,
)
from ._errors import ConfigError

__all__ = ["add_parser", "parse_endpoint"]

SEND_MAX_BYTES = 65536
"""``connect --send`` reads at most this much of the reply."""

_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d+)$")


def parse_endpoint(text: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` as ``(host, port)``.

    Raises:
        UsageError: when ``text`` is not of that form or the port is out of range.
    """
    m = _ENDPOINT.match(text)
    port = int(m["port"]) if m else 0
    if m is None or not 1 <= port <= 65535:
        raise UsageError(f"endpoint must be HOST:PORT (port 1-65535), got {text!r}")
    return (m["v6"] or m["host"], port)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _error_text(exc: BaseException | None) -> str:
    if exc is None:  # a result retry_if_result asked to retry (not in connect's policy)
        return "result"
    text = exc.message if isinstance(exc, BaseExceptionGroup) else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)


def _answered(endpoints: Sequence[str], peer: Any) -> str:
    """The endpoint (as the user wrote it) that the connected socket talks to."""
    text = _addr(peer)
    if text in endpoints:
        return text
    port = peer[1] if isinstance(peer, tuple) and len(peer) >= 2 else None
    same_port = [e for e in endpoints if parse_endpoint(e)[1] == port]
    if len(same_port) == 1:
        return f"{same_port[0]} ({text})"
    return text


def _read_reply(sock: Any, timeout: float) -> bytes:
    """Read until EOF, ``timeout`` seconds, or ``SEND_MAX_BYTES``."""
    end = _clock.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    while size < SEND_MAX_BYTES:  # each pass reads >= 1 byte or ends
        left = end - _clock.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(SEND_MAX_BYTES - size)
        except TimeoutError:
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def _cmd_connect(args: argparse.Namespace) -> int:
    for e in args.endpoints:
        parse_endpoint(e)
    policy = build_policy(args) if policy_given(args) else None
    try:
        sockets = importlib.import_module("retryx.sockets")
    except ImportError:
        raise UsageError("connect needs retryx.sockets, which is not available") from None
    from . import events
    from ._errors import AllEndpointsFailed

    start = _clock.monotonic()
    log: list[dict[str, Any]] = []

    def record(event: Any) -> None:
        at = _clock.monotonic() - start
        if isinstance(event, events.EndpointFailed):
            log.append(
                {"at": at, "endpoint": _addr(event.endpoint), "error": _error_text(event.exception)}
            )
        elif isinstance(event, events.RetryScheduled):
            log.append(
                {
                    "at": at,
                    "attempt": event.attempt,
                    "retry_in": event.delay,
                    "error": _error_text(event.exception),
                }
            )

    unsubscribe = events.subscribe(record)
    # The command reports each attempt itself: keep the library's log lines
    # (printed by logging's last-resort handler) off the terminal meanwhile.
    quiet_log = logging.NullHandler()
    logging.getLogger("retryx").addHandler(quiet_log)
    sock: Any = None
    failure: Exception | None = None
    try:
        sock = sockets.connect(
            list(args.endpoints), policy=policy, timeout=args.timeout, order=args.order
        )
    except ConfigError:
        raise
    except Exception as exc:
        failure = exc
    finally:
        unsubscribe()
        logging.getLogger("retryx").removeHandler(quiet_log)
    elapsed = _clock.monotonic() - start
    if isinstance(failure, AllEndpointsFailed) and not any("endpoint" in e for e in log):
        log.extend(
            {"at": elapsed, "endpoint": _addr(ep), "error": _error_text(exc)}
            for ep, exc in failure.errors.items()
        )
    result: dict[str, Any] = {
        "connected": sock is not None,
        "endpoint": None,
        "peer": None,
        "local": None,
        "elapsed": elapsed,
        "attempts": log,
        "error": None if failure is None else _error_text(failure),
        "reply": None,
    }
    status = 0
    if sock is not None:
        with sock:
            peer = sock.getpeername()
            result["endpoint"] = _answered(args.endpoints, peer)
            result["peer"] = _addr(peer)
            result["local"] = _addr(sock.getsockname())
            if args.send is not None:
                try:
                    sock.sendall(args.send.encode())
                    with contextlib.suppress(OSError):
                        sock.shutdown(1)  # SHUT_WR: tell the peer we are done sending
                    reply = _read_reply(sock, args.timeout)
                    result["reply"] = reply.decode("utf-8", errors="replace")
                except OSError as exc:
                    result["error"] = f"--send failed: {_error_text(exc)}"
                    status = 1
    else:
        status = 1
    _print_connect(result, as_json=args.json)
    return status


def _print_connect(result: dict[str, Any], *, as_json: bool) -> None:
    out = sys.stdout
    if as_json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return
    for entry in result["attempts"]:
        at = _ms(entry["at"])
        if "endpoint" in entry:
            out.write(f"[{at}] {entry['endpoint']} failed: {entry['error']}\n")
        else:
            out.write(
                f"[{at}] attempt {entry['attempt']} failed; retrying in {entry['retry_in']:.2f}s\n"
            )
    if result["connected"]:
        out.write(
            f"connected to {result['endpoint']} in {_ms(result['elapsed'])} "
            f"(local {result['local']})\n"
        )
        if result["reply"] is not None:
            out.write(f"reply ({len(result['reply'].encode())} bytes):\n{result['reply']}")
            if result["reply"] and not result["reply"].endswith("\n"):
                out.write("\n")
    if result["error"] is not None:
        sys.stderr.write(f"{PROG}: {result['error']}\n")
        if not result["connected"]:
            sys.stderr.write(f"{PROG}: not connected after {_ms(result['elapsed'])}\n")


_CONNECT_EPILOG = """\
examples:
  retryx connect db1:5432 db2:5432 --attempts 3 --timeout 2
  retryx connect [::1]:8080 --send $'GET / HTTP/1.0\\r\\n\\r\\n'
  retryx connect cache:6379 --json

exit status: 0 when connected, 1 when not, 2 for bad usage.
"""


def add_parser(sub: argparse._SubParsersAction[Parser], policy: Parser) -> None:
    """Add ``connect`` to the ``retryx`` subcommands; ``policy`` holds the policy options."""
    connect = sub.add_parser(
        "connect",
        parents=[policy],
        help="open a TCP connection with retry and failover",
        description="Connect to the first endpoint that answers, with retry and failover.",
        epilog=_CONNECT_EPILOG,
        formatter_class=HELP_FMT,
    )
    connect.add_argument("endpoints", nargs="+", metavar="HOST:PORT")
    connect.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="per-attempt connect timeout, also bounds the --send reply (default 5)",
    )
    connect.add_argument(
        "--order", choices=["priority", "round_robin", "random"], default="priority"
    )
    connect.add_argument("--send", metavar="TEXT", help="send TEXT and print the reply")
    connect.add_argument("--json", action="store_true", help="print JSON")
    connect.set_defaults(func=_cmd_connect)
