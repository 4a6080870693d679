"""The emulator's HTTP/1.1 server: one selector thread owns the sockets, a bounded pool runs requests.

A connection costs a thread only while a complete request is being handled. Idle keep-alive
connections and requests still arriving (slowly, or never finished) wait in the selector, so
their number cannot exhaust threads: the pool has `workers` threads whatever the clients do.
Limits are answered, never met by dropping the connection: an oversized request gets 413
before its body is read, broken framing 400, a request not complete within
`request_timeout_s` 408; idle connections are closed after `idle_timeout_s`. After such an
answer the connection is closed the lingering way (stop writing, read and discard for a
moment) so that the client reads the answer instead of a reset.
"""

from __future__ import annotations

import json
import logging
import queue
import selectors
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

from featurestream.dev.feature_store.http_parser import HttpError, ParserLimits, Request, RequestParser
from featurestream.dev.feature_store.server import Emulator, Response

log = logging.getLogger(__name__)

_REASONS = {s.value: s.phrase for s in HTTPStatus}
# A client that does not read its response frees the worker after 30 s; a worker waits 1 s for
# a connection's next request before it hands the connection back to the loop.
_INLINE_WAIT_S = 1.0
_SND_TIMEOUT = struct.pack("ll", 30, 0)
_RCV_TIMEOUT = struct.pack("ll", int(_INLINE_WAIT_S), 0)
_LINGER_S = 2.0
_SWEEP_EVERY_S = 0.25


@dataclass(frozen=True)
class HttpLimits:
    parser: ParserLimits = field(default_factory=ParserLimits)
    request_timeout_s: float = 30.0
    idle_timeout_s: float = 120.0
    workers: int = 32
    max_connections: int = 1024
    # Body bytes of all requests being received or handled at once.
    body_budget_bytes: int = 256 * 1024 * 1024


