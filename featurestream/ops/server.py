"""The Prometheus HTTP endpoint of a job (`/metrics`), loopback unless the profile says otherwise."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile

from featurestream.errors import FeatureStreamError

log = logging.getLogger(__name__)


class MetricsServerError(FeatureStreamError):
    """The metrics endpoint could not be opened (usually: the port is taken)."""


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve `registry` on host:port (0 = a free port) from a daemon thread."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MetricsServerError(
                f"metrics port {host}:{port} is in use; set metrics.port in the profile or "
                "FEATURESTREAM_METRICS_PORT (0 = any free port), or metrics.enabled: false") from exc
        raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    endpoint = MetricsServer(server, thread, host)
    log.info('{"event": "metrics_endpoint", "url": "%s"}', endpoint.url)
    return endpoint


def write_textfile(registry: CollectorRegistry, path: str) -> None:
    """The registry's current values in the text format (atomically), e.g. for a finished batch job."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(os.fspath(target), registry)
