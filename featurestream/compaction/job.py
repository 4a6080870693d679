"""One compaction run of one feature group.

    lock → gc → ledger → list → (nothing new: done) → read new files + the touched partitions'
    current files → rules (rules.py) → one shuffle, one sort, one file per task (layout.py) →
    snapshot → deletion log → ledger segment → check the lock → switch the manifest → gc

Everything before the manifest switch writes new, unreferenced files only; a run that dies at
any point leaves the committed state untouched and the next run (after the lock goes stale)
deletes its leftovers and does the same work again. Only partitions that new source files (or,
with deletes=apply, new delete markers) touch are read and rewritten.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegerType, StructField, StructType, TimestampType

from connectors.offline_store import SourceFile, StoreUri, list_source_files, s3_client
from featurestream.compaction.errors import LayoutError
from featurestream.compaction.gc import collect_garbage
from featurestream.compaction.layout import (
    FILE_KEY,
    assign_file_keys,
    files_for,
    hash_partition_keys,
    partition_key_of_hour,
    partition_key_of_path,
    plan_frame,
    with_bucket_key,
    with_file_key,
)
from featurestream.compaction.ledger import read_ledger, write_segment
from featurestream.compaction.lock import CompactionLock
from featurestream.compaction.manifest import (
    FileEntry,
    Manifest,
    PartitionEntry,
    RetiredFile,
    Stats,
    commit_manifest,
    read_manifest,
)
from featurestream.compaction.progress import Progress
from featurestream.compaction.rules import (
    DATE,
    DELETED_UNTIL,
    EVENT_TS,
    HOUR,
    RANK,
    ROW_NUMBER,
    apply_deletions,
    content_columns,
    deletion_log,
    latest_rows,
    merge_deletion_logs,
    partition_columns,
    rank_versions,
    with_event_ts,
    with_partitions,
)
from featurestream.compaction.schema import IS_DELETED, check_columns, merge_schemas, schema_from_json
from featurestream.compaction.storage import StateStore, open_store
from featurestream.compaction.summary import RunSummary
from featurestream.errors import ConfigError

log = logging.getLogger(__name__)

DATA_DIR = "data"
SNAPSHOT_DIR = "latest"
TOMBSTONE_DIR = "_compaction/tombstones"
_SAMPLE_FILES = 8


@dataclass(frozen=True)
class FeatureGroupTarget:
    """A feature group's offline store and where its compacted output goes."""

    name: str
    source: StoreUri  # the offline store's `.../data` prefix
    output: StoreUri  # this group's output folder
    record_identifier: str
    event_time: str
    # From DescribeFeatureGroup's FeatureDefinitions; None: merged from the files' footers.
    schema: StructType | None = None


@dataclass(frozen=True)
class CompactionSettings:
    compression: str = "zstd"
    target_file_bytes: int = 128 * 1024 * 1024
    partition_by: str = "day"
    deletes: str = "keep"
    snapshot: bool = False
    stale_after_s: float = 1800.0
    heartbeat_s: float = 30.0
    gc_grace_s: float = 3600.0
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    s3_scheme: str = "s3a"
    region: str = "us-east-1"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def compact_feature_group(
    spark: SparkSession,
    target: FeatureGroupTarget,
    settings: CompactionSettings,
    progress: Progress | None = None,
) -> RunSummary:
    """Compact what is new in `target`'s offline store; returns the run's summary.

    Raises LockBusyError when another live run holds the group, ConfigError when the output was
    built with different settings, CompactionError (and Spark's errors) on failure; in every
    failure case the committed output is unchanged.
    """
    return _Run(spark, target, settings, progress or Progress()).execute()


