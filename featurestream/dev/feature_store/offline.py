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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.event_time import MAX_EVENT_TIME, MIN_EVENT_TIME, compact_utc, partition_path
from featurestream.dev.feature_store.glue_table import GlueTables
from featurestream.dev.feature_store.iceberg_offline import IcebergTables, arrow_rows, is_iceberg
from featurestream.dev.feature_store.model import FeatureGroup
from featurestream.dev.feature_store.store import OfflineRow, Store
from featurestream.dev.feature_store.types import FRACTIONAL, INTEGRAL, parse_scalar
from featurestream.io.s3_uri import S3UriError, parse_s3_uri

log = logging.getLogger(__name__)

_S3_URI = re.compile(r"s3://([^/]+)/(.*)")
_ALPHABET = string.ascii_letters + string.digits
_ARROW_TYPES = {INTEGRAL: pa.int64(), FRACTIONAL: pa.float64()}
MAX_ROWS_PER_FLUSH = 100_000
T = TypeVar("T")
Item = tuple[OfflineRow, dict[str, Any]]


class OfflineSink(Protocol):
    def write(self, uri: str, data: bytes) -> None:
        """Store `data` at `uri` (s3://bucket/key) so that readers see all of it or nothing."""

    def check_location(self, uri: str) -> None:
        """InvalidInput when the offline store at `uri` (s3://bucket/prefix) cannot be written."""


