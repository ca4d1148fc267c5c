"""Scripted loopback servers speaking just enough of the MySQL and MongoDB wire
protocols for the real drivers to connect and then meet a chosen server error.

- ``mysql(refuse=None)``: a MySQL server (protocol 10, any user and password).
  With ``refuse=1040`` it sends that error packet instead of the greeting. After
  the handshake it answers every query with OK, except ``fail <number>``, which
  gets the error packet ``<number>``.
- ``mongo(reply)``: a standalone MongoDB server that answers ``hello`` /
  ``isMaster`` (OP_QUERY and OP_MSG) and ``endSessions``; every other command gets
  ``reply``: an error document, ``"silent"`` (never answers) or ``"close"``
  (closes the connection). Documents are encoded with pymongo's bundled ``bson``.

Each server runs one daemon thread per connection and stops when its context ends.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["mongo", "mysql"]

_STOP = threading.Event  # set when the server stops


@contextlib.contextmanager
def _serve(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """Accept connections on a free loopback port, ``handle`` each in a thread; yield the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=_guarded, args=(handle, conn, stop), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
        for conn in conns:
            conn.close()


def _guarded(
    handle: Callable[[socket.socket, _STOP], None], conn: socket.socket, stop: _STOP
) -> None:
    conn.settimeout(0.1)
    with contextlib.suppress(OSError, EOFError):
        handle(conn, stop)
    conn.close()  # a handler that returns ends its connection


def _recv_exactly(conn: socket.socket, size: int, stop: _STOP) -> bytes:
    data = b""
    while len(data) < size:
        if stop.is_set():
            raise EOFError
        try:
            chunk = conn.recv(size - len(data))
        except TimeoutError:
            continue
        if not chunk:
            raise EOFError
        data += chunk
    return data


# --- MySQL ----------------------------------------------------------------------------

_CAPABILITIES = 0x0001 | 0x0200 | 0x2000 | 0x8000 | 0x80000  # long password, 4.1, transactions,
# secure connection, plugin auth
_SQLSTATES = {1040: b"08004", 1053: b"08S01", 1205: b"HY000", 1213: b"40001", 1064: b"42000"}


def _mysql_packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def _mysql_error(seq: int, number: int) -> bytes:
    state = _SQLSTATES.get(number, b"HY000")
    return _mysql_packet(seq, b"\xff" + struct.pack("<H", number) + b"#" + state + b"scripted")


def _mysql_ok(seq: int) -> bytes:
    return _mysql_packet(seq, b"\x00\x00\x00" + struct.pack("<HH", 0x0002, 0))


def _mysql_greeting() -> bytes:
    scramble = b"0123456789abcdefghij"
    payload = b"\x0a" + b"8.0.0-retryx\x00" + struct.pack("<I", 1) + scramble[:8] + b"\x00"
    payload += struct.pack("<H", _CAPABILITIES & 0xFFFF) + bytes([45]) + struct.pack("<H", 0x0002)
    payload += struct.pack("<H", _CAPABILITIES >> 16) + bytes([21]) + b"\x00" * 10
    payload += scramble[8:] + b"\x00" + b"mysql_native_password\x00"
    return _mysql_packet(0, payload)


def _mysql_read(conn: socket.socket, stop: _STOP) -> tuple[int, bytes]:
    head = _recv_exactly(conn, 4, stop)
    size = int.from_bytes(head[:3], "little")
    return head[3], _recv_exactly(conn, size, stop)


@contextlib.contextmanager
def mysql(refuse: int | None = None) -> Iterator[int]:
    """A scripted MySQL server; yields its port."""

    def handle(conn: socket.socket, stop: _STOP) -> None:
        if refuse is not None:
            conn.sendall(_mysql_error(0, refuse))
            return
        conn.sendall(_mysql_greeting())
        seq, _ = _mysql_read(conn, stop)  # the handshake response: any credentials pass
        conn.sendall(_mysql_ok(seq + 1))
        while True:
            seq, payload = _mysql_read(conn, stop)
            command, text = payload[:1], payload[1:].decode("utf-8", "replace")
            if command == b"\x01":  # COM_QUIT
                return
            if command == b"\x03" and text.startswith("fail "):
                conn.sendall(_mysql_error(seq + 1, int(text.split()[1])))
            else:
                conn.sendall(_mysql_ok(seq + 1))

    with _serve(handle) as port:
        yield port


# --- MongoDB --------------------------------------------------------------------------

_OP_REPLY, _OP_QUERY, _OP_MSG = 1, 2004, 2013
_HELLO = {"hello", "ismaster", "isMaster"}


def _hello() -> dict[str, Any]:
    return {
        "isWritablePrimary": True,
        "ismaster": True,
        "helloOk": True,
        "maxWireVersion": 21,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.datetime.now(datetime.UTC),
        "connectionId": 1,
        "ok": 1.0,
    }


@contextlib.contextmanager
def mongo(reply: dict[str, Any] | str, seen: list[str] | None = None) -> Iterator[int]:
    """A scripted standalone MongoDB server; yields its port. The names of the
    commands it got (``hello`` and ``endSessions`` aside) are appended to ``seen``.
    """
    import bson

    def answer(conn: socket.socket, request_id: int, op: int, doc: dict[str, Any]) -> None:
        body = bson.encode(doc)
        if op == _OP_QUERY:
            payload = struct.pack("<iqii", 0, 0, 0, 1) + body
            opcode = _OP_REPLY
        else:
            payload = struct.pack("<I", 0) + b"\x00" + body
            opcode = _OP_MSG
        conn.sendall(struct.pack("<iiii", 16 + len(payload), 0, request_id, opcode) + payload)

    def handle(conn: socket.socket, stop: _STOP) -> None:
        while True:
            head = _recv_exactly(conn, 16, stop)
            length, request_id, _, op = struct.unpack("<iiii", head)
            message = _recv_exactly(conn, length - 16, stop)
            if op == _OP_QUERY:
                name_end = message.index(b"\x00", 4)
                command = bson.decode(message[name_end + 9 :])
            elif op == _OP_MSG:
                size = struct.unpack("<i", message[5:9])[0]
                command = bson.decode(message[5 : 5 + size])  # section kind 0: the body
            else:
                return
            name = next(iter(command))
            if name in _HELLO:
                answer(conn, request_id, op, _hello())
                continue
            if name == "endSessions":
                answer(conn, request_id, op, {"ok": 1.0})
                continue
            if seen is not None:
                seen.append(name)
            if reply == "silent":
                stop.wait()
                return
            if reply == "close":
                return
            assert isinstance(reply, dict)
            answer(conn, request_id, op, reply)

    with _serve(handle) as port:
        yield port
