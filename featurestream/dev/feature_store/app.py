"""Wires the pieces together and runs the server until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from featurestream.dev.feature_store.config import EmulatorConfig
from featurestream.dev.feature_store.faults import Faults
from featurestream.dev.feature_store.glue_table import GlueTables
from featurestream.dev.feature_store.iceberg_offline import IcebergTables
from featurestream.dev.feature_store.lineage import LineageStore
from featurestream.dev.feature_store.offline import LocalDirSink, OfflineReplicator, OfflineSink, S3Sink
from featurestream.dev.feature_store.server import Emulator
from featurestream.dev.feature_store.store import Store
from featurestream.dev.feature_store.transport import EmulatorServer, HttpLimits

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

log = logging.getLogger("featurestream.dev.feature_store")

ENDPOINT_FILE = "endpoint.json"
DB_FILE = "online-store.sqlite3"
LINEAGE_DB_FILE = "lineage.sqlite3"
SHUTDOWN_GRACE_S = 10.0


def run(config: EmulatorConfig) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    endpoint_file = config.state_dir / ENDPOINT_FILE
    endpoint_file.unlink(missing_ok=True)

    store = Store(config.state_dir / DB_FILE, config.region, config.account_id)
    store.start_checkpoints()
    sink: OfflineSink
    if config.offline_local_dir is not None:
        sink = LocalDirSink(config.offline_local_dir)
        log.info("offline store: local directory %s", config.offline_local_dir)
    else:
        sink = S3Sink()
        log.info("offline store: S3 at %s", os.environ.get("AWS_ENDPOINT_URL_S3", "<default AWS endpoint>"))
    glue = GlueTables()
    if glue.enabled:
        log.info("offline store: Glue tables of Glue-format groups registered at %s", glue.endpoint)
    replicator = OfflineReplicator(store, sink, config.flush_interval_s,
                                   IcebergTables(_catalog_factory(config.catalog_profile), config.crash_point), glue)
    lineage = LineageStore(config.state_dir / LINEAGE_DB_FILE)
    emulator = Emulator(store, Faults(config.faults), replicator, config.region, config.account_id, lineage)
    limits = HttpLimits(
        request_timeout_s=config.request_timeout_s, idle_timeout_s=config.idle_timeout_s, workers=config.workers
    )
    server = EmulatorServer(config.host, config.port, emulator, limits)
    emulator.transport_stats = server.stats

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    replicator.start()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http")
    serving.start()
    url = f"http://{config.host}:{server.port}"
    _write_endpoint(endpoint_file, url, config.host, server.port)
    log.info("feature store emulator listening on %s (region %s, state %s, faults %s)",
             url, config.region, config.state_dir, config.faults)
    try:
        stop.wait()
    finally:
        server.closing.set()
        server.shutdown()
        serving.join()
        if not server.tracker.wait_idle(SHUTDOWN_GRACE_S):
            log.warning("requests still running after %.0f s; closing anyway", SHUTDOWN_GRACE_S)
        try:
            replicator.stop()
        except Exception:
            log.exception("final offline flush failed; the rows stay queued for the next start")
        server.server_close()
        store.close()
        lineage.close()
        endpoint_file.unlink(missing_ok=True)
        log.info("feature store emulator stopped")


def _catalog_factory(profile: str | None) -> Callable[[], Catalog] | None:
    """The profile's Iceberg catalog, loaded when a group first needs it; checked now."""
    if profile is None:
        return None
    from featurestream import iceberg
    from featurestream.config import load_profile

    catalog = iceberg.from_profile(load_profile(profile), profile)
    log.info("offline store: Iceberg groups in the %s catalog %r of profile %s",
             catalog.spec.type, catalog.name, profile)
    return lambda: iceberg.load_catalog(catalog)


def _write_endpoint(path: Path, url: str, host: str, port: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "host": host, "port": port, "pid": os.getpid()}))
    os.replace(tmp, path)
