"""Offline-store replication: queued writes -> Parquet files in SageMaker's Glue layout.

`<ResolvedOutputS3Uri>/year=YYYY/month=MM/day=DD/hour=HH/<latest event time>_<16 chars>.parquet`,
partitioned by the event time of each row (UTC), with the write_time, api_invocation_time and
is_deleted columns. The queue prefix a flush writes is fixed in SQLite before any file is
written and file names derive from it, so a flush interrupted by a crash is replayed into the
same files: no row is lost and none is written twice. Each file appears atomically (an S3 PUT,
or a rename of a hidden temporary file, which Spark and pyarrow both skip).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import string
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from featurestream.dev.feature_store.model import FeatureGroup
from featurestream.dev.feature_store.store import OfflineRow, Store
from featurestream.dev.feature_store.types import FRACTIONAL, INTEGRAL, parse_scalar

log = logging.getLogger(__name__)

_S3_URI = re.compile(r"s3://([^/]+)/(.*)")
_ALPHABET = string.ascii_letters + string.digits
_ARROW_TYPES = {INTEGRAL: pa.int64(), FRACTIONAL: pa.float64()}
MAX_ROWS_PER_FLUSH = 100_000


class OfflineSink(Protocol):
    def write(self, uri: str, data: bytes) -> None:
        """Store `data` at `uri` (s3://bucket/key) so that readers see all of it or nothing."""


class LocalDirSink:
    """s3://bucket/key -> <root>/bucket/key, for running without any S3 service."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, uri: str) -> Path:
        match = _S3_URI.fullmatch(uri)
        if match is None:
            raise ValueError(f"not an s3:// URI: {uri}")
        return self.root / match.group(1) / match.group(2)

    def write(self, uri: str, data: bytes) -> None:
        target = self.path_for(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)


class S3Sink:
    """PUT to S3 (moto locally: boto3 honours AWS_ENDPOINT_URL_S3)."""

    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def write(self, uri: str, data: bytes) -> None:
        match = _S3_URI.fullmatch(uri)
        if match is None:
            raise ValueError(f"not an s3:// URI: {uri}")
        self.client.put_object(Bucket=match.group(1), Key=match.group(2), Body=data)


class OfflineReplicator:
    """Flushes the offline queue every `interval_s` seconds, on demand and on stop."""

    def __init__(self, store: Store, sink: OfflineSink, interval_s: float) -> None:
        self.store = store
        self.sink = sink
        self.interval_s = interval_s
        self.files_written = 0
        self.rows_written = 0
        self.last_error: str | None = None
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="offline-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and write everything still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:
                # Keep the rows queued and retry on the next tick (e.g. the bucket is missing).
                log.exception("offline flush failed; rows stay queued")

    def flush(self) -> int:
        """Write every queued row; returns the number of rows written."""
        written = 0
        with self._flush_lock:
            while True:
                seq_hi = self.store.plan_flush(MAX_ROWS_PER_FLUSH)
                if seq_hi is None:
                    break
                rows = self.store.planned_rows(seq_hi)
                try:
                    self._write(rows)
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    raise
                self.store.complete_flush(seq_hi)
                self.last_error = None
                written += len(rows)
                self.rows_written += len(rows)
        return written

    def _write(self, rows: list[OfflineRow]) -> None:
        write_time = time.time()
        parts: dict[tuple[int, str], list[OfflineRow]] = defaultdict(list)
        for row in rows:
            stamp = datetime.fromtimestamp(row.event_time, tz=UTC)
            parts[(row.gid, stamp.strftime("year=%Y/month=%m/day=%d/hour=%H"))].append(row)
        for (gid, partition), part_rows in parts.items():
            group = self.store.group_by_gid(gid)
            base = group.resolved_output_uri()
            if base is None:
                continue
            uri = f"{base}/{partition}/{_file_name(gid, partition, part_rows)}"
            self.sink.write(uri, _parquet(group, part_rows, write_time))
            self.files_written += 1
            log.debug("offline: wrote %d rows to %s", len(part_rows), uri)


def _file_name(gid: int, partition: str, rows: list[OfflineRow]) -> str:
    latest = datetime.fromtimestamp(max(r.event_time for r in rows), tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(f"{gid}|{partition}|{rows[0].seq}|{rows[-1].seq}".encode()).digest()
    suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:16])
    return f"{latest}_{suffix}.parquet"


def _parquet(group: FeatureGroup, rows: list[OfflineRow], write_time: float) -> bytes:
    columns: dict[str, pa.Array] = {}
    for feature in group.features.values():
        scalar = _ARROW_TYPES.get(feature.type, pa.string())
        arrow_type = pa.list_(scalar) if feature.collection else scalar
        values: list[Any] = []
        for row in rows:
            raw = row.values.get(feature.name)
            if raw is None:
                values.append(None)
            elif isinstance(raw, list):
                values.append([parse_scalar(feature.type, v) for v in raw])
            else:
                values.append(parse_scalar(feature.type, raw))
        columns[feature.name] = pa.array(values, type=arrow_type)
    ts = pa.timestamp("ms", tz="UTC")
    columns["write_time"] = pa.array([_millis(write_time)] * len(rows), type=ts)
    columns["api_invocation_time"] = pa.array([_millis(r.api_invocation_time) for r in rows], type=ts)
    columns["is_deleted"] = pa.array([r.is_deleted for r in rows], type=pa.bool_())
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, compression="snappy")
    return buf.getvalue()


def _millis(seconds: float) -> int:
    return round(seconds * 1000)