class LocalDirSink:
    """s3://bucket/key -> <root>/bucket/key, for running without any S3 service.

    Nothing is ever written outside `root`: the URI must pass S3's rules (no `..` bucket, no
    empty, `.` or `..` key segment), and the resolved target (symlinks followed) must still be
    under the resolved root.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, uri: str) -> Path:
        try:
            location = parse_s3_uri(uri, schemes=("s3",))
        except S3UriError as exc:
            raise ValueError(f"not a valid s3:// URI for the offline store: {exc}") from None
        if not location.key:
            raise ValueError(f"not an object key: {uri}")
        root = self.root.resolve()
        target = (root / location.bucket / location.key).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"{uri} leads out of the offline folder {root}")
        return target

    def write(self, uri: str, data: bytes) -> None:
        target = self.path_for(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def check_location(self, uri: str) -> None:
        """A local directory stands in for every bucket: each one exists once it is written to."""


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

    def check_location(self, uri: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        match = _S3_URI.fullmatch(uri.rstrip("/") + "/")
        bucket = match.group(1) if match else uri
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            what = "does not exist" if code in ("404", "NoSuchBucket", "NotFound") else f"cannot be accessed ({code})"
            raise InvalidInput(f"The S3 bucket '{bucket}' of OfflineStoreConfig.S3StorageConfig.S3Uri {what}.") from exc
        except BotoCoreError as exc:
            raise InvalidInput(f"The S3 bucket '{bucket}' of the offline store cannot be reached: {exc}") from exc


@dataclass
class FlushResult:
    rows: int = 0
    quarantined: int = 0
    blocked: dict[str, str] = field(default_factory=dict)  # group name -> why it is not written


class OfflineReplicator:
    """Flushes the offline queue every `interval_s` seconds, on demand and on stop.

    Each feature group is flushed on its own: a group whose sink fails (a bucket deleted after
    the group was created) is reported Blocked and retried on the next flush while the others
    are written, and a row that can never be written (it cannot be converted to its column
    type or partitioned) is quarantined with its reason instead of failing its whole batch.
    """

    def __init__(self, store: Store, sink: OfflineSink, interval_s: float,
                 iceberg: IcebergTables | None = None, glue: GlueTables | None = None) -> None:
        self.store = store
        self.sink = sink
        # Groups with TableFormat Iceberg go to their table in the catalog instead of the sink.
        self.iceberg = iceberg or IcebergTables(None)
        self.glue = glue or GlueTables("")  # none: tables of Glue-format groups are not registered
        self.interval_s = interval_s
        self.files_written = 0
        self.rows_written = 0
        self.last_error: str | None = None
        self._blocked: dict[int, str] = {}
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create_table(self, group: FeatureGroup) -> None:
        """The table CreateFeatureGroup registers: an Iceberg group's table in the catalog, a Glue
        group's in the Glue catalog (when a local Glue endpoint is configured)."""
        kind = "Iceberg" if is_iceberg(group) else "Glue"
        try:
            if kind == "Iceberg":
                self.iceberg.create(group)
            else:
                self.glue.register(group)
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(f"The {kind} table of the offline store cannot be created: "
                               f"{type(exc).__name__}: {exc}") from exc

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="offline-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and write everything still queued (blocked groups stay queued)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        result = self.flush()
        if result.blocked:
            log.warning("offline rows stay queued for the next start: %s", result.blocked)

    def _loop(self) -> None:
        reported: dict[str, str] = {}
        while not self._stop.wait(self.interval_s):
            try:
                blocked = self.flush().blocked
            except Exception:
                log.exception("offline flush failed; rows stay queued")
                continue
            if blocked != reported:  # log a change, not every tick
                for name, reason in blocked.items():
                    log.warning("offline store of %s is blocked (rows stay queued): %s", name, reason)
                reported = blocked

    def blocked_by_name(self) -> dict[str, str]:
        return {self._name(gid): reason for gid, reason in list(self._blocked.items())}

    def _name(self, gid: int) -> str:
        group = self.store.find_group(gid)
        return group.name if group is not None else f"gid-{gid}"

    def status(self, gid: int) -> dict[str, str]:
        """OfflineStoreStatus as DescribeFeatureGroup reports it (BlockedReason: max 1,024 chars)."""
        reason = self._blocked.get(gid)
        return {"Status": "Active"} if reason is None else {"Status": "Blocked", "BlockedReason": reason[:1024]}

    def flush(self) -> FlushResult:
        """Write every queued row that can be written, group by group."""
        result = FlushResult()
        failed: set[int] = set()
        with self._flush_lock:
            while True:
                plans = {g: hi for g, hi in self.store.plan_flushes(MAX_ROWS_PER_FLUSH).items() if g not in failed}
                if not plans:
                    break
                for gid, seq_hi in plans.items():
                    try:
                        written, quarantined = self._flush_group(gid, seq_hi)
                    except Exception as exc:
                        # The sink failed: this group's plan stays and is replayed next time.
                        reason = f"{type(exc).__name__}: {exc}"
                        failed.add(gid)
                        self._blocked[gid] = reason
                        self.last_error = reason
                        result.blocked[self._name(gid)] = reason
                        continue
                    self._blocked.pop(gid, None)
                    result.rows += written
                    result.quarantined += quarantined
                    self.rows_written += written
        if not result.blocked:
            self.last_error = None
        return result

    def _flush_group(self, gid: int, seq_hi: int) -> tuple[int, int]:
        """Write one group's planned rows; (rows written, rows quarantined)."""
        rows, bad = self.store.planned_rows(gid, seq_hi)
        group = self.store.find_group(gid)
        if group is None:  # only a damaged state file can get here
            self.store.quarantine(gid, bad + [(r.seq, f"no feature group with internal id {gid}") for r in rows])
            self.store.complete_flush(gid, seq_hi)
            return 0, len(bad) + len(rows)
        base = group.resolved_output_uri()
        written = 0
        if base is not None and is_iceberg(group):
            written = self._flush_iceberg(gid, group, seq_hi, rows, bad)
        elif base is not None:
            write_time = time.time()
            parts: dict[str, list[tuple[OfflineRow, dict[str, Any]]]] = defaultdict(list)
            for row in rows:
                try:
                    partition, typed = _prepare(group, row)
                except Exception as exc:
                    bad.append((row.seq, f"{type(exc).__name__}: {exc}"))
                    continue
                parts[partition].append((row, typed))
            files: list[tuple[str, bytes]] = []
            for partition, part_rows in parts.items():
                data, unwritable = _isolating(lambda items: _parquet(group, items, write_time), part_rows)
                bad.extend(unwritable)
                if data is not None:
                    kept = [r for r, _ in part_rows if r.seq not in {s for s, _ in unwritable}]
                    files.append((f"{base}/{partition}/{_file_name(gid, partition, kept)}", data))
                    written += len(kept)
            if bad:
                # Quarantined before anything is written, so a replay sees the same rows.
                self.store.quarantine(gid, bad)
                log.warning("offline: quarantined %d rows of %s: %s", len(bad), group.name, bad[-1][1])
            for uri, data in files:
                self.sink.write(uri, data)
                self.files_written += 1
                log.debug("offline: wrote %s", uri)
        self.store.complete_flush(gid, seq_hi)
        return written, len(bad)


    def _flush_iceberg(self, gid: int, group: FeatureGroup, seq_hi: int, rows: list[OfflineRow],
                       bad: list[tuple[int, str]]) -> int:
        """One Iceberg commit for the plan (exactly once: see iceberg_offline); rows written."""
        write_time = time.time()
        typed_rows: list[tuple[OfflineRow, dict[str, Any]]] = []
        for row in rows:
            try:
                typed_rows.append((row, _prepare(group, row)[1]))
            except Exception as exc:
                bad.append((row.seq, f"{type(exc).__name__}: {exc}"))
        data, unwritable = _isolating(lambda items: arrow_rows(group, items, write_time), typed_rows)
        bad.extend(unwritable)
        if bad:
            # Quarantined before the commit, so a replay appends the same rows.
            self.store.quarantine(gid, bad)
            log.warning("offline: quarantined %d rows of %s: %s", len(bad), group.name, bad[-1][1])
        if data is None:
            data = arrow_rows(group, [], write_time)
        return self.iceberg.append(group, seq_hi, data)


