"""A pass-through HTTP proxy in front of the emulator that answers BatchWriteRecord as a service
without that operation does (404 UnknownOperationException); everything else is forwarded.

It stands for a Feature Store endpoint that predates BatchWriteRecord, to exercise the writer's
fallback to PutRecord over real HTTP.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: NoBatchWriteProxy

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/BatchWriteRecord"):
            self.server.refused += 1
            payload = json.dumps({"__type": "UnknownOperationException", "Message": "No such operation."}).encode()
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "UnknownOperationException"}
            self._reply(404, payload, headers)
            return
        up = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self._reply(resp.status, data, {k: v for k, v in resp.getheaders()
                                            if k.lower() not in ("content-length", "connection", "transfer-encoding")})
        finally:
            conn.close()

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class NoBatchWriteProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.refused = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> NoBatchWriteProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
