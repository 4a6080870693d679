"""A lean threaded HTTP/1.1 server for the emulator (keep-alive, one thread per connection).

http.server parses every request's headers with the email package, which costs more than the
emulator's own work on a PutRecord; this loop reads the request line, headers and body with
plain bytes operations and writes each response with a single send.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
from typing import BinaryIO, cast

from featurestream.dev.feature_store.server import Emulator, Response

log = logging.getLogger(__name__)

MAX_LINE = 65536
MAX_HEADERS = 200
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.x request we can answer."""


class _InFlight:
    """Counts requests being handled so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


class _Date:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = formatdate(now, usegmt=True)
            self._second = now
        return self._value


class _Connection(socketserver.BaseRequestHandler):
    server: EmulatorServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = cast(BinaryIO, sock.makefile("rb", buffering=MAX_LINE))
        try:
            while self._one_request(sock, rfile):
                pass
        except (ConnectionError, TimeoutError, OSError):
            pass
        except BadRequest as exc:
            self._send(sock, Response(400, str(exc).encode(), "text/plain"), close=True)
        finally:
            rfile.close()

    def _one_request(self, sock: socket.socket, rfile: BinaryIO) -> bool:
        readline = rfile.readline
        line = readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):
            line = readline(MAX_LINE + 1)
        if not line:
            return False
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise BadRequest("malformed request line")
        method, target, version = (p.decode("latin-1") for p in parts)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.partition(b":")
            if not sep:
                raise BadRequest("malformed header line")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        else:
            raise BadRequest("too many headers")
        if headers.get("expect", "").lower() == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._body(rfile, headers)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        with self.server.tracker:
            response = self.server.emulator.handle(method, target, headers, body)
        close = not keep_alive or self.server.closing.is_set()
        self._send(sock, response, close=close)
        return not close

    @staticmethod
    def _body(rfile: BinaryIO, headers: dict[str, str]) -> bytes:
        read, readline = rfile.read, rfile.readline
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(read(size))
                readline(MAX_LINE)
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError as exc:
            raise BadRequest("bad Content-Length") from exc
        return bytes(read(length)) if length > 0 else b""

    def _send(self, sock: socket.socket, response: Response, *, close: bool) -> None:
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"x-amzn-RequestId: {uuid.uuid4()}",
            f"Date: {self.server.date()}",
            "Server: FeatureStoreLocal",
        ]
        head.extend(f"{k}: {v}" for k, v in response.headers)
        if close:
            head.append("Connection: close")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)


class EmulatorServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, host: str, port: int, emulator: Emulator) -> None:
        self.emulator = emulator
        self.tracker = _InFlight()
        self.closing = threading.Event()
        self.date = _Date()
        super().__init__((host, port), _Connection)

    @property
    def port(self) -> int:
        return int(self.server_address[1])
