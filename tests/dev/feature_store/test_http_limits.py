"""Issue 19, finding 4: requests are bounded in size, time and threads, and always answered.

Before the fix the emulator read whatever Content-Length announced (a 4e9 header reserved
3.9 GB), kept a thread per connection with no socket timeout (300 idle half-sent requests held
306 threads) and dropped the connection on a bad chunk size.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.dev.feature_store.helpers import (
    DEFAULT_FEATURES,
    http_status,
    proc_status,
    raw_http,
    record,
    runtime_client,
    sagemaker_client,
)

pytestmark = pytest.mark.feature_store


def _request(path: str, rest: str) -> bytes:
    """A PutRecord request line and headers; `rest` carries the framing headers and the body."""
    return f"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{rest}".encode()


def test_a_huge_content_length_is_refused_before_the_body_is_read(emulator: Any) -> None:
    before = proc_status(emulator.pid)
    answer = raw_http(emulator.url, _request("/FeatureGroup/any", 'Content-Length: 4000000000\r\n\r\n{"Re'),
                      timeout=10)
    assert http_status(answer) == 413, answer[:200]
    assert b"ValidationError" in answer
    after = proc_status(emulator.pid)
    assert after["VmHWM"] - before["VmHWM"] < 50_000, (before, after)  # kB: nothing was reserved


@pytest.mark.parametrize("framing", [
    "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "Transfer-Encoding: chunked\r\n\r\n-5\r\n{}\r\n0\r\n\r\n",
    "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
    "Content-Length: -1\r\n\r\n{}",
    "Content-Length: 1e3\r\n\r\n{}",
    "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "Transfer-Encoding: gzip\r\n\r\n{}",
])
def test_broken_framing_is_answered_not_dropped(emulator: Any, framing: str) -> None:
    answer = raw_http(emulator.url, _request("/FeatureGroup/any", framing), timeout=10)
    status = http_status(answer)
    assert status is not None and 400 <= status < 500, answer[:200]
    assert emulator.healthy()


def test_half_sent_and_idle_connections_hold_no_threads(emulator_factory: Any) -> None:
    """300 requests stuck halfway and 100 idle connections: threads stay bounded, other clients
    are served at once, and the stuck requests are answered 408 once their time is up."""
    env = {**os.environ, "FEATURESTREAM_FS_REQUEST_TIMEOUT_S": "3"}
    emu = emulator_factory(env=env)
    sagemaker_client(emu.url).create_feature_group(
        FeatureGroupName="busy", RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=DEFAULT_FEATURES, OnlineStoreConfig={"EnableOnlineStore": True})
    parts = urlsplit(emu.url)
    stuck: list[socket.socket] = []
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
            sock.sendall(_request("/FeatureGroup/busy", 'Content-Length: 1000\r\n\r\n{"Record": ['))
            stuck.append(sock)
        for _ in range(100):
            idle.append(socket.create_connection((parts.hostname, parts.port), timeout=10))
        time.sleep(0.5)
        threads = proc_status(emu.pid)["Threads"]
        assert threads <= 64, f"{threads} threads for 400 connections"

        rt = runtime_client(emu.url)
        start = time.monotonic()
        rt.put_record(FeatureGroupName="busy", Record=record(id="a", ts="2024-05-01T10:00:00Z"))
        assert rt.get_record(FeatureGroupName="busy", RecordIdentifierValueAsString="a")["Record"]
        assert time.monotonic() - start < 2

        answered = 0
        for sock in stuck:
            sock.settimeout(10)
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            answered += http_status(data) == 408
        assert answered == len(stuck)
    finally:
        for sock in stuck + idle:
            sock.close()


def _read_response(sock: socket.socket) -> bytes:
    """One response: its head, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_expect_continue_is_answered_on_a_kept_alive_connection(emulator: Any) -> None:
    """The AWS SDK for Java sends `Expect: 100-continue` on every request and holds the body back
    until `100 Continue` comes (or for 3 s). Before the fix, only a connection waiting in the loop
    got the answer: the next request on a connection the worker kept was answered after the
    worker's 1 s wait, which made the AWS connector's PutRecord mode ~50 times slower."""
    url = urlsplit(emulator.url)
    body = b'{"Record": []}'
    with socket.create_connection((url.hostname, url.port), timeout=0.5) as sock:
        for attempt in range(3):
            sock.sendall(_request("/FeatureGroup/no-such-group",
                                  f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"))
            try:
                interim = sock.recv(25)
            except TimeoutError:  # 0.5 s
                interim = b"nothing within 0.5 s"
            assert interim.startswith(b"HTTP/1.1 100 Continue"), (attempt, interim)
            sock.sendall(body)
            status = http_status(_read_response(sock))
            assert status is not None and 400 <= status < 500