class _Run:
    def __init__(self, spark: SparkSession, target: FeatureGroupTarget, settings: CompactionSettings,
                 progress: Progress) -> None:
        self.spark = spark
        self.target = target
        self.settings = settings
        self.progress = progress
        self.run_id = new_run_id()
        self.store: StateStore = open_store(target.output, settings.region)
        self.summary = RunSummary(target.name, str(target.source), str(target.output), self.run_id)
        self.pcols = partition_columns(settings.partition_by)
        self.started = time.monotonic()

    # -- helpers -------------------------------------------------------------------------------
    def phase(self, name: str, detail: str = "") -> None:
        log.info('{"event": "compaction_phase", "feature_group": "%s", "phase": "%s", "detail": "%s"}',
                 self.target.name, name, detail.replace('"', "'"))
        self.progress.phase(self.target.name, name, detail)

    def spark_path(self, uri: StoreUri) -> str:
        return uri.spark_path(self.settings.s3_scheme)

    def out(self, relative: str) -> StoreUri:
        return self.target.output.join(relative)

    def list_relative(self, prefix: str) -> dict[str, int]:
        """Visible files under an output folder: relative path → bytes."""
        files: dict[str, int] = {}
        for stored in self.store.list(self.out(prefix)):
            relative = stored.uri.relative_to(self.target.output)
            name = relative.rsplit("/", 1)[-1]
            if any(part.startswith((".", "_")) for part in relative[len(prefix) + 1:].split("/")):
                continue  # Spark's _temporary, _SUCCESS, hidden temporary files
            if name.endswith(".parquet"):
                files[relative] = stored.size
        return files

    def read_parquet(self, uris: list[StoreUri], schema: StructType, base: StoreUri | None = None) -> DataFrame:
        reader = self.spark.read.schema(schema)
        if base is not None:
            reader = reader.option("basePath", self.spark_path(base))
        paths = [self.spark_path(u) for u in uris]
        with _listing_conf(self.spark, remote=any(u.is_s3 for u in uris), paths=len(paths)):
            return reader.parquet(*paths)

    def partition_schema(self, schema: StructType) -> StructType:
        fields = [*schema.fields, StructField(DATE, DateType(), True)]
        if self.settings.partition_by == "hour":
            fields.append(StructField(HOUR, IntegerType(), True))
        return StructType(fields)

    # -- the run ---------------------------------------------------------------------------------
    def execute(self) -> RunSummary:
        try:
            if self.settings.dry_run:
                self._dry_run()
            else:
                lock = CompactionLock(self.store, self.target.output, self.run_id,
                                      stale_after_s=self.settings.stale_after_s, heartbeat_s=self.settings.heartbeat_s)
                self.phase("lock")
                lock.acquire()
                if lock.took_over is not None:
                    self.summary.lock_taken_over_from = lock.took_over.run_id
                try:
                    self._locked(lock)
                finally:
                    lock.release()
        finally:
            self.summary.seconds = time.monotonic() - self.started
        self.phase("done", f"{self.summary.status} in {self.summary.seconds:.1f}s")
        return self.summary

    def _check_compatible(self, manifest: Manifest | None) -> None:
        if manifest is None:
            return
        for name, ours, theirs in (
            ("partition_by", self.settings.partition_by, manifest.partition_by),
            ("deletes", self.settings.deletes, manifest.deletes),
            ("record_identifier", self.target.record_identifier, manifest.record_identifier),
            ("event_time", self.target.event_time, manifest.event_time),
        ):
            if ours != theirs:
                raise ConfigError(str(self.target.output), name,
                                  f"the output was built with {name}={theirs!r}, not {ours!r}; "
                                  "compact into a new output folder (or delete this one to rebuild)")
        if manifest.source != str(self.target.source):
            log.warning("feature group %s: source changed from %s to %s (recreated group?); new files are merged",
                        self.target.name, manifest.source, self.target.source)

    def _new_source_files(self, manifest: Manifest | None) -> tuple[list[SourceFile], list[SourceFile]]:
        """(new files, every listed file)."""
        processed = read_ledger(self.store, self.target.output, manifest.ledger if manifest else [])
        self.phase("list", str(self.target.source))
        client = s3_client(self.settings.region) if self.target.source.is_s3 else None
        listed = list_source_files(self.target.source, since=self.settings.since, until=self.settings.until,
                                   client=client)
        return [f for f in listed if str(f.uri) not in processed], listed

    def _dry_run(self) -> None:
        manifest, _ = read_manifest(self.store, self.target.output)
        self._check_compatible(manifest)
        new, listed = self._new_source_files(manifest)
        touched = sorted({partition_key_of_hour(f.hour, self.settings.partition_by) for f in new})
        self.summary.status = "dry-run"
        self.summary.version = manifest.version if manifest else 0
        self.summary.files_in = len(new)
        self.summary.bytes_in = sum(f.size for f in new)
        self.summary.partitions = touched
        self.summary.partitions_rewritten = len(touched)
        self.summary.existing_files_read = len(manifest.data_files(touched)) if manifest else 0
        self.phase("plan", f"{len(new)} new of {len(listed)} source files, {len(touched)} partitions to rewrite")

    def _locked(self, lock: CompactionLock) -> None:
        manifest, token = read_manifest(self.store, self.target.output)
        self._check_compatible(manifest)
        self.summary.version = manifest.version if manifest else 0
        self.phase("gc")
        self.summary.garbage_files_deleted = collect_garbage(self.store, self.target.output, manifest, time.time(),
                                                             self.settings.gc_grace_s)
        new, listed = self._new_source_files(manifest)
        self.summary.files_in = len(new)
        self.summary.bytes_in = sum(f.size for f in new)
        if not new:
            self.summary.status = "noop"
            self.phase("plan", f"no new files among {len(listed)}")
            return
        self.phase("plan", f"{len(new)} new of {len(listed)} source files")
        updated = self._compact(manifest, new, listed)
        lock.ensure_held()
        self.phase("commit", f"version {updated.version}")
        commit_manifest(self.store, self.target.output, updated, token)
        self.summary.version = updated.version
        self.summary.status = "compacted"
        self.phase("committed", f"version {updated.version}")
        self.summary.garbage_files_deleted += collect_garbage(self.store, self.target.output, updated, time.time(),
                                                              self.settings.gc_grace_s)

    # -- compaction ------------------------------------------------------------------------------
    def _schema(self, manifest: Manifest | None, new: list[SourceFile]) -> StructType:
        source_schema = self.target.schema
        if source_schema is None:
            # No FeatureDefinitions (path mode): merge the footers of the new files.
            paths = [self.spark_path(f.uri) for f in new]
            source_schema = self.spark.read.option("mergeSchema", "true").parquet(*paths).schema
        schema = merge_schemas(schema_from_json(manifest.spark_schema) if manifest else None, source_schema)
        check_columns(schema, self.target.record_identifier, self.target.event_time, self.pcols)
        return schema

    def _bytes_ratio(self, manifest: Manifest | None, new: list[SourceFile]) -> float:
        """Expected compacted bytes per source byte: learned from the last run, else sampled."""
        stats = manifest.stats if manifest else None
        if stats and stats.source_rows_per_byte and stats.output_bytes_per_row:
            return stats.source_rows_per_byte * stats.output_bytes_per_row
        step = max(1, len(new) // _SAMPLE_FILES)
        sample = new[::step][:_SAMPLE_FILES]
        source_store = open_store(self.target.source, self.settings.region)
        tables, size = [], 0
        for file in sample:
            current = source_store.read(file.uri)
            if current is None:
                continue
            tables.append(pq.read_table(io.BytesIO(current.data)))
            size += len(current.data)
        if not tables or size == 0:
            return 1.0
        buffer = io.BytesIO()
        pq.write_table(pa.concat_tables(tables, promote_options="default"), buffer,
                       compression=self.settings.compression)
        # A small sample compresses worse than a full file: this errs towards smaller files.
        return min(2.0, max(0.01, buffer.tell() / size))

    def _read_new(self, new: list[SourceFile], listed: list[SourceFile], schema: StructType) -> DataFrame:
        """The new files' rows: whole hour folders where every file is new, single files elsewhere.

        Resolving thousands of explicit paths costs Spark seconds on the driver, listing a few
        hundred folders a fraction of that. A folder read whole is semi-joined on
        `_metadata.file_name` with the listed new names, so a file that landed after our
        listing (not in the ledger yet) is left for the next run. Folders that also hold
        already-compacted files (late files in an old hour) are read file by file.
        """
        new_uris = {f.uri for f in new}
        mixed = {_parent(f.uri) for f in listed if f.uri not in new_uris}
        whole = sorted({_parent(f.uri) for f in new} - mixed)
        frames = []
        if whole:
            names = "\n".join(sorted(f.uri.key.rsplit("/", 1)[-1] for f in new if _parent(f.uri) not in mixed))
            # One literal, split on the JVM: no per-name py4j call, no Python worker.
            wanted = self.spark.range(1).select(F.explode(F.split(F.lit(names), "\n")).alias("_fs_file_name"))
            rows = self.read_parquet(whole, schema).withColumn("_fs_file_name", F.col("_metadata.file_name"))
            frames.append(rows.join(F.broadcast(wanted), on="_fs_file_name", how="left_semi").drop("_fs_file_name"))
        singles = [f.uri for f in new if _parent(f.uri) in mixed]
        if singles:
            frames.append(self.read_parquet(singles, schema))
        return reduce(lambda a, b: a.unionByName(b), frames)

    def _compact(self, manifest: Manifest | None, new: list[SourceFile], listed: list[SourceFile]) -> Manifest:
        settings, target = self.settings, self.target
        version = (manifest.version if manifest else 0) + 1
        now = time.time()
        schema = self._schema(manifest, new)
        new_rows = with_partitions(with_event_ts(self._read_new(new, listed, schema), target.event_time),
                                   settings.partition_by)
        touched = {partition_key_of_hour(f.hour, settings.partition_by) for f in new}

        tombstones = manifest.tombstones if manifest else None
        deletion_frame: DataFrame | None = None
        retired: list[str] = []
        if settings.deletes == "apply":
            tombstones, deletion_frame, affected = self._update_deletion_log(manifest, new_rows, schema)
            if tombstones != (manifest.tombstones if manifest else None):
                retired += [f.path for f in (manifest.tombstones or [])] if manifest else []
            touched |= affected

        existing = manifest.data_files(sorted(touched)) if manifest else []
        retired += [f.path for f in existing]
        written = self._write_partitions(manifest, new, sorted(touched), schema, new_rows, existing, deletion_frame)

        partitions = dict(manifest.partitions) if manifest else {}
        for key in touched:
            files = written.get(key)
            if files:
                partitions[key] = PartitionEntry(files=files, version=version)
            else:
                partitions.pop(key, None)  # every row of it was deleted

        snapshot = manifest.snapshot if manifest else None
        if settings.snapshot:
            new_files = [f for key in sorted(written) for f in written[key]]
            retired += [f.path for f in snapshot or []]
            snapshot = self._write_snapshot(schema, new_files, snapshot or [], deletion_frame)

        self.phase("ledger")
        segments, retired_segments = write_segment(
            self.store, target.output, version=version, run_id=self.run_id, new_files=new,
            previous_segments=list(manifest.ledger) if manifest else [],
        )
        retired += retired_segments

        kept = [r for r in (manifest.retired if manifest else []) if now - r.retired_at < settings.gc_grace_s]
        summary = self.summary
        stats = Stats(
            source_rows_per_byte=summary.rows_in / summary.bytes_in if summary.bytes_in and summary.rows_in else None,
            output_bytes_per_row=summary.bytes_out / summary.rows_out if summary.rows_out else None,
        )
        return Manifest(
            feature_group=target.name,
            version=version,
            run_id=self.run_id,
            committed_at=time.time(),
            source=str(target.source),
            record_identifier=target.record_identifier,
            event_time=target.event_time,
            partition_by=settings.partition_by,  # type: ignore[arg-type]
            deletes=settings.deletes,  # type: ignore[arg-type]
            spark_schema=schema.json(),
            partitions=partitions,
            snapshot=snapshot,
            tombstones=tombstones,
            ledger=segments,
            retired=kept + [RetiredFile(path=p, retired_at=now) for p in retired],
            stats=stats,
        )

    def _write_partitions(
        self,
        manifest: Manifest | None,
        new: list[SourceFile],
        touched: list[str],
        schema: StructType,
        new_rows: DataFrame,
        existing: list[FileEntry],
        deletions: DataFrame | None,
    ) -> dict[str, list[FileEntry]]:
        settings, target, spark = self.settings, self.target, self.spark
        # Size the files: expected compressed bytes per partition.
        ratio = self._bytes_ratio(manifest, new)
        estimate: dict[str, float] = {key: 0.0 for key in touched}
        for file in new:
            estimate[partition_key_of_hour(file.hour, settings.partition_by)] += file.size * ratio
        if manifest:
            for key in touched:
                if key in manifest.partitions:
                    estimate[key] += manifest.partitions[key].bytes
        files_per_partition = {key: files_for(value, settings.target_file_bytes) for key, value in estimate.items()}
        tasks = sum(files_per_partition.values())
        plan = plan_frame(spark, assign_file_keys(files_per_partition), settings.partition_by)
        self.phase("plan", f"{len(touched)} partitions, {tasks} files, {len(existing)} current files to merge")

        observed_new = Observation("compaction_new")
        frames = [new_rows.observe(observed_new, F.count(F.lit(1)).alias("rows"))]
        observed_old = Observation("compaction_existing")
        if existing:
            current = self.read_parquet([self.out(f.path) for f in existing], self.partition_schema(schema),
                                        base=self.out(DATA_DIR))
            current = with_event_ts(current, target.event_time)
            frames.append(current.observe(observed_old, F.count(F.lit(1)).alias("rows")))
        rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

        observed_pre = Observation("compaction_before_deletes")
        observed_post = Observation("compaction_after_deletes")
        if deletions is not None:
            rows = rows.observe(observed_pre, F.count(F.lit(1)).alias("rows"))
            rows = apply_deletions(rows, deletions, target.record_identifier)
            rows = rows.observe(observed_post, F.count(F.lit(1)).alias("rows"))

        keyed = with_file_key(rows, plan, self.pcols, target.record_identifier).repartition(tasks, F.col(FILE_KEY))
        ranked = rank_versions(keyed, [*self.pcols, FILE_KEY, target.record_identifier, EVENT_TS],
                               content_columns(schema.names, target.record_identifier))
        observed_rank = Observation("compaction_versions")
        ranked = ranked.observe(
            observed_rank,
            F.sum((F.col(RANK) < F.col(ROW_NUMBER)).cast("long")).alias("exact"),
            F.sum(((F.col(RANK) == F.col(ROW_NUMBER)) & (F.col(ROW_NUMBER) > 1)).cast("long")).alias("superseded"),
            F.sum(F.col(FILE_KEY).isNull().cast("long")).alias("unplanned"),
        )
        kept = ranked.where(F.col(ROW_NUMBER) == 1)
        observed_out = Observation("compaction_out")
        kept = kept.observe(observed_out, F.count(F.lit(1)).alias("rows"),
                            F.sum(F.col(IS_DELETED).cast("long")).alias("tombstones"))

        before = self.list_relative(DATA_DIR)
        self.phase("write", f"{tasks} files")
        with self.progress.spark_work(spark, target.name, "write"), scoped_conf(spark, WRITE_CONF):
            (kept.select(*[F.col(f"`{c}`") for c in [*schema.names, *self.pcols]])
             .write.mode("append").partitionBy(*self.pcols)
             .option("compression", settings.compression)
             .parquet(self.spark_path(self.out(DATA_DIR))))

        counts = _metrics(observed_rank)
        if counts.get("unplanned"):
            raise LayoutError(f"{counts['unplanned']} source rows have an event time outside the hour partition "
                              "their file is in; this is not SageMaker's offline-store layout")
        out = _metrics(observed_out)
        summary = self.summary
        summary.rows_in = _metrics(observed_new).get("rows", 0)
        summary.existing_files_read = len(existing)
        summary.existing_rows_read = _metrics(observed_old).get("rows", 0) if existing else 0
        summary.duplicates_removed = counts.get("exact", 0)
        summary.superseded_removed = counts.get("superseded", 0)
        if deletions is not None:
            before_deletes = _metrics(observed_pre).get("rows", 0)
            summary.deleted_rows_removed = before_deletes - _metrics(observed_post).get("rows", 0)
        summary.rows_out = out.get("rows", 0)
        summary.tombstones_kept = out.get("tombstones", 0)

        written: dict[str, list[FileEntry]] = {}
        for relative, size in sorted(self.list_relative(DATA_DIR).items()):
            if relative in before:
                continue
            partition = partition_key_of_path(relative, DATA_DIR)
            if partition is None or partition not in touched:
                raise LayoutError(f"the write produced {relative}, outside the partitions it rewrites")
            written.setdefault(partition, []).append(FileEntry(path=relative, bytes=size))
        summary.files_out = sum(len(v) for v in written.values())
        summary.bytes_out = sum(f.bytes for v in written.values() for f in v)
        summary.partitions = sorted(touched)
        summary.partitions_rewritten = len(touched)
        self.phase("written", f"{summary.files_out} files, {summary.rows_out} rows")
        return written

    def _update_deletion_log(
        self, manifest: Manifest | None, new_rows: DataFrame, schema: StructType
    ) -> tuple[list[FileEntry] | None, DataFrame | None, set[str]]:
        """deletes=apply: merge new delete markers into the log; find old partitions they reach."""
        target = self.target
        log_schema = StructType([StructField(target.record_identifier, schema[target.record_identifier].dataType),
                                 StructField(DELETED_UNTIL, TimestampType())])
        old_entries = manifest.tombstones if manifest else None
        old_log = self.read_parquet([self.out(f.path) for f in old_entries], log_schema) if old_entries else None
        observed = Observation("compaction_new_deletes")
        new_deletes = deletion_log(new_rows, target.record_identifier).observe(observed, F.count(F.lit(1)).alias("n"))
        merged = merge_deletion_logs(old_log, new_deletes, target.record_identifier)
        before = self.list_relative(TOMBSTONE_DIR)
        self.phase("deletes")
        with scoped_conf(self.spark, WRITE_CONF):
            merged.coalesce(1).write.mode("append").parquet(self.spark_path(self.out(TOMBSTONE_DIR)))
        fresh = {k: v for k, v in self.list_relative(TOMBSTONE_DIR).items() if k not in before}
        if not _metrics(observed).get("n"):
            self.store.delete_many([self.out(k) for k in fresh])
            return old_entries, old_log, set()
        entries = [FileEntry(path=k, bytes=v) for k, v in sorted(fresh.items())]
        log_df = self.read_parquet([self.out(e.path) for e in entries], log_schema)
        affected: set[str] = set()
        if manifest and manifest.partitions:
            changed = log_df
            if old_log is not None:
                previous = old_log.withColumnRenamed(DELETED_UNTIL, "_fs_previous")
                changed = (log_df.join(previous, on=target.record_identifier, how="left")
                           .where(F.col("_fs_previous").isNull() | (F.col(DELETED_UNTIL) > F.col("_fs_previous")))
                           .drop("_fs_previous"))
            current = self.read_parquet([self.out(f.path) for f in manifest.data_files()],
                                        self.partition_schema(schema), base=self.out(DATA_DIR))
            current = with_event_ts(current.select(target.record_identifier, target.event_time, *self.pcols),
                                    target.event_time)
            hits = (current.join(changed, on=target.record_identifier)
                    .where(F.col(EVENT_TS) <= F.col(DELETED_UNTIL)).select(*self.pcols).distinct().collect())
            for row in hits:
                key = f"{DATE}={row[DATE]:%Y-%m-%d}"
                affected.add(f"{key}/{HOUR}={row[HOUR]}" if self.settings.partition_by == "hour" else key)
        return entries, log_df, affected

    def _write_snapshot(self, schema: StructType, rewritten: list[FileEntry], previous: list[FileEntry],
                        deletions: DataFrame | None) -> list[FileEntry]:
        """`latest/`: the previous snapshot updated with the rewritten partitions' rows."""
        target, spark = self.target, self.spark
        frames = []
        if rewritten:
            frames.append(self.read_parquet([self.out(f.path) for f in rewritten], self.partition_schema(schema),
                                            base=self.out(DATA_DIR)).drop(*self.pcols))
        if previous:
            frames.append(self.read_parquet([self.out(f.path) for f in previous], schema))
        if not frames:
            return []
        rows = with_event_ts(reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames),
                             target.event_time)
        if deletions is not None:
            rows = apply_deletions(rows, deletions, target.record_identifier)
        self.phase("snapshot")
        records = rows.agg(F.approx_count_distinct(F.col(f"`{target.record_identifier}`")).alias("n")).first()
        per_row = self.summary.bytes_out / self.summary.rows_out if self.summary.rows_out else 100.0
        count = files_for((records["n"] if records else 0) * per_row, self.settings.target_file_bytes)
        keys = hash_partition_keys(count)
        keyed = with_bucket_key(rows, keys, target.record_identifier).repartition(count, F.col(FILE_KEY))
        latest = latest_rows(keyed, [FILE_KEY, target.record_identifier],
                             content_columns(schema.names, target.record_identifier))
        observed = Observation("compaction_snapshot")
        latest = latest.observe(observed, F.count(F.lit(1)).alias("rows"))
        before = self.list_relative(SNAPSHOT_DIR)
        with self.progress.spark_work(spark, target.name, "snapshot"), scoped_conf(spark, WRITE_CONF):
            (latest.select(*[F.col(f"`{c}`") for c in schema.names]).write.mode("append")
             .option("compression", self.settings.compression).parquet(self.spark_path(self.out(SNAPSHOT_DIR))))
        entries = [FileEntry(path=k, bytes=v) for k, v in sorted(self.list_relative(SNAPSHOT_DIR).items())
                   if k not in before]
        self.summary.snapshot_rows = _metrics(observed).get("rows", 0)
        self.summary.snapshot_files = len(entries)
        return entries