class _InFlight:
    """Counts requests handed to the pool, so that shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def begin(self) -> None:
        with self._cond:
            self._count += 1

    def end(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


class _Budget:
    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if size > self._left:
                return False
            self._left -= size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._left += size


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


class _Conn:
    __slots__ = ("last_active", "linger_until", "parser", "sock", "started")

    def __init__(self, sock: socket.socket, parser: RequestParser, now: float) -> None:
        self.sock = sock
        self.parser = parser
        self.last_active = now
        self.started: float | None = None  # when the request now arriving began
        self.linger_until: float | None = None


class EmulatorServer:
    """`serve_forever()` in one thread; `shutdown()` stops it, `server_close()` frees everything."""

    def __init__(self, host: str, port: int, emulator: Emulator, limits: HttpLimits | None = None) -> None:
        self.emulator = emulator
        self.limits = limits or HttpLimits()
        self.tracker = _InFlight()
        self.closing = threading.Event()
        self.date = _Date()
        self._budget = _Budget(self.limits.body_budget_bytes)
        self._listener = socket.create_server((host, port), backlog=512)
        self._listener.setblocking(False)
        self.server_address = self._listener.getsockname()
        self._selector = selectors.DefaultSelector()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="http")
        self._conns: dict[int, _Conn] = {}
        self._returns: queue.SimpleQueue[tuple[_Conn, bool]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._dispatched = 0  # requests the loop handed to the pool
        self._inline = 0  # requests a worker read itself, right after the previous one
        self._busy = 0  # workers holding a connection (handling, or waiting for its next request)
        self._busy_lock = threading.Lock()
        self._accepting = False

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stats(self) -> dict[str, int]:
        return {"connections": len(self._conns), "workers": self.limits.workers,
                "dispatched": self._dispatched, "inline": self._inline}

    # -- the selector loop ------------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.2) -> None:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._set_accepting(True)
        next_sweep = time.monotonic()
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=min(poll_interval, _SWEEP_EVERY_S)):
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        self._take_returns()
                    else:
                        self._on_readable(key.data)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + _SWEEP_EVERY_S
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the loop (requests in the pool finish and answer with Connection: close)."""
        self._stop.set()
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        self._pool.shutdown(wait=True)
        for conn in list(self._conns.values()):
            self._close(conn)
        while not self._returns.empty():
            self._close(self._returns.get()[0])
        self._listener.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _set_accepting(self, on: bool) -> None:
        if on != self._accepting:
            if on:
                self._selector.register(self._listener, selectors.EVENT_READ, None)
            else:
                self._selector.unregister(self._listener)
            self._accepting = on

    def _accept(self) -> None:
        while len(self._conns) < self.limits.max_connections or self._evict_idle():
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: stop accepting until a connection closes
                log.warning("accept failed: %s", exc)
                self._set_accepting(False)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Kernel timeouts for the workers' blocking calls (the loop's calls never block): one
            # system call per recv or send, where a Python socket timeout adds a poll to each.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _RCV_TIMEOUT)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _SND_TIMEOUT)
            conn = _Conn(sock, RequestParser(self.limits.parser, self._budget.reserve), time.monotonic())
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
        self._set_accepting(False)  # full of busy connections: the kernel's backlog waits

    def _evict_idle(self) -> bool:
        idle = [c for c in self._conns.values() if c.started is None and c.linger_until is None
                and not c.parser.in_request and self._registered(c)]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: c.last_active))
        return True

    def _registered(self, conn: _Conn) -> bool:
        try:
            self._selector.get_key(conn.sock)
        except (KeyError, ValueError):
            return False
        return True

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data or conn.linger_until is not None:
            if not data:
                self._close(conn)
            return  # lingering: what the client still sends is read and dropped
        now = time.monotonic()
        conn.last_active = now
        if conn.started is None and not conn.parser.in_request:
            conn.started = now
        conn.parser.feed(data)
        self._advance(conn)

    def _advance(self, conn: _Conn) -> None:
        try:
            request = conn.parser.next_request()
        except HttpError as exc:
            self._reject(conn, exc)
            return
        if request is None:
            if conn.parser.continue_due:
                conn.parser.continue_due = False
                self._send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            if conn.parser.in_request and conn.started is None:
                conn.started = time.monotonic()
            return
        self._selector.unregister(conn.sock)
        conn.started = None
        self.tracker.begin()
        self._dispatched += 1
        self._pool.submit(self._serve, conn, request, conn.parser.take_reserved())

    def _take_returns(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while not self._returns.empty():
            conn, close = self._returns.get()
            if self._stop.is_set():
                self._close(conn)
                continue
            conn.sock.setblocking(False)
            conn.last_active = time.monotonic()
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            if close:
                self._linger(conn)
                continue
            if conn.parser.in_request:  # pipelined, or begun while a worker held the connection
                conn.started = conn.last_active
                self._advance(conn)

    def _sweep(self, now: float) -> None:
        limits = self.limits
        for conn in list(self._conns.values()):
            if conn.linger_until is not None:
                if now >= conn.linger_until:
                    self._close(conn)
            elif conn.started is not None and self._registered(conn):
                if now - conn.started > limits.request_timeout_s:
                    message = f"The request was not complete within {limits.request_timeout_s:g} s."
                    self._reject(conn, HttpError(408, message))
            elif now - conn.last_active > limits.idle_timeout_s and self._registered(conn):
                self._close(conn)
        if not self._accepting and len(self._conns) < limits.max_connections:
            self._set_accepting(True)

    def _reject(self, conn: _Conn, error: HttpError) -> None:
        self._budget.release(conn.parser.take_reserved())
        self._send_now(conn, self._render(_error_response(error), close=True))
        self._linger(conn)

    def _linger(self, conn: _Conn) -> None:
        """Close after the answer: stop writing, then read and drop what the client still sends.

        Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
        answer in the client's buffer before the client has read it.
        """
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.linger_until = time.monotonic() + _LINGER_S

    def _send_now(self, conn: _Conn, data: bytes) -> None:
        # Small answers from the loop: a full send buffer means the client is not reading.
        try:
            conn.sock.send(data)
        except OSError:
            pass

    def _close(self, conn: _Conn) -> None:
        fileno = conn.sock.fileno()
        if fileno >= 0 and self._registered(conn):
            self._selector.unregister(conn.sock)
        self._conns.pop(fileno, None)
        self._budget.release(conn.parser.take_reserved())
        try:
            conn.sock.close()
        except OSError:
            pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending

    # -- the workers ------------------------------------------------------------------------
    def _serve(self, conn: _Conn, request: Request, reserved: int) -> None:
        """Handle a request, then the connection's next ones while they follow at once."""
        with self._busy_lock:
            self._busy += 1
        close = True
        try:
            conn.sock.setblocking(True)  # bounded by SO_RCVTIMEO / SO_SNDTIMEO
            while True:
                close = self._answer(conn, request, reserved)
                if close:
                    break
                follow = self._next_inline(conn)
                if follow is None:
                    break
                request, reserved = follow, conn.parser.take_reserved()
        except OSError:
            close = True
        except HttpError:
            close = False  # the loop answers it: the parser still holds the broken request
        except Exception:
            log.exception("request handling failed")
            close = True
        finally:
            with self._busy_lock:
                self._busy -= 1
            self._returns.put((conn, close))
            self._wake()

    def _answer(self, conn: _Conn, request: Request, reserved: int) -> bool:
        """Handle one request and send its response; True when the connection is to be closed."""
        try:
            response = self.emulator.handle(request.method, request.target, request.headers, request.body)
        finally:
            self._budget.release(reserved)
            self.tracker.end()
        close = not request.keep_alive or self.closing.is_set()
        conn.sock.sendall(self._render(response, close=close))
        return close

    def _next_inline(self, conn: _Conn) -> Request | None:
        """The next request if it arrives within a moment, while another worker is free.

        A client that keeps its connection busy is then served without the two hand-offs between
        this worker and the loop; anything else goes back to the loop.
        """
        if self._stop.is_set() or self._busy >= self.limits.workers:
            return None
        deadline = time.monotonic() + _INLINE_WAIT_S  # a slow sender goes back to the loop
        # An HttpError goes back to the loop too, which answers it.
        while (request := conn.parser.next_request()) is None:
            if conn.parser.continue_due:
                # The AWS SDK for Java sends `Expect: 100-continue` on every request and holds
                # the body back until it is answered (or for 3 s): answered here too, not only
                # by the loop, or each request on a kept-alive connection waits out the deadline.
                conn.parser.continue_due = False
                conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if time.monotonic() > deadline:
                return None
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:  # SO_RCVTIMEO ran out: nothing (more) came
                return None
            if not data:
                raise ConnectionResetError("closed by the client")
            conn.parser.feed(data)
        self.tracker.begin()
        self._inline += 1
        return request

    def _render(self, response: Response, *, close: bool) -> bytes:
        head = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"x-amzn-RequestId: {uuid.uuid4()}",
            f"Date: {self.date()}",
            "Server: FeatureStoreLocal",
        ]
        head.extend(f"{k}: {v}" for k, v in response.headers)
        if close:
            head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


def _error_response(error: HttpError) -> Response:
    """The plane's error shape, so that SDKs raise their own exception for it."""
    if error.status == 503:
        code = "ServiceUnavailable"
    elif error.status == 408:
        code = "RequestTimeout"
    else:
        code = "ValidationException" if error.control_plane else "ValidationError"
    content_type = "application/x-amz-json-1.1" if error.control_plane else "application/json"
    body = json.dumps({"__type": code, "Message": error.message}).encode()
    return Response(error.status, body, content_type, (("x-amzn-ErrorType", code),))