def _isolating(build: Callable[[list[Item]], T], rows: list[Item]) -> tuple[T | None, list[tuple[int, str]]]:
    """`build(rows)` (a Parquet file, an Arrow table); a row Arrow refuses is found alone and left
    out (None when none is left)."""
    errors = (pa.ArrowException, ValueError, TypeError, OverflowError)
    try:
        return (build(rows) if rows else None), []
    except errors:
        pass
    good, bad = [], []
    for item in rows:
        try:
            build([item])
            good.append(item)
        except errors as exc:
            bad.append((item[0].seq, f"{type(exc).__name__}: {exc}"))
    return (build(good) if good else None), bad


def _prepare(group: FeatureGroup, row: OfflineRow) -> tuple[str, dict[str, Any]]:
    """(partition, typed values) of one row; raises when the row can never be written."""
    if not MIN_EVENT_TIME <= row.event_time < MAX_EVENT_TIME:
        raise ValueError(f"EventTime {row.event_time!r} is outside [0000-01-01, 9999-12-31]")
    typed: dict[str, Any] = {}
    for feature in group.features.values():
        raw = row.values.get(feature.name)
        if raw is None:
            typed[feature.name] = None
        elif isinstance(raw, list):
            typed[feature.name] = [parse_scalar(feature.type, v) for v in raw]
        else:
            typed[feature.name] = parse_scalar(feature.type, raw)
    return partition_path(row.event_time), typed


def _file_name(gid: int, partition: str, rows: list[OfflineRow]) -> str:
    latest = compact_utc(max(r.event_time for r in rows))
    digest = hashlib.sha256(f"{gid}|{partition}|{rows[0].seq}|{rows[-1].seq}".encode()).digest()
    suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:16])
    return f"{latest}_{suffix}.parquet"


def _parquet(group: FeatureGroup, rows: list[tuple[OfflineRow, dict[str, Any]]], write_time: float) -> bytes:
    columns: dict[str, pa.Array] = {}
    for feature in group.features.values():
        scalar = _ARROW_TYPES.get(feature.type, pa.string())
        arrow_type = pa.list_(scalar) if feature.collection else scalar
        columns[feature.name] = pa.array([typed[feature.name] for _, typed in rows], type=arrow_type)
    ts = pa.timestamp("ms", tz="UTC")
    columns["write_time"] = pa.array([_millis(write_time)] * len(rows), type=ts)
    columns["api_invocation_time"] = pa.array([_millis(r.api_invocation_time) for r, _ in rows], type=ts)
    columns["is_deleted"] = pa.array([r.is_deleted for r, _ in rows], type=pa.bool_())
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, compression="snappy")
    return buf.getvalue()


def _millis(seconds: float) -> int:
    return round(seconds * 1000)