@contextlib.contextmanager
def scoped_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session SQL settings for the duration of a block (the session may be shared)."""
    conf = spark.conf
    saved: dict[str, str | None] = {key: conf.get(key, None) for key in settings}
    for key, value in settings.items():
        conf.set(key, value)
    try:
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                conf.unset(key)
            else:
                conf.set(key, previous)


def _listing_conf(spark: SparkSession, *, remote: bool, paths: int) -> contextlib.AbstractContextManager[None]:
    """How Spark looks up the explicit file list of a read (it does so eagerly, inside `.parquet`).

    By default more than 32 paths start a listing job with one task per path (up to 10,000
    tasks), which costs far more than the read of small files. Local paths are looked up on the
    driver; remote ones with one task per core.
    """
    if remote:
        return scoped_conf(spark, {"spark.sql.sources.parallelPartitionDiscovery.parallelism":
                                   str(max(2, spark.sparkContext.defaultParallelism))})
    return scoped_conf(spark, {"spark.sql.sources.parallelPartitionDiscovery.threshold": str(paths + 1)})


# Settings of every action of a run:
# - microsecond timestamps in the output (not the legacy INT96) for any reader;
# - a small per-file open cost, so a read task packs hundreds of the tiny source files instead of
#   ~32 (the 4 MB default): a fraction of the tasks and ~20% less CPU for 10,000 files (measured,
#   bench/compaction_bench.py). Parallelism is kept: Spark still splits by bytes per core.
WRITE_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.files.openCostInBytes": str(256 * 1024),
}


def _parent(uri: StoreUri) -> StoreUri:
    return StoreUri(uri.scheme, uri.bucket, uri.key.rsplit("/", 1)[0])


def _metrics(observation: Observation) -> dict[str, int]:
    values: dict[str, Any] = observation.get
    return {k: int(v or 0) for k, v in values.items()}
