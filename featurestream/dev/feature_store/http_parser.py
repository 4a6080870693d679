"""Incremental HTTP/1.1 request parsing: bytes in as they arrive, whole requests out.

Every limit is checked as soon as the bytes that break it are seen, before anything else is
read or allocated: a head over `max_head_bytes` (431), a Content-Length or a chunked body over
`max_body_bytes` (413, answered before the body is read), broken framing (400). Body bytes
are reserved from a budget shared by all connections, so many slow uploads cannot add up to
more memory than the budget (503 when it is spent, which SDKs retry).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_MAX_CHUNK_LINE = 1024


@dataclass(frozen=True)
class ParserLimits:
    max_head_bytes: int = 64 * 1024
    max_headers: int = 200
    # BatchWriteRecord: 25 records of up to 350 KB, which JSON escaping (botocore escapes every
    # non-ASCII character) can triple.
    max_body_bytes: int = 32 * 1024 * 1024


class HttpError(Exception):
    """A request that is answered with `status` and then the connection is closed."""

    def __init__(self, status: int, message: str, control_plane: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.control_plane = control_plane


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class RequestParser:
    """One connection's parser; `reserve(n)` takes n bytes from the shared body budget."""

    def __init__(self, limits: ParserLimits, reserve: Callable[[int], bool]) -> None:
        self.limits = limits
        self._reserve = reserve
        self.buf = bytearray()
        self.reserved = 0
        self.continue_due = False
        self._head: tuple[str, str, str, dict[str, str]] | None = None
        self._length = 0  # Content-Length of the body being read
        self._chunked: bytearray | None = None  # the decoded chunked body so far
        self._chunk_left: int | None = None  # bytes still due of the current chunk (+ CRLF)
        self._trailers = False

    @property
    def in_request(self) -> bool:
        """True once a request has started (its first byte arrived) and until it is complete."""
        return self._head is not None or bool(self.buf.lstrip(b"\r\n"))

    def feed(self, data: bytes) -> None:
        self.buf += data

    def take_reserved(self) -> int:
        taken, self.reserved = self.reserved, 0
        return taken

    def next_request(self) -> Request | None:
        """The next complete request, None until one is; HttpError for a request to refuse."""
        if self._head is None and not self._parse_head():
            return None
        assert self._head is not None
        method, target, version, headers = self._head
        body = self._chunked_body() if self._chunked is not None else self._sized_body()
        if body is None:
            return None
        self._head = None
        self._chunked = None
        self.continue_due = False
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return Request(method, target, headers, body, keep_alive)

    # -- head -------------------------------------------------------------------------------
    def _parse_head(self) -> bool:
        while self.buf[:2] == b"\r\n" or self.buf[:1] == b"\n":  # empty lines before a request
            del self.buf[: 2 if self.buf[:1] == b"\r" else 1]
        match = _HEAD_END.search(self.buf, 0, self.limits.max_head_bytes + 4)
        if match is None:
            if len(self.buf) > self.limits.max_head_bytes:
                raise HttpError(431, f"The request head exceeds {self.limits.max_head_bytes} bytes.")
            return False
        lines = _LINE.split(bytes(self.buf[: match.start()]))
        del self.buf[: match.end()]
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise HttpError(400, "Malformed HTTP request line.")
        if len(lines) - 1 > self.limits.max_headers:
            raise HttpError(431, f"More than {self.limits.max_headers} header fields.")
        headers = _headers(lines[1:])
        control = "x-amz-target" in headers
        method, target, version = (p.decode("latin-1") for p in parts)
        self._head = (method, target, version, headers)
        self._frame(headers, control)
        self.continue_due = headers.get("expect", "").lower() == "100-continue"
        return True

    def _frame(self, headers: dict[str, str], control: bool) -> None:
        encoding, length = headers.get("transfer-encoding"), headers.get("content-length")
        if encoding is not None:
            if length is not None:
                raise HttpError(400, "Transfer-Encoding and Content-Length together.", control)
            if encoding.strip().lower() != "chunked":
                raise HttpError(400, f"Unsupported Transfer-Encoding '{encoding[:40]}'.", control)
            self._chunked, self._chunk_left, self._trailers = bytearray(), None, False
            return
        if length is None:
            self._length = 0
            return
        if not (length.isascii() and length.isdigit()):
            raise HttpError(400, "Content-Length is not a number.", control)
        if len(length) > 12 or int(length) > self.limits.max_body_bytes:
            raise HttpError(
                413, f"The request body of {length[:20]} bytes exceeds the {self.limits.max_body_bytes} byte limit.",
                control,
            )
        self._length = int(length)
        self._take(self._length, control)

    def _take(self, size: int, control: bool) -> None:
        if not self._reserve(size):
            raise HttpError(503, "Too many large requests in flight; retry.", control)
        self.reserved += size

    # -- bodies -----------------------------------------------------------------------------
    def _sized_body(self) -> bytes | None:
        if len(self.buf) < self._length:
            return None
        body = bytes(self.buf[: self._length])
        del self.buf[: self._length]
        return body

    def _chunked_body(self) -> bytes | None:
        assert self._chunked is not None and self._head is not None
        control = "x-amz-target" in self._head[3]
        while True:
            if self._trailers:
                match = _LINE.search(self.buf, 0, self.limits.max_head_bytes + 2)
                if match is None:
                    if len(self.buf) > self.limits.max_head_bytes:
                        raise HttpError(431, "Chunked trailers are too long.", control)
                    return None
                line_empty = match.start() == 0
                del self.buf[: match.end()]
                if line_empty:
                    return bytes(self._chunked)
                continue
            if self._chunk_left is None:
                match = _LINE.search(self.buf, 0, _MAX_CHUNK_LINE + 2)
                if match is None:
                    if len(self.buf) > _MAX_CHUNK_LINE:
                        raise HttpError(400, "Chunk size line is too long.", control)
                    return None
                size_text = bytes(self.buf[: match.start()]).split(b";", 1)[0].strip()
                del self.buf[: match.end()]
                if not _HEX.fullmatch(size_text):
                    raise HttpError(400, "Malformed chunk size.", control)
                size = int(size_text, 16)
                if len(self._chunked) + size > self.limits.max_body_bytes:
                    raise HttpError(
                        413, f"The request body exceeds the {self.limits.max_body_bytes} byte limit.", control
                    )
                if size == 0:
                    self._trailers = True
                    continue
                self._take(size, control)
                self._chunk_left = size
            if len(self.buf) < self._chunk_left + 1:
                return None
            data_end = self._chunk_left
            if self.buf[data_end : data_end + 2] == b"\r\n":
                after = data_end + 2
            elif self.buf[data_end : data_end + 1] == b"\n":
                after = data_end + 1
            elif len(self.buf) < data_end + 2:
                return None
            else:
                raise HttpError(400, "A chunk is longer than its size says.", control)
            self._chunked += self.buf[:data_end]
            del self.buf[:after]
            self._chunk_left = None


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, "Malformed header field.")
        key = name.lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        if key == "content-length" and key in headers and headers[key] != text:
            raise HttpError(400, "Conflicting Content-Length headers.")
        headers[key] = text
    return headers
